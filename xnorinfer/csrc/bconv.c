#include "bconv.h"

#include <stdlib.h>
#include <string.h>

#include "bgemm.h"
#include "bitpack.h"
#include "bconv_epilogue.h"
#include "kernels.h"
#include "popcount.h"
#include "scratch.h"
#include "threads.h"

enum {
    PIXEL_TILE = 48,     /* rows per task: a multiple of every micro-kernel's row count */
    MAX_CHUNK_PANELS = 32 /* at most 256 output channels per task keeps its counts in L1/L2 */
};
#define MIN_PARALLEL_BIT_MACS 4e6 /* ~5 us on one core */

static int64_t panels_for(int channels) { return (channels + XI_PANEL - 1) / XI_PANEL; }

int xi_bconv_paired_taps(int channels_per_group, int kh, int kw)
{
    return channels_per_group <= 32 && kh * kw > 1;
}

/* Words per panel row of the blocked layout (see xi_bconv_blocked_words). */
static int64_t row_words(int channels_per_group, int kh, int kw)
{
    return xi_bconv_paired_taps(channels_per_group, kh, kw) ? (kh * kw + 1) / 2
                                                            : kh * kw * xi_words_for(channels_per_group);
}

int64_t xi_bconv_blocked_words(int o, int groups, int channels_per_group, int kh, int kw)
{
    return (int64_t)groups * panels_for(o / groups) * row_words(channels_per_group, kh, kw) * XI_PANEL;
}

void xi_bconv_prepare_weights(const uint64_t *w, int o, int groups, int channels_per_group, int kh, int kw,
                              uint64_t *blocked, int32_t *tap_popcount)
{
    const int og = o / groups, taps = kh * kw, paired = xi_bconv_paired_taps(channels_per_group, kh, kw);
    const int64_t gw = xi_words_for(channels_per_group), k = row_words(channels_per_group, kh, kw);
    const int64_t npanels = panels_for(og);
    memset(blocked, 0, (size_t)xi_bconv_blocked_words(o, groups, channels_per_group, kh, kw) * 8);
    for (int oc = 0; oc < o; ++oc) {
        const int grp = oc / og, j = oc % og;
        uint64_t *dst = blocked + ((grp * npanels + j / XI_PANEL) * k) * XI_PANEL + j % XI_PANEL;
        for (int t = 0; t < taps; ++t) {
            int32_t bits = 0;
            for (int64_t wd = 0; wd < gw; ++wd) {
                const uint64_t word = w[((int64_t)oc * taps + t) * gw + wd];
                if (paired) /* one word of at most 32 bits: into its half of the pair's word */
                    dst[(t / 2) * XI_PANEL] |= word << (t % 2 * 32);
                else
                    dst[(t * gw + wd) * XI_PANEL] = word;
                bits += xi_popcount64_swar(word); /* the default build may lack popcnt */
            }
            tap_popcount[(int64_t)t * o + oc] = bits;
        }
    }
}

/* One convolution ready for tiles: its shape in words and blocks, and an epilogue with the
 * missing scale, bias and (when it packs signs) pack bias substituted (ones and zeros: exact), so
 * the epilogue has no branches for them. */
typedef struct {
    const xi_bconv_geom *g;
    const uint64_t *x, *blocked;
    const int32_t *tap_popcount;
    xi_epilogue ep;
    float *out;
    int og, taps, paired;
    int64_t gw, xw, k, npanels; /* k: words per row of the GEMM */
} conv_job;

/* unit: room for 2 * g->o floats, the substitutes (the caller's scratch). */
static void job_init(conv_job *j, const xi_bconv_geom *g, const uint64_t *x, const uint64_t *blocked,
                     const int32_t *tap_popcount, const xi_epilogue *ep, float *out, int packs, float *unit)
{
    j->g = g, j->x = x, j->blocked = blocked, j->tap_popcount = tap_popcount, j->ep = *ep, j->out = out;
    j->og = g->o / g->groups, j->taps = g->kh * g->kw;
    j->paired = xi_bconv_paired_taps(g->c / g->groups, g->kh, g->kw);
    j->gw = xi_words_for(g->c / g->groups), j->xw = g->groups * j->gw;
    j->k = row_words(g->c / g->groups, g->kh, g->kw), j->npanels = panels_for(j->og);
    if (!ep->scale || !ep->bias || (packs && !ep->pack_bias)) {
        for (int c = 0; c < g->o; ++c)
            unit[c] = 1.0f, unit[g->o + c] = 0.0f;
        j->ep.scale = ep->scale ? ep->scale : unit;
        j->ep.bias = ep->bias ? ep->bias : unit + g->o;
        j->ep.pack_bias = ep->pack_bias ? ep->pack_bias : unit + g->o;
    }
}

/* One thread's scratch for tiles of PIXEL_TILE rows, carved from its own per-thread buffer
 * (scratch.h) with a gap of LINE_GAP bytes on either side, so that no two threads ever write the
 * same cache line (each tile rewrites all of it: shared lines would bounce between the cores). */
typedef struct {
    const uint64_t **ptrs;      /* PIXEL_TILE * max_taps input pointers */
    const uint64_t **pair_rows; /* PIXEL_TILE pointers to ... */
    uint64_t *pairs;            /* ... PIXEL_TILE rows of paired taps, (max_taps + 1) / 2 words each */
    uint64_t *tile_signs;       /* a block's first convolution's signs: PIXEL_TILE * block words */
    int32_t *counts;            /* PIXEL_TILE rows of ldc */
    int *valid;                 /* valid taps per row */
    float *values;              /* one row's values when there is no float output */
    float *tile_values;         /* a block's first convolution's values: PIXEL_TILE * block channels */
} thread_scratch;

enum { LINE_GAP = 128 }; /* two cache lines: some CPUs fetch lines in pairs */

/* What the threads of one call share: this CPU's kernels, the words a padded tap reads, and the
 * layout of each thread's scratch for convolutions with at most max_taps taps and ldc counts per
 * row (and, for a block, block_channels channels in its first convolution's tile). */
typedef struct {
    xi_bgemm_kernel *bgemm;
    xi_epilogue_kernel *epilogue;
    const uint64_t *zeros;
    int max_taps, ldc;
    size_t sizes[8], total;
} team_scratch;

/* `bytes` rounded up to whole cache lines, so each array of a scratch starts on a line of its own. */
static size_t lines(size_t bytes) { return (bytes + 63) / 64 * 64; }

/* zeros: zero_words words of zeros (the caller's scratch, set here). */
static void team_init(team_scratch *t, int max_taps, int ldc, uint64_t *zeros, int64_t zero_words, int block_channels)
{
    const xi_kernels *k = xi_kernels_get();
    t->bgemm = k->bgemm;
    t->epilogue = k->bconv_epilogue;
    t->max_taps = max_taps, t->ldc = ldc;
    memset(zeros, 0, (size_t)(zero_words > 0 ? zero_words : 1) * sizeof(uint64_t));
    t->zeros = zeros;
    /* The arrays in order of their element size, each on whole lines. */
    const size_t sizes[] = {lines((size_t)PIXEL_TILE * max_taps * sizeof(uint64_t *)),
                            lines((size_t)PIXEL_TILE * sizeof(uint64_t *)),
                            lines((size_t)PIXEL_TILE * ((max_taps + 1) / 2) * sizeof(uint64_t)),
                            lines((size_t)PIXEL_TILE * xi_words_for(block_channels) * sizeof(uint64_t)),
                            lines((size_t)PIXEL_TILE * ldc * sizeof(int32_t)),
                            lines((size_t)PIXEL_TILE * sizeof(int)),
                            lines((size_t)ldc * sizeof(float)),
                            lines((size_t)PIXEL_TILE * block_channels * sizeof(float))};
    t->total = 2 * LINE_GAP;
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); ++k)
        t->total += t->sizes[k] = sizes[k];
}

/* The calling thread's scratch (its own buffer, 64-byte aligned); -1 when out of memory. */
static int thread_scratch_get(const team_scratch *t, thread_scratch *ts)
{
    char *at = (char *)xi_scratch(XI_SCRATCH_THREAD, t->total);
    if (!at)
        return -1;
    at += LINE_GAP;
    ts->ptrs = (const uint64_t **)at, at += t->sizes[0];
    ts->pair_rows = (const uint64_t **)at, at += t->sizes[1];
    ts->pairs = (uint64_t *)at, at += t->sizes[2];
    ts->tile_signs = (uint64_t *)at, at += t->sizes[3];
    ts->counts = (int32_t *)at, at += t->sizes[4];
    ts->valid = (int *)at, at += t->sizes[5];
    ts->values = (float *)at, at += t->sizes[6];
    ts->tile_values = (float *)at;
    return 0;
}

/* Output rows [p0, p0 + rows) of image img and group grp, channel blocks [blk0, blk0 + nb), through
 * the epilogue: the rows' inputs are found once, then the blocks run in chunks of as many as the
 * counts' rows hold (ldc channels). in_tile: NULL to read the input through the geometry, or the
 * packed input of these very rows (a 1x1 convolution without stride or padding reading a fused
 * block's tile). res_row0 and out_row0: the residual's row, and the outputs' (float and packed),
 * for row p0. */
static int64_t conv_tile(const conv_job *j, const xi_epilogue *ep, const uint64_t *in_tile, int64_t img,
                         int grp, int64_t p0, int rows, int64_t blk0, int nb, int64_t res_row0,
                         int64_t out_row0, float *out, const team_scratch *team, const thread_scratch *ts)
{
    const xi_bconv_geom *g = j->g;
    const int taps = j->taps, ldc = team->ldc;
    const int64_t xw = j->xw;
    const uint64_t **a = ts->ptrs;
    const uint64_t *zeros = team->zeros;
    int32_t *counts = ts->counts;
    int *nvalid = ts->valid;

    if (in_tile) {
        for (int i = 0; i < rows; ++i)
            a[i] = in_tile + i * xw, nvalid[i] = 1;
    } else {
        /* Indirection: a pointer per (row, tap) to its input pixel, or to zeros past a border.
         * (The geometry in locals: the pointer stores could alias it as far as C knows.) */
        const int kh = g->kh, kw = g->kw;
        const int64_t h = g->h, w = g->w, wo = g->wo;
        const uint64_t *xg = j->x + img * h * w * xw + grp * j->gw;
        int64_t oy = p0 / wo, ox = p0 % wo;
        for (int i = 0; i < rows; ++i, ox = ox + 1 < wo ? ox + 1 : (++oy, 0)) {
            const int64_t iy0 = oy * g->sh - g->pad_t, ix0 = ox * g->sw - g->pad_l;
            const uint64_t **ai = a + i * taps;
            if (iy0 >= 0 && iy0 + kh <= h && ix0 >= 0 && ix0 + kw <= w) {
                const uint64_t *base = xg + (iy0 * w + ix0) * xw;
                nvalid[i] = taps;
                if (j->paired) { /* a row inside the input needs no pointers: its pairs directly */
                    uint64_t *pairs = ts->pairs + i * j->k, low = 0;
                    int t = 0;
                    for (int ky = 0; ky < kh; ++ky, base += w * xw)
                        for (int kx = 0; kx < kw; ++kx, ++t) {
                            const uint64_t word = base[kx * xw];
                            if (t % 2)
                                pairs[t / 2] = low | word << 32;
                            else
                                low = word;
                        }
                    if (taps % 2)
                        pairs[taps / 2] = low;
                    ts->pair_rows[i] = pairs;
                    continue;
                }
                for (int ky = 0; ky < kh; ++ky, base += w * xw)
                    for (int kx = 0; kx < kw; ++kx)
                        *ai++ = base + kx * xw;
                continue;
            }
            int n_ok = 0;
            for (int ky = 0; ky < kh; ++ky)
                for (int kx = 0; kx < kw; ++kx) {
                    const int64_t iy = iy0 + ky, ix = ix0 + kx;
                    const int inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
                    *ai++ = inside ? xg + (iy * w + ix) * xw : zeros;
                    n_ok += inside;
                }
            nvalid[i] = n_ok;
            if (j->paired) { /* each row's taps two to a word, as the weights are laid out */
                uint64_t *pairs = ts->pairs + i * j->k;
                ai = a + i * taps;
                for (int t = 0; t + 1 < taps; t += 2)
                    pairs[t / 2] = ai[t][0] | ai[t + 1][0] << 32;
                if (taps % 2)
                    pairs[taps / 2] = ai[taps - 1][0];
                ts->pair_rows[i] = pairs;
            }
        }
    }

    int64_t nans = 0;
    for (int64_t c0 = blk0; c0 < blk0 + nb; c0 += ldc / XI_PANEL) {
        const int cb = (int)(blk0 + nb - c0 < ldc / XI_PANEL ? blk0 + nb - c0 : ldc / XI_PANEL);
        const uint64_t *b = j->blocked + (grp * j->npanels + c0) * j->k * XI_PANEL;
        if (j->paired)
            team->bgemm(rows, cb, 1, (int)j->k, ts->pair_rows, b, counts, ldc);
        else
            team->bgemm(rows, cb, taps, (int)j->gw, a, b, counts, ldc);

        const int oc0 = grp * j->og + (int)(c0 * XI_PANEL);
        const int count = (int)(j->og - c0 * XI_PANEL < cb * XI_PANEL ? j->og - c0 * XI_PANEL : cb * XI_PANEL);
        if (g->pad_value != 1) {
            /* A padded tap met zero words, counting popcount(w) differences; take them back, once
             * for a tap of 0, twice for a tap of -1 (see bconv.h): a shift, which vectorizes on
             * the baseline ISA where a multiply of 32-bit lanes does not. */
            const int doubled = g->pad_value == -1;
            for (int i = 0; i < rows; ++i) {
                if (nvalid[i] == taps)
                    continue;
                for (int t = 0; t < taps; ++t) {
                    if (a[i * taps + t] != zeros)
                        continue;
                    const int32_t *pc = j->tap_popcount + (int64_t)t * g->o + oc0;
                    int32_t *ci = counts + (int64_t)i * ldc;
                    for (int c = 0; c < count; ++c)
                        ci[c] -= pc[c] << doubled;
                }
            }
        }
        nans += team->epilogue(g, ep, counts, ldc, rows, nvalid, res_row0, out_row0, oc0, count, out, ts->values);
    }
    return nans;
}

int xi_bconv2d(const xi_bconv_geom *g, const uint64_t *x, const uint64_t *blocked,
               const int32_t *tap_popcount, const xi_epilogue *ep, float *out, int nthreads)
{
    /* The call's shared scratch: the zero words of padded taps, then the epilogue's substitutes. */
    const int64_t zero_words = xi_words_for(g->c / g->groups);
    uint64_t *shared = (uint64_t *)xi_scratch(XI_SCRATCH_TEAM, (size_t)zero_words * 8 + (size_t)g->o * 2 * sizeof(float));
    if (!shared)
        return -1;
    conv_job j;
    job_init(&j, g, x, blocked, tap_popcount, ep, out, ep->packed != NULL, (float *)(shared + zero_words));
    const int64_t npanels = j.npanels;
    const int64_t npix = g->ho * g->wo, pixel_tiles = (npix + PIXEL_TILE - 1) / PIXEL_TILE;

    /* Split output channels into chunks only as far as needed to give every thread work. */
    int64_t chunk_panels = npanels < MAX_CHUNK_PANELS ? npanels : MAX_CHUNK_PANELS;
    /* Packing signs, a chunk must own whole words: 64 channels = 8 blocks, or all of them (all
     * when the first word is shared with the previous convolution). */
    const int64_t min_panels = !ep->packed ? 4 : ep->first_bit % 64 ? npanels : 8;
    while (chunk_panels > min_panels && (!ep->packed || chunk_panels % 16 == 0) &&
           g->n * g->groups * pixel_tiles * ((npanels + chunk_panels - 1) / chunk_panels) < 4 * nthreads)
        chunk_panels = (chunk_panels + 1) / 2;
    const int64_t chunks = (npanels + chunk_panels - 1) / chunk_panels;
    const int64_t ntasks = g->n * g->groups * chunks * pixel_tiles;
    if (ntasks < nthreads)
        nthreads = (int)(ntasks > 0 ? ntasks : 1);
    /* A layer of a few microseconds runs faster on one thread than the team takes to start. */
    if ((double)g->n * npix * g->o * j.k * 64 < MIN_PARALLEL_BIT_MACS)
        nthreads = 1;

    const int ldc = (int)(chunk_panels * XI_PANEL);
    team_scratch team;
    team_init(&team, j.taps, ldc, shared, zero_words, 0);
    int64_t nans = 0, failed = 0;

    /* Tasks run pixel tiles innermost, so a thread's consecutive tasks (static schedule) share
     * their chunk of weights in cache. Each chunk starts at another tile: threads on different
     * chunks of the same pixels would write the same lines of packed words at the same time. */
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1) reduction(+ : nans, failed)
    for (int64_t task = 0; task < ntasks; ++task) {
        thread_scratch ts;
        xi_note_team();
        if (thread_scratch_get(&team, &ts) != 0) {
            ++failed;
            continue;
        }
        const int64_t chunk = (task / pixel_tiles) % chunks;
        const int64_t tile = (task % pixel_tiles + chunk * pixel_tiles / chunks) % pixel_tiles;
        const int grp = (int)((task / (pixel_tiles * chunks)) % g->groups);
        const int64_t img = task / (pixel_tiles * chunks * g->groups);
        const int64_t p0 = tile * PIXEL_TILE, row0 = img * npix + p0;
        const int rows = (int)(npix - p0 < PIXEL_TILE ? npix - p0 : PIXEL_TILE);
        const int64_t blk0 = chunk * chunk_panels;
        const int nb = (int)(npanels - blk0 < chunk_panels ? npanels - blk0 : chunk_panels);
        nans += conv_tile(&j, &j.ep, NULL, img, grp, p0, rows, blk0, nb, row0, row0, out, &team, &ts);
    }

    return failed ? -1 : nans ? -2 : 0;
}

int xi_bconv2d_block(const xi_bconv_layer *first, const xi_bconv_layer *rest, int nrest, int nthreads)
{
    const xi_bconv_geom *g = &first->g;
    const int o = g->o;
    const int64_t words = xi_words_for(o), npix = g->ho * g->wo;
    if (g->groups != 1 || nrest < 1 || nrest > XI_BLOCK_MAX_REST || !first->out || !first->ep.packed ||
        first->ep.packed_words != words || first->ep.first_bit != 0 || g->out_stride != o)
        return -3;
    for (int r = 0; r < nrest; ++r) {
        const xi_bconv_geom *b = &rest[r].g;
        if (b->n != g->n || b->h != g->ho || b->w != g->wo || b->c != o || b->o != o || b->groups != 1 ||
            b->kh != 1 || b->kw != 1 || b->sh != 1 || b->sw != 1 || b->pad_t || b->pad_b || b->pad_l ||
            b->pad_r || b->ho != g->ho || b->wo != g->wo || rest[r].x != first->ep.packed ||
            rest[r].ep.residual != first->out)
            return -3;
    }
    const int64_t pixel_tiles = (npix + PIXEL_TILE - 1) / PIXEL_TILE, ntasks = g->n * pixel_tiles;
    if (ntasks < 4 * nthreads) {
        /* Too few tiles to share among the threads: one convolution after the other, each of them
         * split over its output channels as well. */
        int status = xi_bconv2d(g, first->x, first->blocked, first->tap_popcount, &first->ep, first->out, nthreads);
        for (int r = 0; r < nrest && status == 0; ++r)
            status = xi_bconv2d(&rest[r].g, rest[r].x, rest[r].blocked, rest[r].tap_popcount, &rest[r].ep,
                                rest[r].out, nthreads);
        return status;
    }

    /* The first convolution writes its values and signs into the thread's tile, not to memory. */
    xi_bconv_geom g_first = *g;
    g_first.out_stride = o;
    xi_epilogue ep_first = first->ep;
    ep_first.packed_words = words, ep_first.first_bit = 0; /* packed: set per tile */
    /* The call's shared scratch: the zero words of padded taps, then each convolution's substitutes. */
    const int64_t zero_words = xi_words_for(g->c);
    size_t unit_floats = (size_t)o * 2;
    for (int r = 0; r < nrest; ++r)
        unit_floats += (size_t)rest[r].g.o * 2;
    uint64_t *shared = (uint64_t *)xi_scratch(XI_SCRATCH_TEAM, (size_t)zero_words * 8 + unit_floats * sizeof(float));
    if (!shared)
        return -1;
    float *unit = (float *)(shared + zero_words);
    conv_job jobs[1 + XI_BLOCK_MAX_REST];
    job_init(&jobs[0], &g_first, first->x, first->blocked, first->tap_popcount, &ep_first, NULL, 1, unit);
    unit += (size_t)o * 2;
    for (int r = 1; r <= nrest; ++r) {
        const xi_bconv_layer *L = &rest[r - 1];
        job_init(&jobs[r], &L->g, NULL, L->blocked, L->tap_popcount, &L->ep, L->out, L->ep.packed != NULL, unit);
        unit += (size_t)L->g.o * 2;
    }

    /* Tasks are pixel tiles, each through every convolution of the block; conv_tile runs a
     * convolution's channels in chunks of at most MAX_CHUNK_PANELS blocks (whole packed words). */
    double bit_macs = (double)g->n * npix * o * jobs[0].k * 64;
    for (int r = 1; r <= nrest; ++r)
        bit_macs += (double)g->n * npix * rest[r - 1].g.o * jobs[r].k * 64;
    if (bit_macs < MIN_PARALLEL_BIT_MACS)
        nthreads = 1;
    int64_t max_panels = 0;
    for (int r = 0; r <= nrest; ++r)
        max_panels = jobs[r].npanels > max_panels ? jobs[r].npanels : max_panels;
    const int ldc = (int)((max_panels < MAX_CHUNK_PANELS ? max_panels : MAX_CHUNK_PANELS) * XI_PANEL);
    team_scratch team;
    team_init(&team, jobs[0].taps, ldc, shared, zero_words, o);
    int64_t nans = 0, failed = 0;

#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1) reduction(+ : nans, failed)
    for (int64_t task = 0; task < ntasks; ++task) {
        thread_scratch scratch;
        xi_note_team();
        if (thread_scratch_get(&team, &scratch) != 0) {
            ++failed;
            continue;
        }
        const thread_scratch *ts = &scratch;
        const int64_t img = task / pixel_tiles, p0 = task % pixel_tiles * PIXEL_TILE, row0 = img * npix + p0;
        const int rows = (int)(npix - p0 < PIXEL_TILE ? npix - p0 : PIXEL_TILE);
        float *tile_values = ts->tile_values;
        uint64_t *tile_signs = ts->tile_signs;

        xi_epilogue ep = jobs[0].ep;
        ep.packed = tile_signs;
        nans += conv_tile(&jobs[0], &ep, NULL, img, 0, p0, rows, 0, (int)jobs[0].npanels, row0, 0, tile_values, &team, ts);
        for (int r = 1; r <= nrest; ++r) {
            ep = jobs[r].ep;
            ep.residual = tile_values;
            nans += conv_tile(&jobs[r], &ep, tile_signs, img, 0, p0, rows, 0, (int)jobs[r].npanels, 0, row0, jobs[r].out,
                              &team, ts);
        }
    }

    return failed ? -1 : nans ? -2 : 0;
}
