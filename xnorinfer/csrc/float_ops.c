/* Runtime dispatch of the float kernels (see float_ops.h); the bodies are in float_ops_impl.h. */
#include "float_ops.h"

#include <stdlib.h>

#include "isa.h"

#define XI_SUFFIX scalar
#define XI_TARGET
#include "float_ops_impl.h"
#undef XI_SUFFIX
#undef XI_TARGET

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define XI_FLOAT_X86 1
#define XI_SUFFIX avx2
#define XI_TARGET __attribute__((target("avx2")))
#include "float_ops_impl.h"
#undef XI_SUFFIX
#undef XI_TARGET
#define XI_SUFFIX avx512
#define XI_TARGET __attribute__((target("avx512f")))
#include "float_ops_impl.h"
#undef XI_SUFFIX
#undef XI_TARGET
#endif

int64_t xi_conv2d_padded_outputs(int o)
{
    return ((int64_t)o + XI_CONV_CO - 1) / XI_CONV_CO * XI_CONV_CO;
}

int xi_conv2d(const xi_conv_geom *g, const float *x, const float *w, const float *scale, const float *bias,
              float *out, int nthreads)
{
    float *zeros = (float *)calloc((size_t)g->c, sizeof(float));
    int status = -1;
    if (!zeros)
        return -1;
#ifdef XI_FLOAT_X86
    switch (xi_isa_get()) {
    case XI_ISA_AVX512:
        status = conv2d_avx512(g, x, w, zeros, scale, bias, out, nthreads);
        break;
    case XI_ISA_AVX2:
        status = conv2d_avx2(g, x, w, zeros, scale, bias, out, nthreads);
        break;
    default:
        status = conv2d_scalar(g, x, w, zeros, scale, bias, out, nthreads);
        break;
    }
#else
    status = conv2d_scalar(g, x, w, zeros, scale, bias, out, nthreads);
#endif
    free(zeros);
    return status;
}

void xi_pool2d(int is_max, int64_t n, int64_t h, int64_t w, int c, int64_t ho, int64_t wo,
               const int32_t *y0, const int32_t *y1, const int32_t *x0, const int32_t *x1,
               const float *divisor, const float *x, float *out, int nthreads)
{
#ifdef XI_FLOAT_X86
    switch (xi_isa_get()) {
    case XI_ISA_AVX512:
        pool2d_avx512(is_max, n, h, w, c, ho, wo, y0, y1, x0, x1, divisor, x, out, nthreads);
        return;
    case XI_ISA_AVX2:
        pool2d_avx2(is_max, n, h, w, c, ho, wo, y0, y1, x0, x1, divisor, x, out, nthreads);
        return;
    default:
        break;
    }
#endif
    pool2d_scalar(is_max, n, h, w, c, ho, wo, y0, y1, x0, x1, divisor, x, out, nthreads);
}
