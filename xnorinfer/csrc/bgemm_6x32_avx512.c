/* AVX-512 VPOPCNTDQ micro-kernel: a 6-row x 32-channel tile kept in 24 ZMM accumulators.
 * Per packed word: 4 weight loads (8 channels each), 6 broadcasts, then XOR, VPOPCNTQ and a
 * 64-bit add per accumulator; counts are narrowed to int32 once, when the tile is stored. */
#include "bgemm.h"

#ifdef XI_X86
#include <immintrin.h>

#define XI_TARGET XI_TARGET_AVX512_VPOPCNTDQ
#define XI_INLINE static inline __attribute__((always_inline)) XI_TARGET

enum { MR = 6, NB = 4 };

/* One tile of mr <= MR rows and nb <= NB panels; always inlined with constant mr and nb so the
 * accumulator arrays live in registers. */
XI_INLINE void tile(const int mr, const int nb, int taps, int tap_words, const uint64_t *const *a,
                    const uint64_t *b, int64_t panel_stride, int32_t *c, int ldc)
{
    __m512i acc[MR][NB];
#pragma GCC unroll 6
    for (int i = 0; i < mr; ++i)
#pragma GCC unroll 4
        for (int j = 0; j < nb; ++j)
            acc[i][j] = _mm512_setzero_si512();

    for (int t = 0; t < taps; ++t) {
        const uint64_t *ap[MR];
#pragma GCC unroll 6
        for (int i = 0; i < mr; ++i)
            ap[i] = a[i * taps + t];
        const uint64_t *bt = b + (int64_t)t * tap_words * XI_PANEL;
        for (int w = 0; w < tap_words; ++w) {
            __m512i wv[NB];
#pragma GCC unroll 4
            for (int j = 0; j < nb; ++j)
                wv[j] = _mm512_loadu_si512((const void *)(bt + j * panel_stride + w * XI_PANEL));
#pragma GCC unroll 6
            for (int i = 0; i < mr; ++i) {
                const __m512i av = _mm512_set1_epi64((long long)ap[i][w]);
#pragma GCC unroll 4
                for (int j = 0; j < nb; ++j)
                    acc[i][j] = _mm512_add_epi64(
                        acc[i][j], _mm512_popcnt_epi64(_mm512_xor_si512(av, wv[j])));
            }
        }
    }

#pragma GCC unroll 6
    for (int i = 0; i < mr; ++i)
#pragma GCC unroll 4
        for (int j = 0; j < nb; ++j)
            _mm256_storeu_si256((__m256i *)(c + (int64_t)i * ldc + j * XI_PANEL),
                                _mm512_cvtepi64_epi32(acc[i][j]));
}

XI_TARGET void xi_bgemm_6x32_avx512(int m, int npanels, int taps, int tap_words, const uint64_t *const *a,
                                    const uint64_t *b, int32_t *c, int ldc)
{
    XI_BGEMM_BY_PANELS(tile, MR, NB, m, npanels, taps, tap_words, a, b, c, ldc);
}
#endif
