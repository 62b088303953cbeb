/* AVX2 micro-kernel. AVX2 has no vector popcount, so each byte is counted with two 16-entry
 * table lookups (VPSHUFB on its low and high nibble). Byte counts grow by at most 8 per word, so
 * they are summed in 8-bit lanes for up to 31 words and only then widened with VPSADBW.
 * Tile: 4 rows x 8 channels (two YMM registers per row). */
#include "bgemm.h"

#ifdef XI_X86
#include <immintrin.h>

#define XI_TARGET XI_TARGET_AVX2
#define XI_INLINE static inline __attribute__((always_inline)) XI_TARGET

enum { MR = 4, FLUSH_EVERY = 31 };

XI_INLINE __m256i popcount_bytes(__m256i x, __m256i lut, __m256i low_nibble)
{
    const __m256i lo = _mm256_and_si256(x, low_nibble);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low_nibble);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

XI_INLINE void tile(const int mr, int taps, int tap_words, const uint64_t *const *a,
                    const uint64_t *b, int32_t *c, int ldc)
{
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low_nibble = _mm256_set1_epi8(0x0f);
    const __m256i zero = _mm256_setzero_si256();
    __m256i bytes[MR][2], sums[MR][2];
#pragma GCC unroll 4
    for (int i = 0; i < mr; ++i)
        bytes[i][0] = bytes[i][1] = sums[i][0] = sums[i][1] = zero;

    int pending = 0;
    for (int t = 0; t < taps; ++t) {
        const uint64_t *ap[MR];
#pragma GCC unroll 4
        for (int i = 0; i < mr; ++i)
            ap[i] = a[i * taps + t];
        const uint64_t *bt = b + (int64_t)t * tap_words * XI_PANEL;
        for (int w = 0; w < tap_words; ++w) {
            const __m256i w0 = _mm256_loadu_si256((const __m256i *)(bt + w * XI_PANEL));
            const __m256i w1 = _mm256_loadu_si256((const __m256i *)(bt + w * XI_PANEL + 4));
#pragma GCC unroll 4
            for (int i = 0; i < mr; ++i) {
                const __m256i av = _mm256_set1_epi64x((long long)ap[i][w]);
                bytes[i][0] = _mm256_add_epi8(
                    bytes[i][0], popcount_bytes(_mm256_xor_si256(av, w0), lut, low_nibble));
                bytes[i][1] = _mm256_add_epi8(
                    bytes[i][1], popcount_bytes(_mm256_xor_si256(av, w1), lut, low_nibble));
            }
            if (++pending == FLUSH_EVERY) {
#pragma GCC unroll 4
                for (int i = 0; i < mr; ++i) {
                    sums[i][0] = _mm256_add_epi64(sums[i][0], _mm256_sad_epu8(bytes[i][0], zero));
                    sums[i][1] = _mm256_add_epi64(sums[i][1], _mm256_sad_epu8(bytes[i][1], zero));
                    bytes[i][0] = bytes[i][1] = zero;
                }
                pending = 0;
            }
        }
    }

    /* the low halves of the 64-bit sums, 8 channels, in one store per row */
    const __m256i low_halves = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
#pragma GCC unroll 4
    for (int i = 0; i < mr; ++i) {
        const __m256i s0 = _mm256_add_epi64(sums[i][0], _mm256_sad_epu8(bytes[i][0], zero));
        const __m256i s1 = _mm256_add_epi64(sums[i][1], _mm256_sad_epu8(bytes[i][1], zero));
        const __m256i packed = _mm256_blend_epi32(_mm256_permutevar8x32_epi32(s0, low_halves),
                                                  _mm256_permutevar8x32_epi32(s1, low_halves), 0xF0);
        _mm256_storeu_si256((__m256i *)(c + (int64_t)i * ldc), packed);
    }
}

XI_TARGET void xi_bgemm_4x8_avx2(int m, int npanels, int taps, int tap_words, const uint64_t *const *a,
                             const uint64_t *b, int32_t *c, int ldc)
{
    XI_BGEMM_BY_TILES(tile, MR, m, npanels, taps, tap_words, a, b, c, ldc);
}
#endif
