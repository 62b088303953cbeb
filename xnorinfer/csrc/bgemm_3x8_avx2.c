/* AVX2 micro-kernel. AVX2 has no vector popcount, so a byte is counted with two 16-entry table
 * lookups (VPSHUFB), one per nibble. Splitting a byte into its nibbles (AND, shift, AND) inside
 * the loop would cost as much as the lookups, so both operands are split once, outside it, into
 * nibble planes: word w becomes lo = w & 0x0f.. and hi = (w >> 4) & 0x0f.., and
 * popcount(a ^ b) = count(a.lo ^ b.lo) + count(a.hi ^ b.hi) byte by byte. A register of 4 channels
 * then takes 2 XORs, 2 lookups and 2 adds per word (8 operations unsplit).
 *
 * The split is done on the stack a chunk at a time: up to ROWS rows' activations for up to CHUNK
 * words of K (each row once per chunk, for every panel), each panel's weights for the same words
 * (once per panel, for every row). Byte counts grow by at most 8 per word, so a chunk of CHUNK = 31
 * words sums them in 8-bit lanes with no widening inside; its end widens them (VPSADBW) into the
 * counts, which the first chunk stores and the next ones add to.
 * Tile: 3 rows x 8 channels (two YMM registers per row). */
#include "bgemm.h"

#ifdef XI_X86
#include <immintrin.h>

#define XI_TARGET XI_TARGET_AVX2
#define XI_INLINE static inline __attribute__((always_inline)) XI_TARGET

enum {
    MR = 3,     /* 6 counters, 4 weight registers, the table and 2 broadcasts: no spills */
    CHUNK = 31, /* words per chunk: 31 * 8 = 248 fits a byte */
    ROWS = 48   /* rows split at a time (bconv.c's tiles are 48 rows) */
};

#define LOW_NIBBLES 0x0f0f0f0f0f0f0f0fULL

/* lo[k] and hi[k]: the low and high nibble planes of words[k], k < n */
XI_INLINE void split_words(const uint64_t *words, int n, uint64_t *lo, uint64_t *hi)
{
    const __m256i m = _mm256_set1_epi8(0x0f);
    int k = 0;
    for (; k + 4 <= n; k += 4) {
        const __m256i w = _mm256_loadu_si256((const __m256i *)(words + k));
        _mm256_storeu_si256((__m256i *)(lo + k), _mm256_and_si256(w, m));
        _mm256_storeu_si256((__m256i *)(hi + k), _mm256_and_si256(_mm256_srli_epi64(w, 4), m));
    }
    if (k + 2 <= n) { /* two-word taps (128 channels) are common */
        const __m128i w = _mm_loadu_si128((const __m128i *)(words + k));
        _mm_storeu_si128((__m128i *)(lo + k), _mm_and_si128(w, _mm256_castsi256_si128(m)));
        _mm_storeu_si128((__m128i *)(hi + k), _mm_and_si128(_mm_srli_epi64(w, 4), _mm256_castsi256_si128(m)));
        k += 2;
    }
    for (; k < n; ++k)
        lo[k] = words[k] & LOW_NIBBLES, hi[k] = (words[k] >> 4) & LOW_NIBBLES;
}

/* Row i's planes of `words` words: lo at a + i * a_stride, hi `words` further. */
XI_INLINE void tile(const int mr, int words, const uint64_t *a, int64_t a_stride, const uint64_t *b, int accumulate,
                    int32_t *c, int ldc)
{
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2,
                                         2, 3, 2, 3, 3, 4);
    const __m256i zero = _mm256_setzero_si256();
    __m256i bytes[MR][2];
#pragma GCC unroll 3
    for (int i = 0; i < mr; ++i)
        bytes[i][0] = bytes[i][1] = zero;

    for (int k = 0; k < words; ++k) {
        /* b: per word, 8 channels' low planes then their high planes */
        const __m256i lo0 = _mm256_load_si256((const __m256i *)(b + 16 * k));
        const __m256i lo1 = _mm256_load_si256((const __m256i *)(b + 16 * k + 4));
        const __m256i hi0 = _mm256_load_si256((const __m256i *)(b + 16 * k + 8));
        const __m256i hi1 = _mm256_load_si256((const __m256i *)(b + 16 * k + 12));
#pragma GCC unroll 3
        for (int i = 0; i < mr; ++i) {
            const __m256i alo = _mm256_set1_epi64x((long long)a[i * a_stride + k]);
            const __m256i ahi = _mm256_set1_epi64x((long long)a[i * a_stride + words + k]);
            const __m256i lo_counts0 = _mm256_shuffle_epi8(lut, _mm256_xor_si256(alo, lo0));
            const __m256i lo_counts1 = _mm256_shuffle_epi8(lut, _mm256_xor_si256(alo, lo1));
            bytes[i][0] = _mm256_add_epi8(_mm256_add_epi8(bytes[i][0], lo_counts0),
                                          _mm256_shuffle_epi8(lut, _mm256_xor_si256(ahi, hi0)));
            bytes[i][1] = _mm256_add_epi8(_mm256_add_epi8(bytes[i][1], lo_counts1),
                                          _mm256_shuffle_epi8(lut, _mm256_xor_si256(ahi, hi1)));
        }
    }

    /* per row: each channel's byte counts summed (VPSADBW: 64-bit sums, channels 0-3 and 4-7),
     * the two registers' sums interleaved into 32-bit lanes (0, 4, 1, 5, ...) and put in order */
    const __m256i in_order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
#pragma GCC unroll 3
    for (int i = 0; i < mr; ++i) {
        const __m256i s0 = _mm256_sad_epu8(bytes[i][0], zero), s1 = _mm256_sad_epu8(bytes[i][1], zero);
        __m256i counts = _mm256_permutevar8x32_epi32(_mm256_or_si256(s0, _mm256_slli_epi64(s1, 32)), in_order);
        __m256i *out = (__m256i *)(c + (int64_t)i * ldc);
        if (accumulate)
            counts = _mm256_add_epi32(counts, _mm256_loadu_si256(out));
        _mm256_storeu_si256(out, counts);
    }
}

XI_TARGET void xi_bgemm_3x8_avx2(int m, int npanels, int taps, int tap_words, const uint64_t *const *a,
                                 const uint64_t *b, int32_t *c, int ldc)
{
    const int k = taps * tap_words;
    const int nchunks = k > CHUNK ? (k + CHUNK - 1) / CHUNK : 1; /* k = 0 stores zeros */
    uint64_t a_split[ROWS * CHUNK * 2] __attribute__((aligned(64)));
    uint64_t b_split[CHUNK * 2 * XI_PANEL] __attribute__((aligned(64)));

    for (int r0 = 0; r0 < m; r0 += ROWS) {
        const int rows = m - r0 < ROWS ? m - r0 : ROWS;
        for (int chunk = 0; chunk < nchunks; ++chunk) {
            /* words [k0, k1) of K, chunks of equal size give no short last one */
            const int k0 = (int)((int64_t)k * chunk / nchunks), k1 = (int)((int64_t)k * (chunk + 1) / nchunks);
            const int words = k1 - k0;
            for (int i = 0; i < rows; ++i) {
                const uint64_t *const *ap = a + (int64_t)(r0 + i) * taps;
                uint64_t *dst = a_split + (int64_t)i * words * 2;
                for (int w = k0; w < k1;) { /* a tap's words are contiguous; taps are not */
                    const int t = w / tap_words, tw = w % tap_words;
                    const int n = tap_words - tw < k1 - w ? tap_words - tw : k1 - w;
                    split_words(ap[t] + tw, n, dst + (w - k0), dst + words + (w - k0));
                    w += n;
                }
            }
            for (int nb = 0; nb < npanels; ++nb) {
                const uint64_t *panel = b + ((int64_t)nb * k + k0) * XI_PANEL;
                for (int w = 0; w < words; ++w) /* 8 channels' low planes, then their high planes */
                    split_words(panel + w * XI_PANEL, XI_PANEL, b_split + w * 16, b_split + w * 16 + XI_PANEL);
                int32_t *cc = c + (int64_t)r0 * ldc + nb * XI_PANEL;
                for (int i0 = 0; i0 < rows; i0 += MR) {
                    const uint64_t *ra = a_split + (int64_t)i0 * words * 2;
                    int32_t *ct = cc + (int64_t)i0 * ldc;
                    switch (rows - i0 < MR ? rows - i0 : MR) {
                    case 3:
                        tile(3, words, ra, 2 * words, b_split, chunk > 0, ct, ldc);
                        break;
                    case 2:
                        tile(2, words, ra, 2 * words, b_split, chunk > 0, ct, ldc);
                        break;
                    default:
                        tile(1, words, ra, 2 * words, b_split, chunk > 0, ct, ldc);
                        break;
                    }
                }
            }
        }
    }
}
#endif
