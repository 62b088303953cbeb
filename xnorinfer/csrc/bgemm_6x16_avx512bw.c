/* AVX-512BW micro-kernel for short rows (bgemm_4x8_avx512bw.c takes the rest), for AVX-512 CPUs
 * without VPOPCNTDQ (Skylake-SP, Cascade Lake): the AVX2 kernel's nibble-table popcount (VPSHUFB on each nibble) at 512 bits, where a ZMM register holds
 * one word of 8 channels as the VPOPCNTDQ kernel's do. Byte counts grow by at most 8 per word, so
 * they are summed in 8-bit lanes for up to 31 words and only then widened with VPSADBW, which
 * leaves each channel's count in its own 64-bit lane.
 * Tile: 6 rows x 16 channels, 12 byte counters and 12 sums in ZMM registers (2 weight registers,
 * the table and the nibble mask make 28 of the 32). */
#include "bgemm.h"

#ifdef XI_X86
#include <immintrin.h>

#define XI_TARGET XI_TARGET_AVX512BW
#define XI_INLINE static inline __attribute__((always_inline)) XI_TARGET

enum { MR = 6, NB = 2, FLUSH_EVERY = 31 };

XI_INLINE __m512i popcount_bytes(__m512i x, __m512i table, __m512i low_nibble)
{
    const __m512i lo = _mm512_and_si512(x, low_nibble);
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), low_nibble);
    return _mm512_add_epi8(_mm512_shuffle_epi8(table, lo), _mm512_shuffle_epi8(table, hi));
}

/* One tile of mr <= MR rows and nb <= NB panels, always inlined with both constant. */
XI_INLINE void tile(const int mr, const int nb, int taps, int tap_words, const uint64_t *const *a,
                    const uint64_t *b, int64_t panel_stride, int32_t *c, int ldc)
{
    const __m512i table = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
    const __m512i low_nibble = _mm512_set1_epi8(0x0f);
    const __m512i zero = _mm512_setzero_si512();
    __m512i bytes[MR][NB], sums[MR][NB];
#pragma GCC unroll 6
    for (int i = 0; i < mr; ++i)
#pragma GCC unroll 2
        for (int j = 0; j < nb; ++j)
            bytes[i][j] = sums[i][j] = zero;

    int pending = 0;
    for (int t = 0; t < taps; ++t) {
        const uint64_t *ap[MR];
#pragma GCC unroll 6
        for (int i = 0; i < mr; ++i)
            ap[i] = a[i * taps + t];
        const uint64_t *bt = b + (int64_t)t * tap_words * XI_PANEL;
        for (int w = 0; w < tap_words; ++w) {
            __m512i wv[NB];
#pragma GCC unroll 2
            for (int j = 0; j < nb; ++j)
                wv[j] = _mm512_loadu_si512((const void *)(bt + j * panel_stride + w * XI_PANEL));
#pragma GCC unroll 6
            for (int i = 0; i < mr; ++i) {
                const __m512i av = _mm512_set1_epi64((long long)ap[i][w]);
#pragma GCC unroll 2
                for (int j = 0; j < nb; ++j)
                    bytes[i][j] = _mm512_add_epi8(
                        bytes[i][j], popcount_bytes(_mm512_xor_si512(av, wv[j]), table, low_nibble));
            }
            if (++pending == FLUSH_EVERY) {
#pragma GCC unroll 6
                for (int i = 0; i < mr; ++i)
#pragma GCC unroll 2
                    for (int j = 0; j < nb; ++j) {
                        sums[i][j] = _mm512_add_epi64(sums[i][j], _mm512_sad_epu8(bytes[i][j], zero));
                        bytes[i][j] = zero;
                    }
                pending = 0;
            }
        }
    }

#pragma GCC unroll 6
    for (int i = 0; i < mr; ++i)
#pragma GCC unroll 2
        for (int j = 0; j < nb; ++j) {
            const __m512i s = _mm512_add_epi64(sums[i][j], _mm512_sad_epu8(bytes[i][j], zero));
            _mm256_storeu_si256((__m256i *)(c + (int64_t)i * ldc + j * XI_PANEL), _mm512_cvtepi64_epi32(s));
        }
}

XI_TARGET void xi_bgemm_6x16_avx512bw(int m, int npanels, int taps, int tap_words, const uint64_t *const *a,
                                      const uint64_t *b, int32_t *c, int ldc)
{
    XI_BGEMM_BY_PANELS(tile, MR, NB, m, npanels, taps, tap_words, a, b, c, ldc);
}
#endif
