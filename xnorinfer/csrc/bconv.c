#include "bconv.h"

#include <stdlib.h>
#include <string.h>

#include "bgemm.h"
#include "bitpack.h"
#include "bconv_epilogue.h"
#include "threads.h"

enum {
    PIXEL_TILE = 48,     /* rows per task: a multiple of every micro-kernel's row count */
    MAX_CHUNK_BLOCKS = 32 /* at most 256 output channels per task keeps its counts in L1/L2 */
};
#define MIN_PARALLEL_BIT_MACS 4e6 /* ~5 us on one core */

static int64_t blocks_for(int channels) { return (channels + XI_BLOCK - 1) / XI_BLOCK; }

int64_t xi_bconv_blocked_words(int o, int groups, int kh, int kw, int64_t group_words)
{
    return (int64_t)groups * blocks_for(o / groups) * kh * kw * group_words * XI_BLOCK;
}

void xi_bconv_prepare_weights(const uint64_t *w, int o, int groups, int kh, int kw,
                              int64_t group_words, uint64_t *blocked, int32_t *tap_popcount)
{
    const int og = o / groups, taps = kh * kw;
    const int64_t k = taps * group_words, nblk = blocks_for(og);
    memset(blocked, 0, (size_t)xi_bconv_blocked_words(o, groups, kh, kw, group_words) * 8);
    for (int oc = 0; oc < o; ++oc) {
        const int grp = oc / og, j = oc % og;
        uint64_t *dst = blocked + ((grp * nblk + j / XI_BLOCK) * k) * XI_BLOCK + j % XI_BLOCK;
        for (int t = 0; t < taps; ++t) {
            int32_t bits = 0;
            for (int64_t wd = 0; wd < group_words; ++wd) {
                const uint64_t word = w[((int64_t)oc * taps + t) * group_words + wd];
                dst[(t * group_words + wd) * XI_BLOCK] = word;
                for (uint64_t v = word; v; v &= v - 1)
                    ++bits;
            }
            tap_popcount[(int64_t)t * o + oc] = bits;
        }
    }
}

int xi_bconv2d(const xi_bconv_geom *g, const uint64_t *x, const uint64_t *blocked,
               const int32_t *tap_popcount, const xi_epilogue *ep, float *out, int nthreads)
{
    const int og = g->o / g->groups, taps = g->kh * g->kw;
    const int64_t gw = xi_words_for(g->c / g->groups), xw = g->groups * gw;
    const int64_t k = taps * gw, nblk = blocks_for(og);
    const int64_t npix = g->ho * g->wo, pixel_tiles = (npix + PIXEL_TILE - 1) / PIXEL_TILE;
    const xi_bgemm_fn bgemm = xi_bgemm_for(xi_isa_get());

    /* Split output channels into chunks only as far as needed to give every thread work. */
    int64_t chunk_blocks = nblk < MAX_CHUNK_BLOCKS ? nblk : MAX_CHUNK_BLOCKS;
    /* Packing signs, a chunk must own whole words: 64 channels = 8 blocks, or all of them (all
     * when the first word is shared with the previous convolution). */
    const int64_t min_blocks = !ep->packed ? 4 : ep->first_bit % 64 ? nblk : 8;
    while (chunk_blocks > min_blocks && (!ep->packed || chunk_blocks % 16 == 0) &&
           g->n * g->groups * pixel_tiles * ((nblk + chunk_blocks - 1) / chunk_blocks) < 4 * nthreads)
        chunk_blocks = (chunk_blocks + 1) / 2;
    const int64_t chunks = (nblk + chunk_blocks - 1) / chunk_blocks;
    const int64_t ntasks = g->n * g->groups * chunks * pixel_tiles;
    if (ntasks < nthreads)
        nthreads = (int)(ntasks > 0 ? ntasks : 1);
    /* A layer of a few microseconds runs faster on one thread than the team takes to start. */
    if ((double)g->n * npix * g->o * k * 64 < MIN_PARALLEL_BIT_MACS)
        nthreads = 1;

    const int ldc = (int)(chunk_blocks * XI_BLOCK);
    /* A missing scale is ones and a missing bias or pack bias zeros (all exact), so the epilogue
     * has no branches for them. */
    xi_epilogue epi = *ep;
    float *unit = NULL;
    if (!epi.scale || !epi.bias || (epi.packed && !epi.pack_bias)) {
        unit = (float *)malloc((size_t)g->o * 2 * sizeof(float));
        if (!unit)
            return -1;
        for (int j = 0; j < g->o; ++j)
            unit[j] = 1.0f, unit[g->o + j] = 0.0f;
        epi.scale = epi.scale ? epi.scale : unit;
        epi.bias = epi.bias ? epi.bias : unit + g->o;
        epi.pack_bias = epi.pack_bias ? epi.pack_bias : unit + g->o;
    }
    uint64_t *zeros = (uint64_t *)calloc((size_t)gw, sizeof(uint64_t));
    const uint64_t **ptrs = (const uint64_t **)malloc((size_t)nthreads * PIXEL_TILE * taps * sizeof(*ptrs));
    int32_t *counts = (int32_t *)malloc((size_t)nthreads * PIXEL_TILE * ldc * sizeof(int32_t));
    int *valid = (int *)malloc((size_t)nthreads * PIXEL_TILE * sizeof(int));
    float *scratch = out ? NULL : (float *)malloc((size_t)nthreads * ldc * sizeof(float));
    if (!zeros || !ptrs || !counts || !valid || (!out && !scratch)) {
        free(zeros), free(ptrs), free(counts), free(valid), free(unit), free(scratch);
        return -1;
    }
    const xi_epilogue_fn epilogue = xi_epilogue_for(xi_isa_get());
    int64_t nans = 0;

    /* Tasks run pixel tiles innermost, so a thread's consecutive tasks (static schedule) share
     * their chunk of weights in cache. */
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1) reduction(+ : nans)
    for (int64_t task = 0; task < ntasks; ++task) {
        const int tid = xi_thread_id();
        const uint64_t **a = ptrs + (int64_t)tid * PIXEL_TILE * taps;
        int32_t *cnt = counts + (int64_t)tid * PIXEL_TILE * ldc;
        int *nvalid = valid + (int64_t)tid * PIXEL_TILE;

        const int64_t tile = task % pixel_tiles;
        const int64_t chunk = (task / pixel_tiles) % chunks;
        const int grp = (int)((task / (pixel_tiles * chunks)) % g->groups);
        const int64_t img = task / (pixel_tiles * chunks * g->groups);
        const int64_t p0 = tile * PIXEL_TILE;
        const int rows = (int)(npix - p0 < PIXEL_TILE ? npix - p0 : PIXEL_TILE);
        const uint64_t *xg = x + img * g->h * g->w * xw + grp * gw;

        /* Indirection: a pointer per (row, tap) to its input pixel, or to zeros past a border. */
        int64_t oy = p0 / g->wo, ox = p0 % g->wo;
        for (int i = 0; i < rows; ++i, ox = ox + 1 < g->wo ? ox + 1 : (++oy, 0)) {
            const int64_t iy0 = oy * g->sh - g->pad_t, ix0 = ox * g->sw - g->pad_l;
            const uint64_t **ai = a + i * taps;
            if (iy0 >= 0 && iy0 + g->kh <= g->h && ix0 >= 0 && ix0 + g->kw <= g->w) {
                const uint64_t *base = xg + (iy0 * g->w + ix0) * xw;
                for (int ky = 0; ky < g->kh; ++ky, base += g->w * xw)
                    for (int kx = 0; kx < g->kw; ++kx)
                        *ai++ = base + kx * xw;
                nvalid[i] = taps;
                continue;
            }
            int n_ok = 0;
            for (int ky = 0; ky < g->kh; ++ky)
                for (int kx = 0; kx < g->kw; ++kx) {
                    const int64_t iy = iy0 + ky, ix = ix0 + kx;
                    const int inside = iy >= 0 && iy < g->h && ix >= 0 && ix < g->w;
                    *ai++ = inside ? xg + (iy * g->w + ix) * xw : zeros;
                    n_ok += inside;
                }
            nvalid[i] = n_ok;
        }

        const int64_t blk0 = chunk * chunk_blocks;
        const int nb = (int)(nblk - blk0 < chunk_blocks ? nblk - blk0 : chunk_blocks);
        bgemm(rows, nb, taps, (int)gw, a, blocked + (grp * nblk + blk0) * k * XI_BLOCK, cnt, ldc);

        const int oc0 = grp * og + (int)(blk0 * XI_BLOCK);
        const int count = (int)(og - blk0 * XI_BLOCK < nb * XI_BLOCK ? og - blk0 * XI_BLOCK : nb * XI_BLOCK);
        if (!g->pad_one) {
            /* A padded tap met zero words, counting popcount(w) differences; take them back. */
            for (int i = 0; i < rows; ++i) {
                if (nvalid[i] == taps)
                    continue;
                for (int t = 0; t < taps; ++t) {
                    if (a[i * taps + t] != zeros)
                        continue;
                    const int32_t *pc = tap_popcount + (int64_t)t * g->o + oc0;
                    int32_t *ci = cnt + (int64_t)i * ldc;
                    for (int j = 0; j < count; ++j)
                        ci[j] -= pc[j];
                }
            }
        }
        nans += epilogue(g, &epi, cnt, ldc, rows, nvalid, img * npix + p0, oc0, count, out,
                         scratch ? scratch + (int64_t)tid * ldc : NULL);
    }

    free(zeros), free(ptrs), free(counts), free(valid), free(unit), free(scratch);
    return nans ? -2 : 0;
}
