/* The float kernels (see float_ops.h): one build of float_ops_impl.h per instruction set, and the
 * entry points, which call the current ISA's build (kernels.h). */
#include "float_ops.h"

#include "arch.h"
#ifdef XI_X86
#include <immintrin.h>
#endif

#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "neon.h" /* XI_MCA_MARK, and the NEON build below */
#include "scratch.h"

/* The weights' output channels are padded to a multiple of every target's XI_CONV_CO. */
#define XI_CONV_OALIGN 64
#define XI_DENSE_ROWS 8   /* outputs a dense layer computes at once, their rows read together */
#define XI_DENSE_LANES 16 /* columns of a panel's chunk: each output's partial sums */

#define XI_SUFFIX scalar
#define XI_TARGET
#define XI_MADD(a, b, acc) ((acc) + (a) * (b))
#define XI_CONV_PX 1
#define XI_CONV_CO 16
#include "float_ops_impl.h"
#undef XI_MADD

#ifdef XI_X86
/* AVX2 machines all have FMA (Haswell and later, Zen); the AVX-512 kernel needs it too */
#define XI_MADD(a, b, acc) __builtin_fmaf((a), (b), (acc))
/* The conv's pixel groups are float_conv_x86.h's: 12 pixels, tiles of XI_CONV_WIDE vectors of
 * channels (6 pixels) or fewer (12 pixels), the vector operations named by the macros below. */
#define XI_CONV_GROUP_EXPLICIT 1
#define XI_SUFFIX avx2
#define XI_TARGET XI_TARGET_AVX2
#define XI_CONV_PX 12
#define XI_CONV_CO 16
#define XI_CONV_WIDE 2
/* the stems whose rows of taps float_conv_x86.h unrolls: up to 33 taps (11x11 x 3) here */
#define XI_CONV_FIXED_MAX_RUN 33
/* the signs packed by pack_run from the stored floats: packed from the registers, the epilogue's
 * extra vectors and tests spill on AVX2's 16 registers, and the 3x3 stem's fused op ran at 47% of
 * the peak against 52% (docs/performance.md) */
#define XI_CONV_PACK_IN_REGISTERS 0
#define XI_V __m256
#define XI_VL 8
#define XI_VZERO() _mm256_setzero_ps()
#define XI_VLOAD(p) _mm256_loadu_ps(p)
#define XI_VBCAST(p) _mm256_broadcast_ss(p)
#define XI_VFMA(a, b, acc) _mm256_fmadd_ps((a), (b), (acc))
#define XI_VMUL(a, b) _mm256_mul_ps((a), (b))
#define XI_VADD(a, b) _mm256_add_ps((a), (b))
#define XI_VMAX0(v) _mm256_max_ps(_mm256_setzero_ps(), (v)) /* 0 > v ? 0 : v */
#define XI_VMASK __m256i
#define XI_VMASK_FIRST(n) _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define XI_VLOAD_M(m, p) _mm256_maskload_ps((p), (m))
#define XI_VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define XI_VSTORE_M(p, m, v) _mm256_maskstore_ps((p), (m), (v))
/* lanes < 0 (<= 0 with le) and NaN lanes as bits, the compares of bitpack_simd.c's packers */
#define XI_VSIGN_BITS(v, le)                                                                                           \
    (uint64_t)(unsigned)_mm256_movemask_ps((le) ? _mm256_cmp_ps((v), _mm256_setzero_ps(), _CMP_LE_OQ)                \
                                                : _mm256_cmp_ps((v), _mm256_setzero_ps(), _CMP_LT_OQ))
#define XI_VNAN_BITS(v) (uint64_t)(unsigned)_mm256_movemask_ps(_mm256_cmp_ps((v), (v), _CMP_UNORD_Q))
#include "float_ops_impl.h"
#undef XI_V
#undef XI_VL
#undef XI_VZERO
#undef XI_VLOAD
#undef XI_VBCAST
#undef XI_VFMA
#undef XI_VMUL
#undef XI_VADD
#undef XI_VMAX0
#undef XI_VMASK
#undef XI_VMASK_FIRST
#undef XI_VLOAD_M
#undef XI_VSTORE
#undef XI_VSTORE_M
#undef XI_VSIGN_BITS
#undef XI_VNAN_BITS
#undef XI_CONV_FIXED_MAX_RUN
#undef XI_CONV_PACK_IN_REGISTERS
#define XI_CONV_GROUP_EXPLICIT 1
#define XI_SUFFIX avx512
#define XI_TARGET XI_TARGET_AVX512F
#define XI_CONV_PX 12
#define XI_CONV_CO 64
#define XI_CONV_WIDE 4
/* only the 3x3 stem's 9 taps: unrolled 7x7 and 11x11 rows ran at 76 and 73 GMAC/s here against
 * 80 and 89 with the row-pointer loop (docs/performance.md) */
#define XI_CONV_FIXED_MAX_RUN 9
/* the signs packed from the sums in registers (float_conv_x86.h): the 3x3 stem's fused op at
 * 46% of the peak against 40% with pack_run over the stored floats */
#define XI_CONV_PACK_IN_REGISTERS 1
#define XI_V __m512
#define XI_VL 16
#define XI_VZERO() _mm512_setzero_ps()
#define XI_VLOAD(p) _mm512_loadu_ps(p)
#define XI_VBCAST(p) _mm512_set1_ps(*(p))
#define XI_VFMA(a, b, acc) _mm512_fmadd_ps((a), (b), (acc))
#define XI_VMUL(a, b) _mm512_mul_ps((a), (b))
#define XI_VADD(a, b) _mm512_add_ps((a), (b))
#define XI_VMAX0(v) _mm512_max_ps(_mm512_setzero_ps(), (v)) /* 0 > v ? 0 : v */
#define XI_VMASK __mmask16
#define XI_VMASK_FIRST(n) ((__mmask16)((1u << (n)) - 1u))
#define XI_VLOAD_M(m, p) _mm512_maskz_loadu_ps((m), (p))
#define XI_VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define XI_VSTORE_M(p, m, v) _mm512_mask_storeu_ps((p), (m), (v))
#define XI_VSIGN_BITS(v, le)                                                                                           \
    (uint64_t)((le) ? _mm512_cmp_ps_mask((v), _mm512_setzero_ps(), _CMP_LE_OQ)                                       \
                    : _mm512_cmp_ps_mask((v), _mm512_setzero_ps(), _CMP_LT_OQ))
#define XI_VNAN_BITS(v) (uint64_t)_mm512_cmp_ps_mask((v), (v), _CMP_UNORD_Q)
#include "float_ops_impl.h"
#undef XI_CONV_FIXED_MAX_RUN
#undef XI_CONV_PACK_IN_REGISTERS
#undef XI_MADD
#endif

/* aarch64 only (XI_NEON_FLOAT): every aarch64 CPU has FMLA, and its NEON keeps subnormals as scalar
 * code does. ARMv7's NEON flushes them and VFMA needs VFPv4, which the Cortex-A8 and A9 lack, so
 * ARMv7 keeps the scalar build. The conv block (6 pixels x 16 channels of sums, 24 of the 32 Q
 * registers), the dense panel and the pooling window are written with intrinsics
 * (float_ops_neon.h); the rest is the generic code. */
#ifdef XI_NEON_FLOAT
#define XI_MADD(a, b, acc) __builtin_fmaf((a), (b), (acc))
#define XI_SUFFIX neon
#define XI_TARGET
#define XI_CONV_PX 6
#define XI_CONV_CO 16
#define XI_FLOAT_EXPLICIT 1
#include "float_ops_neon.h"
#include "float_ops_impl.h"
#undef XI_MADD
#endif

int64_t xi_conv2d_padded_outputs(int o)
{
    return ((int64_t)o + XI_CONV_OALIGN - 1) / XI_CONV_OALIGN * XI_CONV_OALIGN;
}

int xi_conv2d(const xi_conv_geom *g, const float *x, const float *w, const float *scale, const float *bias,
              float *out, uint64_t *packed, const float *pack_bias, int pack_zero_to, int nthreads)
{
    const xi_kernels *k = xi_kernels_get();
    return k->conv2d(g, x, w, scale, bias, out, packed, pack_bias, pack_zero_to, k->pack_run, nthreads);
}

int xi_conv2d_max_pool(const xi_conv_geom *g, const float *x, const float *w, const float *scale,
                       const float *bias, int64_t pho, int64_t pwo, const int32_t *y0, const int32_t *y1,
                       const int32_t *x0, const int32_t *x1, float *out, int nthreads)
{
    return xi_kernels_get()->conv2d_max_pool(g, x, w, scale, bias, pho, pwo, y0, y1, x0, x1, out, nthreads);
}

void xi_nchw_to_nhwc(const float *x, int64_t n, int64_t c, int64_t hw, float *out)
{
    /* Pixel by pixel, reading the c planes in step: about 5x faster than numpy's strided copy of
     * the same transpose for a 224x224 RGB image. */
    for (int64_t b = 0; b < n; ++b) {
        const float *xb = x + b * c * hw;
        float *ob = out + b * hw * c;
        if (c == 3) { /* images: the channel loop unrolled */
            for (int64_t p = 0; p < hw; ++p)
                ob[3 * p] = xb[p], ob[3 * p + 1] = xb[hw + p], ob[3 * p + 2] = xb[2 * hw + p];
            continue;
        }
        for (int64_t p = 0; p < hw; ++p)
            for (int64_t k = 0; k < c; ++k)
                ob[p * c + k] = xb[k * hw + p];
    }
}

void xi_pool2d(int is_max, int64_t n, int64_t h, int64_t w, int c, int64_t ho, int64_t wo,
               const int32_t *y0, const int32_t *y1, const int32_t *x0, const int32_t *x1,
               const float *divisor, const float *x, float *out, int nthreads)
{
    xi_kernels_get()->pool2d(is_max, n, h, w, c, ho, wo, y0, y1, x0, x1, divisor, x, out, nthreads);
}

void xi_dense(int64_t n, int64_t in, int64_t o, const float *x, const float *w, const float *bias,
              float *out, int nthreads)
{
    xi_kernels_get()->dense(n, in, o, x, w, bias, out, nthreads);
}

void xi_global_avg_pool(int64_t n, int64_t pixels, int c, const float *x, float *out, int nthreads)
{
    xi_kernels_get()->global_avg_pool(n, pixels, c, x, out, nthreads);
}
