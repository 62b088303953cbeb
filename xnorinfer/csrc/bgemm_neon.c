/* aarch64 Advanced SIMD (NEON) micro-kernel. NEON has a per-byte popcount (CNT), so each XOR of an
 * activation word with two channels' weight words is counted 16 bytes at a time; the byte counts
 * collect for up to 31 words (a byte gains at most 8 per word) before they are widened into
 * 32-bit sums. Advanced SIMD is part of every ARMv8-A CPU, so this kernel needs no detection. */
#include "bgemm.h"

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>

enum { PAIRS = XI_BLOCK / 2, MAX_BYTE_WORDS = 31 };

/* Adds the byte counts into the 32-bit sums: lanes 0-1 of sums[q] belong to channel 2q, 2-3 to 2q+1. */
static inline void widen(uint8x16_t bytes[PAIRS], uint32x4_t sums[PAIRS])
{
    for (int q = 0; q < PAIRS; ++q) {
        sums[q] = vpadalq_u16(sums[q], vpaddlq_u8(bytes[q]));
        bytes[q] = vdupq_n_u8(0);
    }
}

void xi_bgemm_neon(int m, int nblocks, int taps, int tap_words, const uint64_t *const *a, const uint64_t *b,
                   int32_t *c, int ldc)
{
    const int k = taps * tap_words;
    for (int nb = 0; nb < nblocks; ++nb) {
        const uint64_t *bb = b + (int64_t)nb * k * XI_BLOCK;
        for (int i = 0; i < m; ++i) {
            const uint64_t *const *ra = a + (int64_t)i * taps;
            uint8x16_t bytes[PAIRS];
            uint32x4_t sums[PAIRS];
            for (int q = 0; q < PAIRS; ++q) {
                bytes[q] = vdupq_n_u8(0);
                sums[q] = vdupq_n_u32(0);
            }
            int pending = 0;
            for (int t = 0; t < taps; ++t) {
                const uint64_t *at = ra[t];
                const uint64_t *bt = bb + (int64_t)t * tap_words * XI_BLOCK;
                for (int w = 0; w < tap_words; ++w) {
                    const uint64x2_t x = vdupq_n_u64(at[w]);
                    for (int q = 0; q < PAIRS; ++q) {
                        const uint64x2_t diff = veorq_u64(x, vld1q_u64(bt + w * XI_BLOCK + 2 * q));
                        bytes[q] = vaddq_u8(bytes[q], vcntq_u8(vreinterpretq_u8_u64(diff)));
                    }
                    if (++pending == MAX_BYTE_WORDS) {
                        widen(bytes, sums);
                        pending = 0;
                    }
                }
            }
            widen(bytes, sums);
            int32_t *ci = c + (int64_t)i * ldc + nb * XI_BLOCK;
            for (int q = 0; q < PAIRS; ++q) {
                const uint64x2_t total = vpaddlq_u32(sums[q]);
                ci[2 * q] = (int32_t)vgetq_lane_u64(total, 0);
                ci[2 * q + 1] = (int32_t)vgetq_lane_u64(total, 1);
            }
        }
    }
}
#endif
