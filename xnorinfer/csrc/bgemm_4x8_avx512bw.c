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

/* One tile of mr <= MR rows and one block of 8 channels, always inlined with mr constant. */
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
    int t = 0, w = 0, pending = 0; /* word k0 of a row is word w of its tap t */
    for (int64_t k0 = 0; k0 < k; k0 += GROUP) {
        const int n = k - k0 < GROUP ? (int)(k - k0) : GROUP;
        __m512i wv[GROUP];
        const uint64_t *const *tap[GROUP];
        int word[GROUP];
#pragma GCC unroll 4
        for (int q = 0; q < GROUP; ++q) {
            if (q < n) {
                wv[q] = _mm512_loadu_si512((const void *)(b + (k0 + q) * XI_BLOCK));
                tap[q] = a + t, word[q] = w;
                if (++w == tap_words)
                    w = 0, ++t;
            } else {
                wv[q] = zero, tap[q] = a, word[q] = -1; /* a word past the end: XOR 0 */
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < mr; ++i) {
            __m512i x[GROUP];
#pragma GCC unroll 4
            for (int q = 0; q < GROUP; ++q)
                x[q] = word[q] < 0 ? zero
                                   : _mm512_xor_si512(_mm512_set1_epi64((long long)tap[q][i * taps][word[q]]), wv[q]);
            __m512i twos_a, twos_b, four;
            XI_CSA(twos_a, ones[i], ones[i], x[0], x[1]);
            XI_CSA(twos_b, ones[i], ones[i], x[2], x[3]);
            XI_CSA(four, twos[i], twos[i], twos_a, twos_b);
            four_bytes[i] = _mm512_add_epi8(four_bytes[i], popcount_bytes(four, table, low_nibble));
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

XI_TARGET void xi_bgemm_4x8_avx512bw(int m, int nblocks, int taps, int tap_words, const uint64_t *const *a,
                                     const uint64_t *b, int32_t *c, int ldc)
{
    /* Rows of a few words (1x1 convs of up to 448 channels) count every word with the table
     * instead: the adders' state costs two table popcounts a tile, and a part group pads with
     * zeros. */
    if ((int64_t)taps * tap_words < SHORT_ROW_WORDS) {
        xi_bgemm_6x16_avx512bw(m, nblocks, taps, tap_words, a, b, c, ldc);
        return;
    }
    XI_BGEMM_BY_TILES(tile, MR, m, nblocks, taps, tap_words, a, b, c, ldc);
}
#endif
