/* Runtime dispatch of the float kernels (see float_ops.h); the bodies are in float_ops_impl.h. */
#include "float_ops.h"

#include <stdlib.h>
#include <string.h>

#include "bitpack_impl.h"
#include "isa.h"
#include "scratch.h"
#include "neon.h" /* XI_MCA_MARK, and the NEON build below */

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

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define XI_FLOAT_X86 1
/* AVX2 machines all have FMA (Haswell and later, Zen); the AVX-512 kernel needs it too */
#define XI_MADD(a, b, acc) __builtin_fmaf((a), (b), (acc))
#define XI_SUFFIX avx2
#define XI_TARGET __attribute__((target("avx2,fma")))
#define XI_CONV_PX 6
#define XI_CONV_CO 16
#include "float_ops_impl.h"
#define XI_SUFFIX avx512
#define XI_TARGET __attribute__((target("avx512f,fma")))
#define XI_CONV_PX 6
#define XI_CONV_CO 64
#include "float_ops_impl.h"
#undef XI_MADD
#endif

/* aarch64 only: every aarch64 CPU has FMLA, and its NEON keeps subnormals as scalar code does.
 * ARMv7's NEON flushes them and VFMA needs VFPv4, which the Cortex-A8 and A9 lack, so ARMv7
 * keeps the scalar build. The conv block (6 pixels x 16 channels of sums, 24 of the 32 Q
 * registers), the dense panel and the pooling window are written with intrinsics
 * (float_ops_neon.h); the rest is the generic code. */
#if defined(XI_NEON) && defined(__aarch64__)
#define XI_FLOAT_NEON 1
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

/* This CPU's build of a kernel: name_avx512, name_avx2, name_neon or name_scalar, as xi_isa_get()
 * says. */
#ifdef XI_FLOAT_X86
#define XI_PICK(name)                                                                              \
    (xi_isa_get() == XI_ISA_AVX512 ? name##_avx512 : xi_isa_get() == XI_ISA_AVX2 ? name##_avx2 : name##_scalar)
#elif defined(XI_FLOAT_NEON)
#define XI_PICK(name) (xi_isa_get() == XI_ISA_NEON ? name##_neon : name##_scalar)
#else
#define XI_PICK(name) name##_scalar
#endif

int64_t xi_conv2d_padded_outputs(int o)
{
    return ((int64_t)o + XI_CONV_OALIGN - 1) / XI_CONV_OALIGN * XI_CONV_OALIGN;
}

int xi_conv2d(const xi_conv_geom *g, const float *x, const float *w, const float *scale, const float *bias,
              float *out, uint64_t *packed, const float *pack_bias, int pack_zero_to, int nthreads)
{
    const xi_pack_run_fn pack_run = xi_pack_run_for(xi_isa_get());
    return XI_PICK(conv2d)(g, x, w, scale, bias, out, packed, pack_bias, pack_zero_to, pack_run, nthreads);
}

int xi_conv2d_max_pool(const xi_conv_geom *g, const float *x, const float *w, const float *scale,
                       const float *bias, int64_t pho, int64_t pwo, const int32_t *y0, const int32_t *y1,
                       const int32_t *x0, const int32_t *x1, float *out, int nthreads)
{
    return XI_PICK(conv2d_max_pool)(g, x, w, scale, bias, pho, pwo, y0, y1, x0, x1, out, nthreads);
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
    XI_PICK(pool2d)(is_max, n, h, w, c, ho, wo, y0, y1, x0, x1, divisor, x, out, nthreads);
}

void xi_dense(int64_t n, int64_t in, int64_t o, const float *x, const float *w, const float *bias,
              float *out, int nthreads)
{
    XI_PICK(dense)(n, in, o, x, w, bias, out, nthreads);
}

void xi_global_avg_pool(int64_t n, int64_t pixels, int c, const float *x, float *out, int nthreads)
{
    XI_PICK(global_avg_pool)(n, pixels, c, x, out, nthreads);
}
