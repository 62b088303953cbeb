/* AVX-512BW micro-kernel, for AVX-512 CPUs without VPOPCNTDQ (Skylake-SP, Cascade Lake). A ZMM
 * register holds one word of 8 channels, as in the VPOPCNTDQ kernel, and the popcounts are taken
 * Harley-Seal style: a carry-save adder is two VPTERNLOGQ (XOR3 and majority), so each group of 4
 * XORed words per channel is reduced to bit-sliced counters `ones` and `twos` (kept across groups)
 * and one word of weight-4 carries, and only that word is counted, with the nibble-table popcount
 * (VPSHUFB on each nibble, AVX-512BW). 4 words then take 4 XORs, 6 ternary-logic operations and one
 * table popcount, instead of 4 table popcounts. Carry counts grow by at most 8 per byte a group,
 * so they are summed in 8-bit lanes for up to 31 groups and only then widened with VPSADBW.
 * Tile: 4 rows x 8 channels; per row ones, twos, carry bytes and sums (16 ZMM registers), with 4
 * weight registers, the XORed words and the table: within the 32. Rows of fewer than 8 words run
 * bgemm_6x16_avx512bw.c, the table popcount of every word. */
#include "bgemm.h"

#ifdef XI_X86
#include <immintrin.h>

#define XI_TARGET XI_TARGET_AVX512BW
#define XI_INLINE static inline __attribute__((always_inline)) XI_TARGET

enum { MR = 4, GROUP = 4, FLUSH_EVERY = 31, SHORT_ROW_WORDS = 8 };

XI_INLINE __m512i popcount_bytes(__m512i x, __m512i table, __m512i low_nibble)
{
    const __m512i lo = _mm512_and_si512(x, low_nibble);
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), low_nibble);
    return _mm512_add_epi8(_mm512_shuffle_epi8(table, lo), _mm512_shuffle_epi8(table, hi));
}

/* A full adder on every bit: a + b + c = 2 * carry + sum. */
#define XI_CSA(carry, sum, a, b, c)                                                                                    \
    do {                                                                                                               \
        const __m512i a_ = (a), b_ = (b), c_ = (c);                                                                    \
        (carry) = _mm512_ternarylogic_epi64(a_, b_, c_, 0xE8); /* majority */                                         \
        (sum) = _mm512_ternarylogic_epi64(a_, b_, c_, 0x96);   /* a ^ b ^ c */                                        \
    } while (0)

/* The activation word at `p`, broadcast to 8 channels, XORed with their weight words in `wv`. */
#define XI_XOR_WORD(p, wv) _mm512_xor_si512(_mm512_set1_epi64((long long)*(p)), (wv))

/* Adds 4 XORed words of row i into its counters. */
#define XI_ADD_GROUP(i, x0, x1, x2, x3)                                                                                \
    do {                                                                                                               \
        __m512i twos_a, twos_b, four;                                                                                  \
        XI_CSA(twos_a, ones[i], ones[i], (x0), (x1));                                                                  \
        XI_CSA(twos_b, ones[i], ones[i], (x2), (x3));                                                                  \
        XI_CSA(four, twos[i], twos[i], twos_a, twos_b);                                                                \
        four_bytes[i] = _mm512_add_epi8(four_bytes[i], popcount_bytes(four, table, low_nibble));                       \
    } while (0)

/* One tile of mr <= MR rows and one panel of 8 channels, always inlined with mr constant. A row's
 * words are walked in groups of 4: within one tap when a tap has a multiple of 4 words, across two
 * taps when it has 2, and through a cursor otherwise (and for the last, part group: zeros pad it,
 * XORing to nothing). */
XI_INLINE void tile(const int mr, int taps, int tap_words, const uint64_t *const *a, const uint64_t *b, int32_t *c,
                    int ldc)
{
    const __m512i table = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
    const __m512i low_nibble = _mm512_set1_epi8(0x0f);
    const __m512i zero = _mm512_setzero_si512();
    /* per row: the bit-sliced ones and twos, byte counts of the weight-4 carries, 64-bit sums */
    __m512i ones[MR], twos[MR], four_bytes[MR], sums[MR];
#pragma GCC unroll 4
    for (int i = 0; i < mr; ++i)
        ones[i] = twos[i] = four_bytes[i] = sums[i] = zero;

    const int64_t k = (int64_t)taps * tap_words;
    int64_t k0 = 0;
    int t = 0, w = 0, pending = 0; /* word k0 of a row is word w of its tap t */
    const int within_tap = tap_words % GROUP == 0, two_taps = tap_words == 2;
    for (; k0 < k; k0 += GROUP) {
        __m512i wv[GROUP];
        const int n = k - k0 < GROUP ? (int)(k - k0) : GROUP;
#pragma GCC unroll 4
        for (int q = 0; q < GROUP; ++q)
            wv[q] = q < n ? _mm512_loadu_si512((const void *)(b + (k0 + q) * XI_PANEL)) : zero;
        if (within_tap) {
#pragma GCC unroll 4
            for (int i = 0; i < mr; ++i) {
                const uint64_t *p = a[i * taps + t] + w;
                XI_ADD_GROUP(i, XI_XOR_WORD(p, wv[0]), XI_XOR_WORD(p + 1, wv[1]), XI_XOR_WORD(p + 2, wv[2]),
                             XI_XOR_WORD(p + 3, wv[3]));
            }
            if ((w += GROUP) == tap_words)
                w = 0, ++t;
        } else if (two_taps && n == GROUP) {
#pragma GCC unroll 4
            for (int i = 0; i < mr; ++i) {
                const uint64_t *p = a[i * taps + t], *r = a[i * taps + t + 1];
                XI_ADD_GROUP(i, XI_XOR_WORD(p, wv[0]), XI_XOR_WORD(p + 1, wv[1]), XI_XOR_WORD(r, wv[2]),
                             XI_XOR_WORD(r + 1, wv[3]));
            }
            t += 2;
        } else {
            const uint64_t *const *tap[GROUP];
            int word[GROUP];
#pragma GCC unroll 4
            for (int q = 0; q < GROUP; ++q) {
                tap[q] = a + t, word[q] = q < n ? w : 0; /* past the end: any word, XORed with zeros */
                if (q < n && ++w == tap_words)
                    w = 0, ++t;
            }
#pragma GCC unroll 4
            for (int i = 0; i < mr; ++i) {
                __m512i x[GROUP];
#pragma GCC unroll 4
                for (int q = 0; q < GROUP; ++q)
                    x[q] = q < n ? XI_XOR_WORD(tap[q][i * taps] + word[q], wv[q]) : zero;
                XI_ADD_GROUP(i, x[0], x[1], x[2], x[3]);
            }
        }
        if (++pending == FLUSH_EVERY) {
#pragma GCC unroll 4
            for (int i = 0; i < mr; ++i) {
                sums[i] = _mm512_add_epi64(sums[i], _mm512_slli_epi64(_mm512_sad_epu8(four_bytes[i], zero), 2));
                four_bytes[i] = zero;
            }
            pending = 0;
        }
    }

#pragma GCC unroll 4
    for (int i = 0; i < mr; ++i) {
        __m512i s = _mm512_add_epi64(sums[i], _mm512_slli_epi64(_mm512_sad_epu8(four_bytes[i], zero), 2));
        s = _mm512_add_epi64(s, _mm512_slli_epi64(_mm512_sad_epu8(popcount_bytes(twos[i], table, low_nibble), zero), 1));
        s = _mm512_add_epi64(s, _mm512_sad_epu8(popcount_bytes(ones[i], table, low_nibble), zero));
        _mm256_storeu_si256((__m256i *)(c + (int64_t)i * ldc), _mm512_cvtepi64_epi32(s));
    }
}

XI_TARGET void xi_bgemm_4x8_avx512bw(int m, int npanels, int taps, int tap_words, const uint64_t *const *a,
                                     const uint64_t *b, int32_t *c, int ldc)
{
    /* Rows of a few words (1x1 convs of up to 448 channels) count every word with the table
     * instead: the adders' state costs two table popcounts a tile, and a part group pads with
     * zeros. */
    if ((int64_t)taps * tap_words < SHORT_ROW_WORDS) {
        xi_bgemm_6x16_avx512bw(m, npanels, taps, tap_words, a, b, c, ldc);
        return;
    }
    XI_BGEMM_BY_TILES(tile, MR, m, npanels, taps, tap_words, a, b, c, ldc);
}
#endif
