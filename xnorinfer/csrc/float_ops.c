/* The float kernels (see float_ops.h): one build of float_ops_impl.h per instruction set, and the
 * entry points, which call the current ISA's build (kernels.h). */
#include "float_ops.h"

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
#define XI_SUFFIX avx2
#define XI_TARGET XI_TARGET_AVX2
#define XI_CONV_PX 6
#define XI_CONV_CO 16
#include "float_ops_impl.h"
#define XI_SUFFIX avx512
#define XI_TARGET XI_TARGET_AVX512F
#define XI_CONV_PX 6
#define XI_CONV_CO 64
#include "float_ops_impl.h"
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
