#include "bitpack.h"

#include <stddef.h>

#include "bitpack_impl.h"
#include "kernels.h"
#include "threads.h"

/* Packs up to 64 channels into one word. Written as a compare per lane and a shift so compilers
 * vectorise it; `v < 0` rather than the sign bit so that -0.0 packs as +1 like +0.0, and `v <= 0`
 * (le) so that both pack as -1. Where it is not vectorised (x86-64's baseline has no per-lane
 * 64-bit shifts) the loop is a dozen instructions an element whose speed depends on where it
 * lands across 64-byte lines; unrolled by four it is faster, wherever it lands. */
static inline __attribute__((always_inline)) uint64_t pack_word(const float *x, const float *bias, int n,
                                                                const int le, int64_t *nans)
{
    uint64_t word = 0;
    int64_t bad = 0;
#pragma GCC unroll 4
    for (int i = 0; i < n; ++i) {
        const float v = bias ? x[i] + bias[i] : x[i];
        word |= (uint64_t)(le ? v <= 0.0f : v < 0.0f) << i;
        bad += (v != v);
    }
    *nans += bad;
    return word;
}

static inline __attribute__((always_inline)) int64_t pack_run(const float *x, const float *bias, int n, const int le,
                                                              uint64_t *out)
{
    int64_t nans = 0;
    for (int w = 0; w * 64 < n; ++w) {
        const int len = n - w * 64 < 64 ? n - w * 64 : 64;
        out[w] = pack_word(x + w * 64, bias ? bias + w * 64 : NULL, len, le, &nans);
    }
    return nans;
}

int64_t xi_pack_run_scalar(const float *x, const float *bias, int n, int zero_to, uint64_t *out)
{
    return XI_PACK_BY_MODE(pack_run, x, bias, n, zero_to, out);
}

int64_t xi_pack_signs(const float *x, const float *bias, int64_t npix, int c, int groups, int zero_to,
                      uint64_t *out, int nthreads)
{
    (void)nthreads; /* read only by the OpenMP pragma */
    const int cg = c / groups;
    const int64_t gw = xi_words_for(cg);
    const int64_t pw = groups * gw;
    xi_pack_run_kernel *const run = xi_kernels_get()->pack_run;
    int64_t nans = 0;

#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1 && npix * c > 65536) reduction(+ : nans)
    for (int64_t p = 0; p < npix; ++p) {
        const float *row = x + p * c;
        uint64_t *dst = out + p * pw;
        for (int g = 0; g < groups; ++g)
            nans += run(row + (int64_t)g * cg, bias ? bias + (int64_t)g * cg : NULL, cg, zero_to, dst + g * gw);
    }
    return nans;
}

void xi_unpack_signs(const uint64_t *packed, int64_t npix, int c, int groups, float *out,
                     int nthreads)
{
    (void)nthreads; /* read only by the OpenMP pragma */
    const int cg = c / groups;
    const int64_t gw = xi_words_for(cg);
    const int64_t pw = groups * gw;

#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1 && npix * c > 65536)
    for (int64_t p = 0; p < npix; ++p) {
        const uint64_t *src = packed + p * pw;
        float *row = out + p * c;
        for (int g = 0; g < groups; ++g)
            for (int i = 0; i < cg; ++i)
                row[g * cg + i] = ((src[g * gw + i / 64] >> (i % 64)) & 1u) ? -1.0f : 1.0f;
    }
}
