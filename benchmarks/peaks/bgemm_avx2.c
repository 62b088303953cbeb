/* AVX2 binary-GEMM micro-kernels on L1-resident panels: the reference that the engine's AVX2
 * kernel (xnorinfer/csrc/bgemm_3x8_avx2.c) is measured against. Each function runs `reps` times a
 * tile of MR rows x NR channels over K words (K * 64 bits) and returns a checksum of its counts so
 * that no work can be dropped; bit-MACs per call = reps * MR * NR * K * 64.
 *
 * AVX2 has no vector popcount: a byte's count is two VPSHUFB lookups in a 16-entry table, one per
 * nibble. The variants differ in where the nibble split happens:
 *   byte_lut   split after the XOR, per row and register (the engine's kernel before issue 17):
 *              XOR, AND, shift, AND, 2 lookups, 2 adds per register;
 *   nibble     both operands stored as low/high nibble planes (split once, outside the loop):
 *              2 XORs, 2 lookups, 2 adds per register;
 *   nibble_act weights as nibble planes, each activation word split after its broadcast (AND,
 *              shift, AND once per row, shared by the row's registers);
 *   tables     a lookup table per activation nibble, weights one nibble per byte (below).
 * Byte counts are summed for up to 31 words and then widened with VPSADBW, as in the engine. */
#include <immintrin.h>
#include <stdint.h>

#define TARGET __attribute__((target("avx2")))
#define INLINE static inline __attribute__((always_inline)) TARGET

enum { K = 64, FLUSH_EVERY = 31 };

static uint64_t a_words[6 * K] __attribute__((aligned(64)));
static uint64_t a_planes[6 * K * 2] __attribute__((aligned(64)));
static uint64_t b_words[K * 16] __attribute__((aligned(64)));
static uint64_t b_planes[K * 32] __attribute__((aligned(64)));

TARGET void xi_peak_init(uint64_t seed)
{
    uint64_t s = seed | 1;
    for (int i = 0; i < 6 * K; ++i) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        a_words[i] = s;
        a_planes[2 * i] = s & 0x0f0f0f0f0f0f0f0fULL;
        a_planes[2 * i + 1] = (s >> 4) & 0x0f0f0f0f0f0f0f0fULL;
    }
    /* b_words: [k][16 channels]; b_planes: [k][lo 16 channels | hi 16 channels] */
    for (int k = 0; k < K; ++k)
        for (int j = 0; j < 16; ++j) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            b_words[k * 16 + j] = s;
            b_planes[k * 32 + j] = s & 0x0f0f0f0f0f0f0f0fULL;
            b_planes[k * 32 + 16 + j] = (s >> 4) & 0x0f0f0f0f0f0f0f0fULL;
        }
}

INLINE __m256i lut_counts(void)
{
    return _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3,
                            2, 3, 3, 4);
}

INLINE __m256i hsum(__m256i acc, __m256i bytes)
{
    return _mm256_add_epi64(acc, _mm256_sad_epu8(bytes, _mm256_setzero_si256()));
}

/* R registers of 4 channels each (NR = 4 * R) */
#define DEFINE_TILE(NAME, MR, R, STEP)                                                                  \
    TARGET int64_t NAME(int64_t reps)                                                                   \
    {                                                                                                   \
        const __m256i lut = lut_counts(), m = _mm256_set1_epi8(0x0f);                                   \
        __m256i total = _mm256_setzero_si256();                                                         \
        for (int64_t rep = 0; rep < reps; ++rep) {                                                      \
            __m256i bytes[MR][R], sums[MR][R];                                                          \
            for (int i = 0; i < MR; ++i)                                                                \
                _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r)                                     \
                    bytes[i][r] = sums[i][r] = _mm256_setzero_si256();                                  \
            int pending = 0;                                                                            \
            for (int k = 0; k < K; ++k) {                                                               \
                STEP(MR, R)                                                                             \
                if (++pending == FLUSH_EVERY) {                                                         \
                    _Pragma("GCC unroll 6") for (int i = 0; i < MR; ++i)                                \
                        _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r)                             \
                            sums[i][r] = hsum(sums[i][r], bytes[i][r]), bytes[i][r] = _mm256_setzero_si256(); \
                    pending = 0;                                                                        \
                }                                                                                       \
            }                                                                                           \
            for (int i = 0; i < MR; ++i)                                                                \
                _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r)                                     \
                    total = _mm256_add_epi64(total, hsum(sums[i][r], bytes[i][r]));                     \
        }                                                                                               \
        return _mm256_extract_epi64(total, 0) + _mm256_extract_epi64(total, 1) +                        \
               _mm256_extract_epi64(total, 2) + _mm256_extract_epi64(total, 3);                         \
    }

#define STEP_BYTE_LUT(MR, R)                                                                            \
    __m256i w[R];                                                                                       \
    _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r)                                                 \
        w[r] = _mm256_load_si256((const __m256i *)(b_words + k * 16 + 4 * r));                          \
    _Pragma("GCC unroll 6") for (int i = 0; i < MR; ++i)                                                \
    {                                                                                                   \
        const __m256i av = _mm256_set1_epi64x((long long)a_words[i * K + k]);                           \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r) {                                           \
            const __m256i x = _mm256_xor_si256(av, w[r]);                                               \
            const __m256i lo = _mm256_and_si256(x, m), hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), m); \
            bytes[i][r] = _mm256_add_epi8(bytes[i][r], _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo),    \
                                                                       _mm256_shuffle_epi8(lut, hi)));  \
        }                                                                                               \
    }

/* the activation word's nibble planes: stored split, or split after the broadcast */
#define ACT_PRESPLIT(i)                                                                                 \
    const __m256i al = _mm256_set1_epi64x((long long)a_planes[(i * K + k) * 2]);                        \
    const __m256i ah = _mm256_set1_epi64x((long long)a_planes[(i * K + k) * 2 + 1]);
#define ACT_SPLIT(i)                                                                                    \
    const __m256i av = _mm256_set1_epi64x((long long)a_words[i * K + k]);                               \
    const __m256i al = _mm256_and_si256(av, m), ah = _mm256_and_si256(_mm256_srli_epi16(av, 4), m);

#define STEP_PLANES(MR, R, ACT)                                                                         \
    __m256i wl[R], wh[R];                                                                               \
    _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r)                                                 \
    {                                                                                                   \
        wl[r] = _mm256_load_si256((const __m256i *)(b_planes + k * 32 + 4 * r));                        \
        wh[r] = _mm256_load_si256((const __m256i *)(b_planes + k * 32 + 16 + 4 * r));                   \
    }                                                                                                   \
    _Pragma("GCC unroll 6") for (int i = 0; i < MR; ++i)                                                \
    {                                                                                                   \
        ACT(i)                                                                                          \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r)                                             \
            bytes[i][r] = _mm256_add_epi8(                                                              \
                _mm256_add_epi8(bytes[i][r], _mm256_shuffle_epi8(lut, _mm256_xor_si256(al, wl[r]))),    \
                _mm256_shuffle_epi8(lut, _mm256_xor_si256(ah, wh[r])));                                 \
    }
#define STEP_NIBBLE(MR, R) STEP_PLANES(MR, R, ACT_PRESPLIT)
#define STEP_NIBBLE_ACT(MR, R) STEP_PLANES(MR, R, ACT_SPLIT)

DEFINE_TILE(xi_peak_byte_lut_4x8, 4, 2, STEP_BYTE_LUT)
DEFINE_TILE(xi_peak_byte_lut_2x16, 2, 4, STEP_BYTE_LUT)
DEFINE_TILE(xi_peak_nibble_4x8, 4, 2, STEP_NIBBLE)
DEFINE_TILE(xi_peak_nibble_3x8, 3, 2, STEP_NIBBLE)
DEFINE_TILE(xi_peak_nibble_2x16, 2, 4, STEP_NIBBLE)
DEFINE_TILE(xi_peak_nibble_6x8, 6, 2, STEP_NIBBLE)
DEFINE_TILE(xi_peak_nibble_act_4x8, 4, 2, STEP_NIBBLE_ACT)
DEFINE_TILE(xi_peak_nibble_act_2x16, 2, 4, STEP_NIBBLE_ACT)

/* tables: every activation nibble v stands for a 16-entry table popcount(v ^ i), precomputed per
 * word (16 tables of 16 bytes); weights as one nibble per byte, 32 channels per register, so one
 * lookup counts one nibble of 32 channels: 1 VPSHUFB and 1 add per 128 bit-MACs. Byte counts grow
 * by up to 64 per word, so they are widened to 16 bits every 3 words. */
static uint8_t a_tables[4 * K * 16 * 16] __attribute__((aligned(64)));
static uint8_t b_nibbles[K * 16 * 64] __attribute__((aligned(64))); /* [k][nibble][64 channels] */

TARGET void xi_peak_init_tables(void)
{
    for (int i = 0; i < 4 * K; ++i)
        for (int j = 0; j < 16; ++j) {
            const int v = (int)(a_words[i] >> (4 * j)) & 15;
            for (int e = 0; e < 16; ++e)
                a_tables[(i * 16 + j) * 16 + e] = (uint8_t)__builtin_popcount(v ^ e);
        }
    for (int k = 0; k < K; ++k)
        for (int j = 0; j < 16; ++j)
            for (int c = 0; c < 64; ++c)
                b_nibbles[(k * 16 + j) * 64 + c] = (uint8_t)((b_words[k * 16 + (c & 15)] >> (4 * j)) & 15);
}

#define DEFINE_TABLES(NAME, MR, R)                                                                      \
    TARGET int64_t NAME(int64_t reps)                                                                   \
    {                                                                                                   \
        const __m256i zero = _mm256_setzero_si256();                                                    \
        __m256i total = zero;                                                                           \
        for (int64_t rep = 0; rep < reps; ++rep) {                                                      \
            __m256i bytes[MR][R], lo[MR][R], hi[MR][R];                                                 \
            _Pragma("GCC unroll 4") for (int i = 0; i < MR; ++i)                                        \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r)                                         \
                bytes[i][r] = lo[i][r] = hi[i][r] = zero;                                               \
            for (int k = 0; k < K; ++k) {                                                               \
                _Pragma("GCC unroll 16") for (int j = 0; j < 16; ++j)                                   \
                {                                                                                       \
                    __m256i w[R];                                                                       \
                    _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r)                                 \
                        w[r] = _mm256_load_si256((const __m256i *)(b_nibbles + (k * 16 + j) * 64 + 32 * r)); \
                    _Pragma("GCC unroll 4") for (int i = 0; i < MR; ++i)                                \
                    {                                                                                   \
                        const __m256i t = _mm256_broadcastsi128_si256(                                  \
                            _mm_load_si128((const __m128i *)(a_tables + ((i * K + k) * 16 + j) * 16))); \
                        _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r)                             \
                            bytes[i][r] = _mm256_add_epi8(bytes[i][r], _mm256_shuffle_epi8(t, w[r]));   \
                    }                                                                                   \
                }                                                                                       \
                if (k % 3 == 2) {                                                                       \
                    _Pragma("GCC unroll 4") for (int i = 0; i < MR; ++i)                                \
                    _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r) {                               \
                        lo[i][r] = _mm256_add_epi16(lo[i][r], _mm256_unpacklo_epi8(bytes[i][r], zero)); \
                        hi[i][r] = _mm256_add_epi16(hi[i][r], _mm256_unpackhi_epi8(bytes[i][r], zero)); \
                        bytes[i][r] = zero;                                                             \
                    }                                                                                   \
                }                                                                                       \
            }                                                                                           \
            _Pragma("GCC unroll 4") for (int i = 0; i < MR; ++i)                                        \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r) {                                       \
                lo[i][r] = _mm256_add_epi16(lo[i][r], _mm256_unpacklo_epi8(bytes[i][r], zero));         \
                hi[i][r] = _mm256_add_epi16(hi[i][r], _mm256_unpackhi_epi8(bytes[i][r], zero));         \
                total = _mm256_add_epi64(total, _mm256_cvtepu16_epi64(_mm256_castsi256_si128(lo[i][r]))); \
                total = _mm256_add_epi64(total, _mm256_cvtepu16_epi64(_mm256_castsi256_si128(hi[i][r]))); \
            }                                                                                           \
        }                                                                                               \
        return _mm256_extract_epi64(total, 0) + _mm256_extract_epi64(total, 1) +                        \
               _mm256_extract_epi64(total, 2) + _mm256_extract_epi64(total, 3);                         \
    }

DEFINE_TABLES(xi_peak_tables_3x64, 3, 2)
DEFINE_TABLES(xi_peak_tables_4x64, 4, 2)

/* The engine's own AVX2 kernel, compiled from its source, on L1-resident data of a layer's shape:
 * m rows (bconv.c's tiles are 48), npanels panels of 8 channels, taps x tap_words words per row.
 * Bit-MACs per call = reps * m * npanels * 8 * taps * tap_words * 64. */
#include "bgemm_3x8_avx2.c"

enum { ENGINE_ROWS = 48, ENGINE_WORDS = 160, ENGINE_PANELS = 16 };
static uint64_t e_act[ENGINE_ROWS * ENGINE_WORDS] __attribute__((aligned(64)));
static uint64_t e_weights[ENGINE_PANELS * ENGINE_WORDS * 8] __attribute__((aligned(64)));
static const uint64_t *e_ptrs[ENGINE_ROWS * ENGINE_WORDS];
static int32_t e_counts[ENGINE_ROWS * ENGINE_PANELS * 8] __attribute__((aligned(64)));

TARGET int64_t xi_peak_engine(int64_t reps, int m, int npanels, int taps, int tap_words)
{
    if (m > ENGINE_ROWS || npanels > ENGINE_PANELS || taps * tap_words > ENGINE_WORDS)
        return -1;
    uint64_t s = 88172645463325252ULL;
    for (int i = 0; i < ENGINE_ROWS * ENGINE_WORDS; ++i)
        s ^= s << 13, s ^= s >> 7, s ^= s << 17, e_act[i] = s;
    for (int i = 0; i < ENGINE_PANELS * ENGINE_WORDS * 8; ++i)
        s ^= s << 13, s ^= s >> 7, s ^= s << 17, e_weights[i] = s;
    /* row i, tap t: a pixel's words, rows in the order of a convolution's neighbouring pixels */
    for (int i = 0; i < m; ++i)
        for (int t = 0; t < taps; ++t)
            e_ptrs[i * taps + t] = e_act + ((i + t) % m) * taps * tap_words + t * tap_words;
    int64_t total = 0;
    for (int64_t rep = 0; rep < reps; ++rep) {
        xi_bgemm_3x8_avx2(m, npanels, taps, tap_words, e_ptrs, e_weights, e_counts, npanels * 8);
        total += e_counts[rep % (m * npanels * 8)];
    }
    return total;
}
