/* The BWN kernels (see bwn.h): one build of bwn_impl.h per instruction set, and the entry points,
 * which call the current ISA's build (kernels.h). */
#include "bwn.h"

#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "neon.h"
#include "scratch.h"

#ifdef XI_X86
#include <immintrin.h>
#endif

/* Each instance: XI_SUFFIX, XI_TARGET, XI_BWN_PX pixels x XI_BWN_CV blocks of 16 output channels
 * of conv sums in registers, XI_BWN_DENSE_RB blocks of 16 dense outputs looked up together,
 * XI_BWN_AVX512 / XI_BWN_AVX2 for the VPERMPS bodies (the others read the tables with plain loads). */
#define XI_SUFFIX scalar
#define XI_TARGET
#define XI_BWN_PX 4
#define XI_BWN_CV 1
#define XI_BWN_DENSE_RB 1
#include "bwn_impl.h"

#ifdef XI_X86
#define XI_SUFFIX avx2
#define XI_TARGET XI_TARGET_AVX2
#define XI_BWN_PX 4
#define XI_BWN_CV 1
#define XI_BWN_DENSE_RB 1
#define XI_BWN_AVX2 1
#include "bwn_impl.h"
#define XI_SUFFIX avx512
#define XI_TARGET XI_TARGET_AVX512F
#define XI_BWN_PX 5
#define XI_BWN_CV 4
#define XI_BWN_DENSE_RB 4
#define XI_BWN_AVX512 1
#include "bwn_impl.h"
#endif

/* aarch64: the table lookups are plain loads there too; this build differs from the scalar one
 * only in what the compiler vectorises (the table building, the epilogue). ARMv7 keeps the scalar
 * build, as for the float kernels (its NEON flushes subnormals). */
#ifdef XI_NEON_FLOAT
#define XI_SUFFIX neon
#define XI_TARGET
#define XI_BWN_PX 4
#define XI_BWN_CV 1
#define XI_BWN_DENSE_RB 1
#include "bwn_impl.h"
#endif

/* 32 weight bits (a set bit -1) as a lane word: 8 codes of 4 bits, each with bits 0-2 flipped where
 * its bit 3 is set (bwn.h). */
static uint32_t lane_word(uint32_t w) { return w ^ (((w >> 3) & 0x11111111u) * 7u); }

int64_t xi_bwn_conv_lane_words(int c, int groups, int o, int kh, int kw)
{
    return groups * xi_bwn_dense_lane_words((int64_t)kh * kw * (c / groups), o / groups);
}

void xi_bwn_conv_lanes(const uint64_t *packed, int c, int groups, int o, int kh, int kw, uint32_t *lanes)
{
    const int cg = c / groups, og = o / groups, gw = (cg + 63) / 64, taps = kh * kw;
    const int64_t K = (int64_t)taps * cg, chunks = (K + 31) / 32, per_group = xi_bwn_dense_lane_words(K, og);
    memset(lanes, 0, sizeof(uint32_t) * (size_t)(groups * per_group));
    for (int oc = 0; oc < o; ++oc) {
        const int gi = oc / og, j = oc % og;
        uint32_t *dst = lanes + gi * per_group + (int64_t)(j / 16) * chunks * 16 + j % 16;
        for (int64_t k = 0; k < K; ++k) {
            const int64_t t = k / cg, ci = k % cg;
            const uint64_t bit = (packed[((int64_t)oc * taps + t) * gw + ci / 64] >> (ci % 64)) & 1u;
            dst[k / 32 * 16] |= (uint32_t)bit << (k % 32);
        }
        for (int64_t ch = 0; ch < chunks; ++ch)
            dst[ch * 16] = lane_word(dst[ch * 16]);
    }
}

int xi_bwn_conv2d(const xi_bwn_geom *g, const float *x, const float *in_scale, const float *in_shift,
                  const uint32_t *lanes, const float *alpha, const float *bias, int relu, float *out,
                  int nthreads)
{
    return xi_kernels_get()->bwn_conv2d(g, x, in_scale, in_shift, lanes, alpha, bias, relu, out, nthreads);
}

int64_t xi_bwn_dense_lane_words(int64_t in, int64_t o)
{
    return (o + 15) / 16 * ((in + 31) / 32) * 16;
}

void xi_bwn_dense_lanes(const uint64_t *packed, int64_t in, int64_t o, uint32_t *lanes)
{
    const int64_t words = (in + 63) / 64, chunks = (in + 31) / 32;
    memset(lanes, 0, sizeof(uint32_t) * (size_t)xi_bwn_dense_lane_words(in, o));
    for (int64_t j = 0; j < o; ++j)
        for (int64_t c = 0; c < chunks; ++c) {
            const uint32_t w = (uint32_t)(packed[j * words + c / 2] >> (32 * (c % 2)));
            lanes[((j / 16) * chunks + c) * 16 + j % 16] = lane_word(w);
        }
}

int xi_bwn_dense(int64_t n, int64_t in, int64_t o, const float *x, const uint32_t *lanes, const float *alpha,
                 const float *bias, float *out, int nthreads)
{
    return xi_kernels_get()->bwn_dense(n, in, o, x, lanes, alpha, bias, out, nthreads);
}
