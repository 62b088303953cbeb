/* Binary (XNOR-popcount) 2-D convolution on bit-packed NHWC activations.
 *
 * The dot product of two +-1 vectors of n bits is n - 2 * popcount(a ^ w). Padded taps read a run
 * of zero words (all +1), which is right for pad_value +1. A padded tap of value p must contribute
 * p * sum(w) = p * (cg - 2 * popcount(w)) instead of the 1 * (cg - 2 * popcount(w)) read, so for
 * each output pixel near a border (1 - p) times the popcount of the weights under its padded taps
 * is subtracted from the count, and the bit count n is cg * (valid taps + p * padded taps): p = 0
 * is PyTorch's F.conv2d on a +-1 tensor padded with zeros, p = -1 a tensor padded with -1 (the
 * {0, 1} activations (1 + S) / 2 padded with 0). Exact integers, with no float fallback. */
#ifndef XNORINFER_BCONV_H
#define XNORINFER_BCONV_H

#include <stdint.h>

#include "bitpack.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t n, h, w;     /* input batch and spatial size */
    int c, groups, o;    /* input channels, groups, output channels */
    int kh, kw, sh, sw;  /* kernel size and stride */
    int pad_t, pad_b, pad_l, pad_r;
    int pad_value;       /* what a padded tap is: +1, 0 or -1 */
    int64_t ho, wo;      /* output spatial size (the caller checks it is >= 1) */
    int64_t out_stride;  /* floats from one output pixel to the next: o, or more when the output
                            is a channel slice of a wider tensor (a concat written in place) */
} xi_bconv_geom;

/* out = act(scale[o] * dot + bias[o] + residual), act = RPReLU or identity.
 * RPReLU(v) = PReLU(v - gamma[o], slope[o]) + zeta[o]. Any pointer may be NULL (the three
 * RPReLU ones together). */
typedef struct {
    const float *scale, *bias;
    const float *residual; /* (n, ho, wo, o), contiguous */
    const float *rp_gamma, *rp_slope, *rp_zeta;
    /* The next layer's signs, written from the same values, or packed = NULL: for output pixel p,
     * channel j sets bit (first_bit + j) of the words at packed + p * packed_words iff
     * value + pack_bias[j] < 0, or <= 0 with pack_zero_to = XI_ZERO_TO_MINUS_ONE (as
     * xi_pack_signs; pack_bias may be NULL). A word this convolution starts in the
     * middle of (first_bit not a multiple of 64) gets its bits ORed in; every other word it touches
     * is stored whole, zeros past its last channel. So a concat's parts pack one tensor together
     * when they run in channel order. */
    uint64_t *packed;
    int64_t packed_words, first_bit;
    const float *pack_bias;
    int pack_zero_to;
} xi_epilogue;

/* The bits n of an output pixel's dot product n - 2 * count, with valid_taps of its taps inside
 * the input (see the top of this file). */
static inline int32_t xi_bconv_dot_bits(const xi_bconv_geom *g, int valid_taps)
{
    return (valid_taps + g->pad_value * (g->kh * g->kw - valid_taps)) * (g->c / g->groups);
}

/* Whether taps share words: with at most 32 channels per group a tap fills half a word (the bits
 * past a group's channels are zero, in weights and inputs alike), so the kernel reads taps 2p and
 * 2p + 1 as one word (2p's bits low, 2p + 1's high) and counts half as many words. */
int xi_bconv_paired_taps(int channels_per_group, int kh, int kw);

/* Words of the blocked weight layout [group][panel of 8 channels][k][8], k = kh * kw * group_words
 * words, or (kh * kw + 1) / 2 with paired taps. */
int64_t xi_bconv_blocked_words(int o, int groups, int channels_per_group, int kh, int kw);

/* Reorders packed weights (o, kh, kw, group_words) into the blocked layout (channels past the
 * last one of a group are zero) and fills tap_popcount (kh * kw, o): the set bits of each tap. */
void xi_bconv_prepare_weights(const uint64_t *w, int o, int groups, int channels_per_group, int kh, int kw,
                              uint64_t *blocked, int32_t *tap_popcount);

/* Runs the convolution; x is (n, h, w, groups * group_words) words, out (n, ho, wo, o) floats
 * with pixels out_stride floats apart, or NULL when only the packed signs are wanted (then
 * ep->packed is set and groups is 1).
 * Returns 0, -1 if scratch memory could not be allocated, -2 if a packed value was NaN. */
int xi_bconv2d(const xi_bconv_geom *g, const uint64_t *x, const uint64_t *blocked,
               const int32_t *tap_popcount, const xi_epilogue *ep, float *out, int nthreads);

/* One convolution of a fused block (xi_bconv2d_block): xi_bconv2d's arguments. */
typedef struct {
    xi_bconv_geom g;
    const uint64_t *x, *blocked;
    const int32_t *tap_popcount;
    xi_epilogue ep;
    float *out;
} xi_bconv_layer;

#define XI_BLOCK_MAX_REST 4

/* A binary convolution `first` (no groups, a float output of o channels and its signs packed at
 * bit 0) followed by 1 to XI_BLOCK_MAX_REST pointwise ones (`rest`: 1x1, no stride or padding, no
 * groups, o channels in and out) that read first's output both as their packed input (x is
 * first's ep.packed) and as their residual (ep.residual is first's out), run tile by tile: first's
 * values and signs stay in a per-thread tile in cache and never reach memory. With too few tiles
 * to share among the threads the convolutions run one after the other instead. The same values and
 * bits either way as xi_bconv2d on each in turn. Returns as xi_bconv2d, or -3 if they do not fit. */
int xi_bconv2d_block(const xi_bconv_layer *first, const xi_bconv_layer *rest, int nrest, int nthreads);

#ifdef __cplusplus
}
#endif
#endif
