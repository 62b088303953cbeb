/* The kernel registry: for each instruction-set level (isa.h), one row of kernels, one per
 * operator. The operators' drivers (bconv.c, float_ops.c, bwn.c, bitpack.c) take the row of the
 * current ISA and call through it; the per-ISA bodies are compiled from one generic source each
 * (*_impl.h) or are micro-kernels in files named by tile and ISA (bgemm_6x32_avx512.c).
 *
 * Adding an ISA: its feature bits, name and enum value in isa.h/isa.c, its target string in
 * arch.h, the kernels it brings (a micro-kernel file, or another instance of an *_impl.h), and one
 * row in kernels.c that may reuse any other row's entries (see docs/architecture.md). */
#ifndef XNORINFER_KERNELS_H
#define XNORINFER_KERNELS_H

#include <stdint.h>

#include "arch.h"
#include "bconv_epilogue.h"
#include "bgemm.h"
#include "bitpack_impl.h"
#include "bwn.h"
#include "float_ops.h"
#include "isa.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The per-ISA bodies of float_ops.h's and bwn.h's functions (same arguments; the float conv also
 * takes the row's sign packer). */
typedef int xi_conv2d_kernel(const xi_conv_geom *g, const float *x, const float *w, const float *scale,
                             const float *bias, float *out, uint64_t *packed, const float *pack_bias,
                             int pack_zero_to, xi_pack_run_fn pack_run, int nthreads);
typedef int xi_conv2d_max_pool_kernel(const xi_conv_geom *g, const float *x, const float *w, const float *scale,
                                      const float *bias, int64_t pho, int64_t pwo, const int32_t *y0,
                                      const int32_t *y1, const int32_t *x0, const int32_t *x1, float *out,
                                      int nthreads);
typedef void xi_pool2d_kernel(int is_max, int64_t n, int64_t h, int64_t w, int c, int64_t ho, int64_t wo,
                              const int32_t *y0, const int32_t *y1, const int32_t *x0, const int32_t *x1,
                              const float *divisor, const float *x, float *out, int nthreads);
typedef void xi_dense_kernel(int64_t n, int64_t in, int64_t o, const float *x, const float *w, const float *bias,
                             float *out, int nthreads);
typedef void xi_global_avg_pool_kernel(int64_t n, int64_t pixels, int c, const float *x, float *out,
                                       int nthreads);
typedef int xi_bwn_conv2d_kernel(const xi_bwn_geom *g, const float *x, const float *in_scale, const float *in_shift,
                                 const uint32_t *lanes, const float *alpha, const float *bias, int relu, float *out,
                                 int nthreads);
typedef int xi_bwn_dense_kernel(int64_t n, int64_t in, int64_t o, const float *x, const uint32_t *lanes,
                                const float *alpha, const float *bias, float *out, int nthreads);

typedef struct {
    const char *isa;
    /* binary GEMM (bgemm.h): a tile of bgemm_mr rows x bgemm_nr output channels per step */
    xi_bgemm_kernel *bgemm;
    const char *bgemm_name;
    int bgemm_mr, bgemm_nr;
    xi_epilogue_kernel *bconv_epilogue; /* bconv_epilogue.h */
    xi_pack_run_kernel *pack_run;       /* bitpack_impl.h */
    xi_conv2d_kernel *conv2d;
    xi_conv2d_max_pool_kernel *conv2d_max_pool;
    xi_pool2d_kernel *pool2d;
    xi_dense_kernel *dense;
    xi_global_avg_pool_kernel *global_avg_pool;
    xi_bwn_conv2d_kernel *bwn_conv2d;
    xi_bwn_dense_kernel *bwn_dense;
} xi_kernels;

/* The row of `isa`, or NULL where this build has no kernels for it. */
const xi_kernels *xi_kernels_for(xi_isa isa);
/* The row of the current ISA (xi_isa_get). */
const xi_kernels *xi_kernels_get(void);

/* Declarations of one build of the generic kernels, by the suffix of its names. */
#define XI_DECLARE_GENERIC_KERNELS(sfx)                                                                                \
    xi_epilogue_kernel xi_bconv_epilogue_##sfx;                                                                        \
    xi_pack_run_kernel xi_pack_run_##sfx;                                                                              \
    xi_conv2d_kernel xi_conv2d_##sfx;                                                                                  \
    xi_conv2d_max_pool_kernel xi_conv2d_max_pool_##sfx;                                                                \
    xi_pool2d_kernel xi_pool2d_##sfx;                                                                                  \
    xi_dense_kernel xi_dense_##sfx;                                                                                    \
    xi_global_avg_pool_kernel xi_global_avg_pool_##sfx;                                                                \
    xi_bwn_conv2d_kernel xi_bwn_conv2d_##sfx;                                                                          \
    xi_bwn_dense_kernel xi_bwn_dense_##sfx

XI_DECLARE_GENERIC_KERNELS(scalar);
#ifdef XI_X86
XI_DECLARE_GENERIC_KERNELS(avx2);
XI_DECLARE_GENERIC_KERNELS(avx512);
#endif
#ifdef XI_NEON
xi_pack_run_kernel xi_pack_run_neon;
#endif
#ifdef XI_NEON_FLOAT
xi_epilogue_kernel xi_bconv_epilogue_neon;
xi_conv2d_kernel xi_conv2d_neon;
xi_conv2d_max_pool_kernel xi_conv2d_max_pool_neon;
xi_pool2d_kernel xi_pool2d_neon;
xi_dense_kernel xi_dense_neon;
xi_global_avg_pool_kernel xi_global_avg_pool_neon;
xi_bwn_conv2d_kernel xi_bwn_conv2d_neon;
xi_bwn_dense_kernel xi_bwn_dense_neon;
#endif

#ifdef __cplusplus
}
#endif
#endif
