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

/* Each instance: XI_SUFFIX, XI_TARGET, XI_BWN_MADD(x, s, acc) (acc + x * s, s = +-1.0, exact
 * product), XI_BWN_PX pixels x XI_BWN_CO channels of conv sums in registers, XI_BWN_DENSE_RB
 * blocks of 16 dense outputs looked up together, XI_BWN_AVX512 / XI_BWN_AVX2 for the dense
 * layer's VPERMPS bodies. */
#define XI_SUFFIX scalar
#define XI_TARGET
#define XI_BWN_MADD(x, s, acc) ((acc) + (x) * (s))
#define XI_BWN_PX 4
#define XI_BWN_CO 16
#define XI_BWN_DENSE_RB 1
#include "bwn_impl.h"

#ifdef XI_X86
#define XI_SUFFIX avx2
#define XI_TARGET XI_TARGET_AVX2
#define XI_BWN_MADD(x, s, acc) __builtin_fmaf((x), (s), (acc))
#define XI_BWN_PX 6
#define XI_BWN_CO 16
#define XI_BWN_DENSE_RB 1
#define XI_BWN_AVX2 1
#include "bwn_impl.h"
#define XI_SUFFIX avx512
#define XI_TARGET XI_TARGET_AVX512F
#define XI_BWN_MADD(x, s, acc) __builtin_fmaf((x), (s), (acc))
#define XI_BWN_PX 6
#define XI_BWN_CO 64
#define XI_BWN_DENSE_RB 4
#define XI_BWN_AVX512 1
#include "bwn_impl.h"
#endif

/* aarch64: FMLA by +-1.0 (exact product, one rounding: the same sums as the scalar build). ARMv7
 * keeps the scalar build, as for the float kernels (its NEON flushes subnormals). */
#ifdef XI_NEON_FLOAT
#define XI_SUFFIX neon
#define XI_TARGET
#define XI_BWN_MADD(x, s, acc) __builtin_fmaf((x), (s), (acc))
#define XI_BWN_PX 6
#define XI_BWN_CO 16
#define XI_BWN_DENSE_RB 1
#include "bwn_impl.h"
#endif

int64_t xi_bwn_conv_panel_words(int c, int groups, int o, int kh, int kw)
{
    const int64_t og = o / groups, blocks = (og + XI_BWN_BLOCK - 1) / XI_BWN_BLOCK;
    return (int64_t)groups * blocks * kh * kw * (c / groups);
}

void xi_bwn_conv_panels(const uint64_t *packed, int c, int groups, int o, int kh, int kw, uint64_t *panels)
{
    const int cg = c / groups, og = o / groups, gw = (cg + 63) / 64, taps = kh * kw;
    const int64_t K = (int64_t)taps * cg, blocks = (og + XI_BWN_BLOCK - 1) / XI_BWN_BLOCK;
    memset(panels, 0, sizeof(uint64_t) * (size_t)(groups * blocks * K));
    for (int oc = 0; oc < o; ++oc) {
        const int gi = oc / og, j = oc % og;
        uint64_t *panel = panels + (gi * blocks + j / XI_BWN_BLOCK) * K;
        for (int t = 0; t < taps; ++t) {
            const uint64_t *words = packed + ((int64_t)oc * taps + t) * gw;
            for (int ci = 0; ci < cg; ++ci)
                panel[(int64_t)t * cg + ci] |= ((words[ci / 64] >> (ci % 64)) & 1u) << (j % XI_BWN_BLOCK);
        }
    }
}

int xi_bwn_conv2d(const xi_bwn_geom *g, const float *x, const uint64_t *panels, const float *alpha,
                  const float *bias, float *out, int nthreads)
{
    return xi_kernels_get()->bwn_conv2d(g, x, panels, alpha, bias, out, nthreads);
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
            /* bit 3 of each nibble kept, bits 0-2 flipped where it is set */
            lanes[((j / 16) * chunks + c) * 16 + j % 16] = w ^ (((w >> 3) & 0x11111111u) * 7u);
        }
}

int xi_bwn_dense(int64_t n, int64_t in, int64_t o, const float *x, const uint32_t *lanes, const float *alpha,
                 const float *bias, float *out, int nthreads)
{
    return xi_kernels_get()->bwn_dense(n, in, o, x, lanes, alpha, bias, out, nthreads);
}
