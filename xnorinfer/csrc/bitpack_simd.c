/* SIMD sign packers: one compare per 8 (AVX2) or 16 (AVX-512) floats yields their bits directly
 * (VMOVMSKPS / a compare into a mask register), instead of a compare and shift per channel.
 * `v < 0` (or `v <= 0` with le) with an ordered compare, as the scalar packer: -0.0 packs as +0.0
 * does, and NaN as +1 (and is counted, so the caller can refuse it). NaN lanes are collected like
 * the signs and counted only when there are any: these builds may not use the POPCNT instruction,
 * and a dozen instructions per vector counting none took a quarter of ReActNet-A's stem, which
 * packs 32-channel pixels. */
#include "bitpack_impl.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

/* The compare's predicate must be an immediate: one intrinsic per mode, the other branch folded. */
#define XI_CMP256_SIGN(v, zero, le) ((le) ? _mm256_cmp_ps((v), (zero), _CMP_LE_OQ) : _mm256_cmp_ps((v), (zero), _CMP_LT_OQ))
#define XI_CMP512_SIGN(valid, v, zero, le)                                                         \
    ((le) ? _mm512_mask_cmp_ps_mask((valid), (v), (zero), _CMP_LE_OQ)                              \
          : _mm512_mask_cmp_ps_mask((valid), (v), (zero), _CMP_LT_OQ))

__attribute__((target("avx2"))) static inline __attribute__((always_inline)) int64_t
pack_run_avx2(const float *x, const float *bias, int n, const int le, uint64_t *out)
{
    const __m256 zero = _mm256_setzero_ps();
    int64_t nans = 0;
    for (int w = 0; w * 64 < n; ++w) {
        const int base = w * 64, len = n - base < 64 ? n - base : 64;
        uint64_t word = 0, nan_bits = 0;
        int k = 0;
        for (; k + 8 <= len; k += 8) {
            __m256 v = _mm256_loadu_ps(x + base + k);
            if (bias)
                v = _mm256_add_ps(v, _mm256_loadu_ps(bias + base + k));
            word |= (uint64_t)(unsigned)_mm256_movemask_ps(XI_CMP256_SIGN(v, zero, le)) << k;
            nan_bits |= (uint64_t)(unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) << k;
        }
        if (nan_bits)
            nans += __builtin_popcountll(nan_bits);
        for (; k < len; ++k) {
            const float v = bias ? x[base + k] + bias[base + k] : x[base + k];
            word |= (uint64_t)(le ? v <= 0.0f : v < 0.0f) << k;
            nans += (v != v);
        }
        out[w] = word;
    }
    return nans;
}

__attribute__((target("avx2"))) int64_t xi_pack_run_avx2(const float *x, const float *bias, int n, int zero_to,
                                                         uint64_t *out)
{
    return XI_PACK_BY_MODE(pack_run_avx2, x, bias, n, zero_to, out);
}

__attribute__((target("avx512f"))) static inline __attribute__((always_inline)) int64_t
pack_run_avx512(const float *x, const float *bias, int n, const int le, uint64_t *out)
{
    const __m512 zero = _mm512_setzero_ps();
    int64_t nans = 0;
    for (int w = 0; w * 64 < n; ++w) {
        uint64_t word = 0, nan_bits = 0;
        for (int k = 0; k < 64; k += 16) {
            const int at = w * 64 + k, lanes = n - at < 16 ? n - at : 16;
            if (lanes <= 0)
                break;
            const __mmask16 valid = (__mmask16)((1u << lanes) - 1u);
            __m512 v = _mm512_maskz_loadu_ps(valid, x + at);
            if (bias)
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(valid, bias + at));
            word |= (uint64_t)XI_CMP512_SIGN(valid, v, zero, le) << k;
            nan_bits |= (uint64_t)_mm512_mask_cmp_ps_mask(valid, v, v, _CMP_UNORD_Q) << k;
        }
        out[w] = word;
        if (nan_bits)
            nans += __builtin_popcountll(nan_bits);
    }
    return nans;
}
__attribute__((target("avx512f"))) int64_t xi_pack_run_avx512(const float *x, const float *bias, int n,
                                                              int zero_to, uint64_t *out)
{
    return XI_PACK_BY_MODE(pack_run_avx512, x, bias, n, zero_to, out);
}
#endif
