/* Float layers around the binary ones: direct convolution (the first layer) and pooling, on NHWC
 * float32 tensors. Same SIMD selection as the binary kernels (xi_isa_get): each body is compiled
 * once per instruction set from float_ops_impl.h and vectorised over channels by the compiler. */
#ifndef XNORINFER_FLOAT_OPS_H
#define XNORINFER_FLOAT_OPS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t n, h, w;    /* input batch and spatial size */
    int c, o, kh, kw;   /* input channels, output channels, kernel size (groups = 1) */
    int sh, sw, pad_t, pad_l;
    int64_t ho, wo;     /* output size: taps outside the input contribute 0 (zero padding) */
    int relu;           /* 1: max(out, 0) */
} xi_conv_geom;

/* Output channels of the weight layout: o rounded up to the kernel's register block. */
int64_t xi_conv2d_padded_outputs(int o);

/* out[n, y, x, o] = (sum over the window of x * w) * scale[o] + bias[o] (scale, bias may be NULL),
 * then max(out, 0) with g->relu.
 * w is (kh, kw, c, o_pad): HWIO with the output channels padded with zeros to
 * xi_conv2d_padded_outputs(o). Unless `packed` is NULL, each output row is also packed for the
 * next binary layer while it is in cache, as xi_pack_signs(out, pack_bias, ..., 1 group,
 * pack_zero_to) would (pack_bias may be NULL). Returns 0, -1 if scratch memory could not be
 * allocated, -2 if a packed value was NaN. */
int xi_conv2d(const xi_conv_geom *g, const float *x, const float *w, const float *scale, const float *bias,
              float *out, uint64_t *packed, const float *pack_bias, int pack_zero_to, int nthreads);

/* xi_conv2d (no packing), then max pooling of its (n, ho, wo, o) output into out (n, pho, pwo, o)
 * over the windows xi_pool2d takes: the same values as the two calls, without the conv output
 * ever being in memory whole (a few rows at a time per thread). Returns 0, or -1 if scratch memory
 * could not be allocated. */
int xi_conv2d_max_pool(const xi_conv_geom *g, const float *x, const float *w, const float *scale,
                       const float *bias, int64_t pho, int64_t pwo, const int32_t *y0, const int32_t *y1,
                       const int32_t *x0, const int32_t *x1, float *out, int nthreads);

/* out (n, hw, c) = x (n, c, hw) transposed: a PyTorch-layout batch into the kernels' NHWC. */
void xi_nchw_to_nhwc(const float *x, int64_t n, int64_t c, int64_t hw, float *out);

/* Pooling over windows given per output row and column: rows [y0[oy], y1[oy]) and columns
 * [x0[ox], x1[ox]) of the input (already clipped to it). Max: the window's maximum. Average: the
 * window's sum (row by row, left to right, as PyTorch adds) divided by divisor[oy * wo + ox]. */
void xi_pool2d(int is_max, int64_t n, int64_t h, int64_t w, int c, int64_t ho, int64_t wo,
               const int32_t *y0, const int32_t *y1, const int32_t *x0, const int32_t *x1,
               const float *divisor, const float *x, float *out, int nthreads);

/* out (n, o) = x (n, in) @ w (o, in)^T + bias (may be NULL): a fully connected layer, w row-major
 * as PyTorch and the file hold it (no second copy): outputs in blocks of 8 whose rows are read
 * together, each output's 16 lanes of products summed in order, then the lanes left to right. */
void xi_dense(int64_t n, int64_t in, int64_t o, const float *x, const float *w, const float *bias,
              float *out, int nthreads);

/* out (n, c) = mean over the pixels of x (n, pixels, c), summed in float64. */
void xi_global_avg_pool(int64_t n, int64_t pixels, int c, const float *x, float *out, int nthreads);

#ifdef __cplusplus
}
#endif
#endif
