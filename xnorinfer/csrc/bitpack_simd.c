/* SIMD sign packers: one compare per 8 (AVX2) or 16 (AVX-512) floats yields their bits directly
 * (VMOVMSKPS / a compare into a mask register), instead of a compare and shift per channel.
 * `v < 0` (or `v <= 0` with le) with an ordered compare, as the scalar packer: -0.0 packs as +0.0
 * does, and NaN as +1 (and is counted, so the caller can refuse it). NaN lanes are collected like
 * the signs and counted only when there are any: these builds may not use the POPCNT instruction,
 * and counting every vector costs a dozen instructions, a large share of packing 32-channel pixels
 * (ReActNet-A's stem). The NEON packer (aarch64 and ARMv7) is at the end. */
#include "bitpack_impl.h"
#include "kernels.h"

#include <stddef.h>

/* Lanes [k, end) of a word by the scalar packer's test: the ones after the last whole vector. */
static inline __attribute__((always_inline, unused)) int64_t pack_lanes(const float *x, const float *bias, int k, int end,
                                                                const int le, uint64_t *word)
{
    int64_t nans = 0;
    for (; k < end; ++k) {
        const float v = bias ? x[k] + bias[k] : x[k];
        *word |= (uint64_t)(le ? v <= 0.0f : v < 0.0f) << k;
        nans += (v != v);
    }
    return nans;
}

#ifdef XI_X86
#include <immintrin.h>

/* The compare's predicate must be an immediate: one intrinsic per mode, the other branch folded. */
#define XI_CMP256_SIGN(v, zero, le) ((le) ? _mm256_cmp_ps((v), (zero), _CMP_LE_OQ) : _mm256_cmp_ps((v), (zero), _CMP_LT_OQ))
#define XI_CMP512_SIGN(valid, v, zero, le)                                                         \
    ((le) ? _mm512_mask_cmp_ps_mask((valid), (v), (zero), _CMP_LE_OQ)                              \
          : _mm512_mask_cmp_ps_mask((valid), (v), (zero), _CMP_LT_OQ))

XI_TARGET_AVX2 static inline __attribute__((always_inline)) int64_t
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
        nans += pack_lanes(x + base, bias ? bias + base : NULL, k, len, le, &word);
        out[w] = word;
    }
    return nans;
}

XI_TARGET_AVX2 int64_t xi_pack_run_avx2(const float *x, const float *bias, int n, int zero_to,
                                                         uint64_t *out)
{
    return XI_PACK_BY_MODE(pack_run_avx2, x, bias, n, zero_to, out);
}

XI_TARGET_AVX512F static inline __attribute__((always_inline)) int64_t
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
XI_TARGET_AVX512F int64_t xi_pack_run_avx512(const float *x, const float *bias, int n,
                                                              int zero_to, uint64_t *out)
{
    return XI_PACK_BY_MODE(pack_run_avx512, x, bias, n, zero_to, out);
}
#endif /* x86-64 */

#include "neon.h"
#ifdef XI_NEON
#include <float.h>

#include "popcount.h"

/* 16 floats' compare masks into 16 bits: lane i of m[r] is bit 4r + i. */
XI_NEON_TARGET static inline __attribute__((always_inline)) uint32_t neon_bits16(const uint32x4_t m[4])
{
    const uint32x4_t lanes = {1u, 2u, 4u, 8u};
    const uint32x4_t all = vorrq_u32(vorrq_u32(vandq_u32(m[0], lanes), vandq_u32(m[1], vshlq_n_u32(lanes, 4))),
                                     vorrq_u32(vandq_u32(m[2], vshlq_n_u32(lanes, 8)), vandq_u32(m[3], vshlq_n_u32(lanes, 12))));
    return xi_neon_or_lanes(all);
}

/* The NEON packer: 16 floats per step, their signs and NaN lanes as 16-bit masks. On ARMv7
 * (XI_NEON_FTZ) a sum or input that is zero or subnormal may have been flushed, losing the sign the
 * scalar packer sees, so such lanes (|v| < FLT_MIN, rare) are redone by the scalar test. */
XI_NEON_TARGET static inline __attribute__((always_inline)) int64_t
pack_run_neon(const float *x, const float *bias, int n, const int le, const int has_bias, uint64_t *out)
{
    const float32x4_t zero = vdupq_n_f32(0.0f);
    int64_t nans = 0;
    for (int w = 0; w * 64 < n; ++w) {
        const int base = w * 64, len = n - base < 64 ? n - base : 64;
        uint64_t word = 0, nan_bits = 0;
        int k = 0;
        for (; k + 16 <= len; k += 16) {
            XI_MCA_MARK("BEGIN pack");
            uint32x4_t sign[4], nan[4];
#ifdef XI_NEON_FTZ
            uint32x4_t tiny[4];
#endif
            for (int r = 0; r < 4; ++r) {
                float32x4_t v = vld1q_f32(x + base + k + 4 * r);
                if (has_bias)
                    v = vaddq_f32(v, vld1q_f32(bias + base + k + 4 * r));
                sign[r] = le ? vcleq_f32(v, zero) : vcltq_f32(v, zero);
                nan[r] = vmvnq_u32(vceqq_f32(v, v));
#ifdef XI_NEON_FTZ
                tiny[r] = vcaltq_f32(v, vdupq_n_f32(FLT_MIN));
#endif
            }
            word |= (uint64_t)neon_bits16(sign) << k;
            nan_bits |= (uint64_t)neon_bits16(nan) << k;
            XI_MCA_MARK("END");
#ifdef XI_NEON_FTZ
            for (uint32_t redo = neon_bits16(tiny); redo; redo &= redo - 1) {
                const int i = k + __builtin_ctz(redo);
                word &= ~(1ull << i);
                pack_lanes(x + base, has_bias ? bias + base : NULL, i, i + 1, le, &word); /* not NaN: tiny */
            }
#endif
        }
        if (nan_bits)
            nans += xi_popcount64_swar(nan_bits);
        nans += pack_lanes(x + base, bias ? bias + base : NULL, k, len, le, &word);
        out[w] = word;
    }
    return nans;
}

/* With or without a bias as a constant too, so that each of the four loops is branch-free. */
#define XI_PACK_NEON_BIAS(x, bias, n, le, out) pack_run_neon(x, bias, n, le, 1, out)
#define XI_PACK_NEON_NO_BIAS(x, bias, n, le, out) pack_run_neon(x, bias, n, le, 0, out)
XI_NEON_TARGET int64_t xi_pack_run_neon(const float *x, const float *bias, int n, int zero_to, uint64_t *out)
{
    return bias ? XI_PACK_BY_MODE(XI_PACK_NEON_BIAS, x, bias, n, zero_to, out)
                : XI_PACK_BY_MODE(XI_PACK_NEON_NO_BIAS, x, bias, n, zero_to, out);
}
#endif
