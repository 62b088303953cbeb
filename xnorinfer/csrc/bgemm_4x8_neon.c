/* NEON micro-kernel (aarch64, and ARMv7 with NEON). NEON has a per-byte popcount (CNT), so each
 * XOR of an activation word with 8 channels' weight words (four Q registers) is counted 16 bytes
 * at a time and added into byte counters: EOR, CNT, ADD per 128 bits, the least an XOR-popcount
 * step can be without a dot-product instruction.
 *
 * Tile: MR rows x 8 channels. Each weight register is loaded once for the MR rows (aarch64 has 32
 * Q registers: 4 rows x (4 byte counters + 2 sums) + 4 weights; ARMv7 has 16, so 2 rows). A byte
 * gains at most 8 per word, so the byte counters are widened after at most 31 words; the words are
 * walked in chunks of exactly that many (across taps), so the inner loop is the steps alone, with
 * no per-word test. Widening folds the 8 byte lanes of a channel into one 32-bit lane, so the sums
 * come out in channel order, 8 channels in two registers. */
#include "bgemm.h"
#include "neon.h"

#ifdef XI_NEON

#define XI_INLINE static inline __attribute__((always_inline)) XI_NEON_TARGET

#define MR XI_BGEMM_NEON_MR /* bgemm.h: 4 on aarch64, 2 on ARMv7 (xi_bgemm_2x8_neon there) */
enum { CHUNK_WORDS = 31 }; /* 31 * 8 = 248 fits a byte */

/* {a0+a1, a2+a3, a4+a5, a6+a7, b0+b1, ...}: AArch64's ADDP, from two 64-bit pairwise adds on ARMv7. */
XI_INLINE uint16x8_t pairwise_u16(uint16x8_t a, uint16x8_t b)
{
#if defined(__aarch64__)
    return vpaddq_u16(a, b);
#else
    return vcombine_u16(vpadd_u16(vget_low_u16(a), vget_high_u16(a)), vpadd_u16(vget_low_u16(b), vget_high_u16(b)));
#endif
}

/* bytes[q] holds channels 2q (low half) and 2q+1; sums[0] channels 0-3 and sums[1] 4-7, a lane each. */
XI_INLINE void widen(uint8x16_t bytes[4], uint32x4_t sums[2])
{
    for (int h = 0; h < 2; ++h) {
        const uint16x8_t lo = vpaddlq_u8(bytes[2 * h]), hi = vpaddlq_u8(bytes[2 * h + 1]);
        sums[h] = vpadalq_u16(sums[h], pairwise_u16(lo, hi));
    }
    for (int q = 0; q < 4; ++q)
        bytes[q] = vdupq_n_u8(0);
}

XI_INLINE void tile(const int mr, int taps, int tap_words, const uint64_t *const *a, const uint64_t *b,
                    int32_t *c, int ldc)
{
    uint8x16_t bytes[MR][4];
    uint32x4_t sums[MR][2];
    for (int i = 0; i < mr; ++i) {
        for (int q = 0; q < 4; ++q)
            bytes[i][q] = vdupq_n_u8(0);
        sums[i][0] = sums[i][1] = vdupq_n_u32(0);
    }
    int t = 0, w0 = 0;
    while (t < taps) {
        for (int budget = CHUNK_WORDS; budget > 0 && t < taps;) {
            const int n = tap_words - w0 < budget ? tap_words - w0 : budget;
            const uint64_t *ap[MR];
            for (int i = 0; i < mr; ++i)
                ap[i] = a[i * taps + t] + w0;
            const uint64_t *bt = b + ((int64_t)t * tap_words + w0) * XI_PANEL;
            for (int w = 0; w < n; ++w) {
                XI_MCA_MARK("BEGIN bgemm");
                const uint64x2_t w0v = vld1q_u64(bt), w1v = vld1q_u64(bt + 2), w2v = vld1q_u64(bt + 4),
                                 w3v = vld1q_u64(bt + 6);
                bt += XI_PANEL;
                for (int i = 0; i < mr; ++i) {
                    const uint64x2_t x = vld1q_dup_u64(ap[i]++);
                    bytes[i][0] = vaddq_u8(bytes[i][0], vcntq_u8(vreinterpretq_u8_u64(veorq_u64(x, w0v))));
                    bytes[i][1] = vaddq_u8(bytes[i][1], vcntq_u8(vreinterpretq_u8_u64(veorq_u64(x, w1v))));
                    bytes[i][2] = vaddq_u8(bytes[i][2], vcntq_u8(vreinterpretq_u8_u64(veorq_u64(x, w2v))));
                    bytes[i][3] = vaddq_u8(bytes[i][3], vcntq_u8(vreinterpretq_u8_u64(veorq_u64(x, w3v))));
                }
                XI_MCA_MARK("END");
            }
            budget -= n;
            w0 += n;
            if (w0 == tap_words)
                w0 = 0, ++t;
        }
        for (int i = 0; i < mr; ++i)
            widen(bytes[i], sums[i]);
    }
    for (int i = 0; i < mr; ++i) {
        vst1q_s32(c + (int64_t)i * ldc, vreinterpretq_s32_u32(sums[i][0]));
        vst1q_s32(c + (int64_t)i * ldc + 4, vreinterpretq_s32_u32(sums[i][1]));
    }
}

XI_NEON_TARGET void XI_BGEMM_NEON(int m, int npanels, int taps, int tap_words, const uint64_t *const *a,
                                  const uint64_t *b, int32_t *c, int ldc)
{
    XI_BGEMM_BY_TILES(tile, MR, m, npanels, taps, tap_words, a, b, c, ldc);
}
#endif
