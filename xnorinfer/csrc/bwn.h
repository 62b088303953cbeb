/* BWN layers (binary weights, float activations): convolution and dense layers that read their
 * weights at 1 bit. A weight is alpha[o] * s with s = +1 (bit clear) or -1 (bit set); the kernels
 * sum the signed activations and multiply by alpha once, in the epilogue, with the bias:
 *     out[.., o] = alpha[o] * (sum over the window of s * x) + bias[o]        (bias may be NULL)
 *
 * Summation order (the same on every ISA and thread count, so the results are bit-identical
 * across both; documented in docs/architecture.md). Both layers read their inputs in groups of 4
 * (group g: inputs 4g..4g+3, zeros past the last) through a table of the group's 16 signed sums,
 * built in a fixed order: entry m < 8 is ((s0 x0 + s1 x1) + s2 x2) + x3 with s_b = -1 where bit b
 * of m is set, entry 8 + m its negation (exact: rounding to nearest is symmetric); an output adds
 * the entry its 4 weight bits pick, per group:
 * - convolution (inputs: the receptive field in (ky, kx, c) order, zeros for padded taps): the
 *   groups in blocks of XI_BWN_KB; a block's entries are added in order to +0.0, and the block
 *   sums in order to +0.0: S = ((0 + B0) + B1) + ..., out = alpha * S + bias;
 * - dense: 4 running sums per output, sum q adding groups g = q (mod 4) in order, and out =
 *   alpha * ((P0 + P1) + (P2 + P3)) + bias.
 * All sums start at +0.0 (adding a +0.0 entry past the last input leaves any sum unchanged, and
 * the sign of a zero entry never shows); alpha * S + bias is a multiply and an add, not an FMA.
 * Error: a term goes through at most d roundings, d = 3 + (min(G, KB) - 1) + (ceil(G / KB) - 1) + 2
 * for a convolution of G = ceil(K / 4) groups (62 for K = 3456, against K + 2 for one running
 * sum), 3 + (ceil(G / 4) - 1) + 2 + 2 for a dense layer, so an output is within
 * gamma_d = d u / (1 - d u) (u = 2^-24) of (sum |alpha * x| + |bias|) of the exact result.
 * Compiled per instruction set (bwn_impl.h) and chosen at run time (kernels.h). */
#ifndef XNORINFER_BWN_H
#define XNORINFER_BWN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Groups of 4 taps per block of a convolution output's sum (the summation order above). 32 groups
 * (128 taps) keep the longest chain of roundings near its minimum for K up to ~4000 taps: 3 in a
 * table entry, 31 in a block, ceil(K / 128) - 1 over the blocks. */
#define XI_BWN_KB 32

typedef struct {
    int64_t n, h, w;       /* input batch and spatial size */
    int c, groups, o;      /* input channels, groups, output channels */
    int kh, kw, sh, sw, pad_t, pad_l;
    int64_t ho, wo;        /* output size; taps outside the input contribute 0 (zero padding) */
} xi_bwn_geom;

/* uint32 words of a convolution's lanes: groups * xi_bwn_dense_lane_words(kh * kw * c / groups,
 * o / groups). */
int64_t xi_bwn_conv_lane_words(int c, int groups, int o, int kh, int kw);

/* The conv weights' bits re-laid for xi_bwn_conv2d, still 1 bit each: packed is (o, kh, kw, gw)
 * words (pack_signs's layout, channel ci of a group at bit ci % 64 of word ci / 64, a set bit is
 * -1). Group gi's lanes start at word gi * xi_bwn_dense_lane_words(K, o / groups) and are the
 * dense lanes (below) of its (o / groups) x K matrix, tap k = (ky * kw + kx) * (c / groups) + ci. */
void xi_bwn_conv_lanes(const uint64_t *packed, int c, int groups, int o, int kh, int kw, uint32_t *lanes);

/* out (n, ho, wo, o) NHWC from x (n, h, w, c) NHWC, then with relu nonzero max(out, 0) (as
 * PyTorch's relu: v < 0 ? 0 : v, -0.0 kept). With in_scale (c floats, in_shift too, or both NULL)
 * the conv reads in_scale[ci] * x + in_shift[ci] (a multiply and an add) in place of x, padded taps
 * still 0: a BatchNorm before the conv, applied while gathering the receptive fields. Returns 0,
 * or -1 if scratch memory could not be allocated. */
int xi_bwn_conv2d(const xi_bwn_geom *g, const float *x, const float *in_scale, const float *in_shift,
                  const uint32_t *lanes, const float *alpha, const float *bias, int relu, float *out,
                  int nthreads);

/* uint32 words of a dense layer's lanes: ceil(o / 16) * ceil(in / 32) * 16. */
int64_t xi_bwn_dense_lane_words(int64_t in, int64_t o);

/* The dense weights' bits re-laid for xi_bwn_dense, still 1 bit each: packed is (o, ceil(in / 64))
 * words, a set bit -1; lanes[(j / 16 * ceil(in / 32) + c) * 16 + j % 16] holds output j's inputs
 * 32c..32c+31 as 8 codes of 4 bits (clear past the last input and output), code q for group
 * 8c + q: the 4 weight bits n with bits 0-2 flipped where bit 3 is set, the index of n's entry in
 * that group's table (entry 8 + m = -entry m, so bits 0-2 pick an entry of the first 8 and bit 3
 * its sign). */
void xi_bwn_dense_lanes(const uint64_t *packed, int64_t in, int64_t o, uint32_t *lanes);

/* out (n, o) = x (n, in) against the lanes of xi_bwn_dense_lanes, times alpha, plus bias. Returns
 * 0, or -1 if the tables' scratch memory could not be allocated. */
int xi_bwn_dense(int64_t n, int64_t in, int64_t o, const float *x, const uint32_t *lanes, const float *alpha,
                 const float *bias, float *out, int nthreads);

#ifdef __cplusplus
}
#endif
#endif
