/* Bodies of the float kernels, included once per instruction set by float_ops.c with XI_SUFFIX,
 * XI_TARGET and XI_MADD(a, b, acc) defined. Plain loops over contiguous channels, which the
 * compiler vectorises for the target. Sums run in the same order on every target; XI_MADD is a
 * fused multiply-add where the target has one, so those targets round once per term. */
#define XI_CAT_(a, b) a##_##b
#define XI_CAT(a, b) XI_CAT_(a, b)
#define XI_FN(name) XI_CAT(name, XI_SUFFIX)

/* Register blocking, set per target (XI_CONV_PX, XI_CONV_CO): PX output pixels x CO output
 * channels of sums stay in registers while each weight row is loaded once for all the pixels;
 * enough independent sums to hide the multiply-add latency, few enough loads per multiply-add. */

/* acc[p][j] = sum over k < kh * run of x_p[k] * w[k * o_pad + j] against one block of CO output
 * channels, where x_p[ky * run + t] = src[p][ky * row_stride + t]: pixel p's receptive field,
 * read in place (kh runs of `run` floats, one per kernel row) or from a gathered patch (kh = 1).
 * Either way the same sums in the same order. Defined for CO = XI_CONV_CO and a half-width one
 * for narrow layers and the last block. */
#define XI_DEFINE_CONV_BLOCK(NAME, CO)                                                                  \
    XI_TARGET static void NAME(const float *const *src, int kh, int64_t run, int64_t row_stride,        \
                               const float *w, int64_t o_pad, float acc[XI_CONV_PX][XI_CONV_CO])       \
    {                                                                                                   \
        /* local sums: acc may alias the inputs as far as the compiler knows; these stay in registers */\
        float a[XI_CONV_PX][CO];                                                                        \
        for (int p = 0; p < XI_CONV_PX; ++p)                                                            \
            for (int j = 0; j < CO; ++j)                                                                \
                a[p][j] = 0.0f;                                                                         \
        for (int ky = 0; ky < kh; ++ky) {                                                               \
            const float *wk = w + ky * run * o_pad;                                                     \
            const int64_t at = ky * row_stride;                                                         \
            XI_NO_UNROLL /* unrolled, GCC runs out of registers and spills the sums to the stack */     \
            for (int64_t t = 0; t < run; ++t) {                                                         \
                XI_MCA_MARK("BEGIN conv");                                                              \
                const float *wr = wk + t * o_pad;                                                       \
                XI_UNROLL_PIXELS                                                                        \
                for (int p = 0; p < XI_CONV_PX; ++p) {                                                  \
                    const float v = src[p][at + t];                                                     \
                    for (int j = 0; j < CO; ++j)                                                        \
                        a[p][j] = XI_MADD(v, wr[j], a[p][j]);                                           \
                }                                                                                       \
                XI_MCA_MARK("END");                                                                     \
            }                                                                                           \
        }                                                                                               \
        for (int p = 0; p < XI_CONV_PX; ++p)                                                            \
            for (int j = 0; j < CO; ++j)                                                                \
                acc[p][j] = a[p][j];                                                                    \
    }

#if defined(__GNUC__) && !defined(__clang__)
#define XI_NO_UNROLL _Pragma("GCC unroll 1")
#define XI_UNROLL_PIXELS _Pragma("GCC unroll 8")
#else
#define XI_NO_UNROLL
#define XI_UNROLL_PIXELS
#endif

/* XI_FLOAT_EXPLICIT: the instance brings its own conv_block, conv_block_half, pool_window and
 * dense_rows (float_ops_neon.h), the same sums in the same order. */
#if !defined(XI_FLOAT_EXPLICIT) && !defined(XI_CONV_GROUP_EXPLICIT)
XI_DEFINE_CONV_BLOCK(XI_FN(conv_block), XI_CONV_CO)
XI_DEFINE_CONV_BLOCK(XI_FN(conv_block_half), XI_CONV_CO / 2)
#endif

/* XI_CONV_GROUP_EXPLICIT: the instance's conv_group is float_conv_x86.h's (intrinsics, per-row
 * pointers instead of whole gathered groups), the same sums in the same order. */
#ifdef XI_CONV_GROUP_EXPLICIT
#include "float_conv_x86.h"
#else

/* Output pixels [p0, p0 + npx) (npx <= XI_CONV_PX; flattened over images and rows) into dst, o
 * floats per pixel; the group's lanes past npx repeat pixel p_last (their sums are not stored).
 * Pixels inside the input are read in place; a group with one touching the padding is gathered
 * into `patch` (XI_CONV_PX * depth floats, small enough to stay in L1). */
XI_TARGET static inline void XI_FN(conv_group)(const xi_conv_geom *g, const float *x, const float *w,
                                               const float *scale, const float *bias, float *patch,
                                               int64_t p0, int npx, int64_t p_last, float *dst)
{
    const int64_t depth = (int64_t)g->kh * g->kw * g->c;
    const int64_t o_pad = (g->o + XI_CONV_OALIGN - 1) / XI_CONV_OALIGN * XI_CONV_OALIGN;
    const float *src[XI_CONV_PX];
    int64_t img[XI_CONV_PX], iy0[XI_CONV_PX], ix0[XI_CONV_PX]; /* each lane's window origin */
    int inside = 1;
    /* the first lane's pixel by division, the next ones by stepping along the row (lanes past npx
     * repeat p_last) */
    int64_t b = p0 / (g->ho * g->wo), oy = p0 / g->wo % g->ho, ox = p0 % g->wo;
    for (int q = 0; q < XI_CONV_PX; ++q) {
        if (q == npx)
            b = p_last / (g->ho * g->wo), oy = p_last / g->wo % g->ho, ox = p_last % g->wo;
        img[q] = b;
        iy0[q] = oy * g->sh - g->pad_t, ix0[q] = ox * g->sw - g->pad_l;
        if (q < npx && ++ox == g->wo) {
            ox = 0;
            if (++oy == g->ho)
                oy = 0, ++b;
        }
        const int in = iy0[q] >= 0 && iy0[q] + g->kh <= g->h && ix0[q] >= 0 && ix0[q] + g->kw <= g->w;
        src[q] = in ? x + ((img[q] * g->h + iy0[q]) * g->w + ix0[q]) * g->c : x;
        inside &= in;
    }
    if (!inside) {
        for (int q = 0; q < XI_CONV_PX; ++q) {
            float *d = patch + q * depth;
            src[q] = d;
            /* the taps of one kernel row that lie inside the input are one run of memory */
            const int lo = ix0[q] < 0 ? (int)-ix0[q] : 0;
            const int hi = ix0[q] + g->kw > g->w ? (int)(g->w - ix0[q]) : g->kw;
            for (int ky = 0; ky < g->kh; ++ky, d += (int64_t)g->kw * g->c) {
                const int64_t iy = iy0[q] + ky;
                if (iy < 0 || iy >= g->h || hi <= lo) { /* padded taps add 0 */
                    memset(d, 0, sizeof(float) * (size_t)g->kw * g->c);
                    continue;
                }
                if (lo > 0)
                    memset(d, 0, sizeof(float) * (size_t)lo * g->c);
                memcpy(d + (int64_t)lo * g->c, x + ((img[q] * g->h + iy) * g->w + ix0[q] + lo) * g->c,
                       sizeof(float) * (size_t)(hi - lo) * g->c);
                if (hi < g->kw)
                    memset(d + (int64_t)hi * g->c, 0, sizeof(float) * (size_t)(g->kw - hi) * g->c);
            }
        }
    }
    const int kh = inside ? g->kh : 1;
    const int64_t run = inside ? (int64_t)g->kw * g->c : depth, row_stride = inside ? g->w * g->c : 0;
    for (int64_t ob = 0; ob < g->o; ob += XI_CONV_CO) {
        const int width = g->o - ob < XI_CONV_CO ? (int)(g->o - ob) : XI_CONV_CO;
        float acc[XI_CONV_PX][XI_CONV_CO];
        if (width <= XI_CONV_CO / 2)
            XI_FN(conv_block_half)(src, kh, run, row_stride, w + ob, o_pad, acc);
        else
            XI_FN(conv_block)(src, kh, run, row_stride, w + ob, o_pad, acc);
        for (int q = 0; q < npx; ++q) {
            float *dq = dst + q * g->o + ob;
            for (int j = 0; j < width; ++j) {
                float v = acc[q][j];
                if (scale)
                    v *= scale[ob + j];
                if (bias)
                    v += bias[ob + j];
                dq[j] = g->relu && v < 0.0f ? 0.0f : v;
            }
        }
    }
}
#endif

/* Each thread's conv scratch: the patch of XI_CONV_PX pixels' receptive fields (pixels touching
 * the padding), then room for XI_CONV_PX * kh row pointers (float_conv_x86.h's conv_group). */
#define XI_CONV_SCRATCH_BYTES(g, depth) (sizeof(float) * (size_t)(XI_CONV_PX * (depth)) + sizeof(float *) * (size_t)(XI_CONV_PX * (g)->kh))

XI_TARGET int XI_FN(xi_conv2d)(const xi_conv_geom *g, const float *x, const float *w, const float *scale,
                               const float *bias, float *out, uint64_t *packed, const float *pack_bias,
                               int pack_zero_to, xi_pack_run_fn pack_run, int nthreads)
{
    const int64_t words = (g->o + 63) / 64;
    const int64_t npix = g->n * g->ho * g->wo;
    const int64_t depth = (int64_t)g->kh * g->kw * g->c;
    const int64_t o_pad = (g->o + XI_CONV_OALIGN - 1) / XI_CONV_OALIGN * XI_CONV_OALIGN;
    /* Pixels run in groups of XI_CONV_PX across output rows: a 7-pixel row would waste 5 of 12
     * lanes in groups per row. */
    const int64_t ngroups = (npix + XI_CONV_PX - 1) / XI_CONV_PX;
    int64_t nans = 0;
    int failed = 0;
    (void)nthreads, (void)o_pad; /* read only by the OpenMP pragma */
#pragma omp parallel num_threads(nthreads) if (nthreads > 1 && ngroups > 1 && npix * o_pad * depth > 200000)
    {
        float *patch = (float *)xi_scratch(XI_SCRATCH_THREAD, XI_CONV_SCRATCH_BYTES(g, depth));
        if (!patch) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t grp = 0; grp < ngroups; ++grp) {
            if (!patch)
                continue;
            const int64_t p0 = grp * XI_CONV_PX;
            const int npx = npix - p0 < XI_CONV_PX ? (int)(npix - p0) : XI_CONV_PX;
#if defined(XI_CONV_GROUP_EXPLICIT) && XI_CONV_PACK_IN_REGISTERS
            /* float_conv_x86.h's groups pack the signs from their sums in registers */
            int group_nan = 0;
            if (packed)
                XI_FN(conv_group_pack)(g, x, w, scale, bias, patch, p0, npx, npix - 1, out + p0 * g->o,
                                       packed + p0 * words, pack_bias, pack_zero_to == XI_ZERO_TO_MINUS_ONE,
                                       &group_nan);
            else
                XI_FN(conv_group)(g, x, w, scale, bias, patch, p0, npx, npix - 1, out + p0 * g->o);
            if (group_nan) {
#pragma omp atomic
                nans += group_nan;
            }
            (void)pack_run;
#else
            XI_FN(conv_group)(g, x, w, scale, bias, patch, p0, npx, npix - 1, out + p0 * g->o);
            if (packed) { /* the group's values are still in cache */
                int64_t group_nans = 0;
                for (int64_t p = p0; p < p0 + npx; ++p)
                    group_nans += pack_run(out + p * g->o, pack_bias, g->o, pack_zero_to, packed + p * words);
                if (group_nans) {
#pragma omp atomic
                    nans += group_nans;
                }
            }
#endif
        }
    }
    return failed ? -1 : nans ? -2 : 0;
}

#ifndef XI_FLOAT_EXPLICIT
/* One window of channels [0, len) (len <= 64) from its top-left input pixel `src`: the max, or the
 * sum divided by d, taps in row-major order. Always inlined with constant is_max (and len = 64 for
 * whole blocks), so the running values stay in registers. */
XI_TARGET static inline __attribute__((always_inline)) void
XI_FN(pool_window)(const int is_max, const int len, const float *src, int64_t ny, int64_t nx, int64_t row,
                   int64_t col, float d, float *dst)
{
    float acc[64];
    for (int k = 0; k < len; ++k)
        acc[k] = src[k];
    for (int64_t iy = 0; iy < ny; ++iy)
        for (int64_t ix = iy == 0; ix < nx; ++ix) {
            const float *s = src + iy * row + ix * col;
            for (int k = 0; k < len; ++k)
                acc[k] = is_max ? (s[k] > acc[k] ? s[k] : acc[k]) : acc[k] + s[k];
        }
    for (int k = 0; k < len; ++k)
        dst[k] = is_max ? acc[k] : acc[k] / d;
}
#endif

/* One output pixel of a pooling window of ny x nx taps from its top-left tap `src` (taps `row`
 * and `col` floats apart), all c channels, 64 at a time. */
XI_TARGET static inline __attribute__((always_inline)) void
XI_FN(pool_pixel)(int is_max, const float *src, int64_t ny, int64_t nx, int64_t row, int64_t col, int c, float d,
                  float *dst)
{
    if (ny <= 0 || nx <= 0) { /* an empty window (only padding): max pooling never yields it */
        for (int k = 0; k < c; ++k)
            dst[k] = 0.0f;
        return;
    }
    int k0 = 0;
    for (; k0 + 64 <= c; k0 += 64) {
        if (is_max)
            XI_FN(pool_window)(1, 64, src + k0, ny, nx, row, col, d, dst + k0);
        else
            XI_FN(pool_window)(0, 64, src + k0, ny, nx, row, col, d, dst + k0);
    }
    if (k0 < c) {
        if (is_max)
            XI_FN(pool_window)(1, c - k0, src + k0, ny, nx, row, col, d, dst + k0);
        else
            XI_FN(pool_window)(0, c - k0, src + k0, ny, nx, row, col, d, dst + k0);
    }
}

XI_TARGET void XI_FN(xi_pool2d)(int is_max, int64_t n, int64_t h, int64_t w, int c, int64_t ho,
                                int64_t wo, const int32_t *y0, const int32_t *y1, const int32_t *x0,
                                const int32_t *x1, const float *divisor, const float *x, float *out,
                                int nthreads)
{
    const int64_t rows = n * ho;
    (void)nthreads;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1 && rows > 1 && rows * wo * c > 65536)
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t b = r / ho, oy = r % ho;
        for (int64_t ox = 0; ox < wo; ++ox)
            XI_FN(pool_pixel)(is_max, x + ((b * h + y0[oy]) * w + x0[ox]) * c, y1[oy] - y0[oy], x1[ox] - x0[ox],
                              w * c, c, c, is_max ? 1.0f : divisor[oy * wo + ox], out + (r * wo + ox) * c);
    }
}

/* conv2d, then max pooling of its output (windows as pool2d's), a band of pooled rows per thread:
 * the conv rows a band needs go to a buffer of a few rows, which the pooling reads while they are
 * in cache, instead of the whole conv output going to memory and back. Rows a band no longer needs
 * move to the buffer's start; a row two bands share is computed by both. */
XI_TARGET int XI_FN(xi_conv2d_max_pool)(const xi_conv_geom *g, const float *x, const float *w,
                                        const float *scale, const float *bias, int64_t pho, int64_t pwo,
                                        const int32_t *y0, const int32_t *y1, const int32_t *x0,
                                        const int32_t *x1, float *out, int nthreads)
{
    const int64_t depth = (int64_t)g->kh * g->kw * g->c, row_floats = g->wo * g->o, rows = g->n * pho;
    int64_t window = 1; /* the most conv rows one pooled row reads */
    for (int64_t py = 0; py < pho; ++py)
        window = y1[py] - y0[py] > window ? y1[py] - y0[py] : window;
    const int64_t capacity = 2 * window;
    const int nbands = nthreads > 1 && rows >= 2 * nthreads ? nthreads : 1;
    int failed = 0;
#pragma omp parallel num_threads(nbands) if (nbands > 1)
    {
        float *patch = (float *)xi_scratch(XI_SCRATCH_THREAD, XI_CONV_SCRATCH_BYTES(g, depth));
        float *buf = (float *)xi_scratch(XI_SCRATCH_EXTRA, sizeof(float) * (size_t)(capacity * row_floats));
        if (!patch || !buf) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int band = 0; band < nbands; ++band) {
            if (!patch || !buf)
                continue;
            int64_t image = -1, first = 0, have = 0; /* buffer row i holds conv row first + i */
            for (int64_t r = band * rows / nbands; r < (band + 1) * rows / nbands; ++r) {
                const int64_t b = r / pho, py = r % pho;
                if (b != image || y0[py] < first)
                    image = b, first = y0[py], have = 0;
                if (y1[py] - first > capacity) { /* keep the rows from y0[py] on */
                    const int64_t keep = first + have > y0[py] ? first + have - y0[py] : 0;
                    memmove(buf, buf + (have - keep) * row_floats, sizeof(float) * (size_t)(keep * row_floats));
                    first = y0[py], have = keep;
                }
                for (; first + have < y1[py]; ++have) { /* the conv row first + have, group by group */
                    const int64_t p_row = (b * g->ho + first + have) * g->wo;
                    for (int64_t ox = 0; ox < g->wo; ox += XI_CONV_PX) {
                        const int npx = g->wo - ox < XI_CONV_PX ? (int)(g->wo - ox) : XI_CONV_PX;
                        XI_FN(conv_group)(g, x, w, scale, bias, patch, p_row + ox, npx, p_row + g->wo - 1,
                                          buf + have * row_floats + ox * g->o);
                    }
                }
                for (int64_t px = 0; px < pwo; ++px)
                    XI_FN(pool_pixel)(1, buf + (y0[py] - first) * row_floats + x0[px] * g->o, y1[py] - y0[py],
                                      x1[px] - x0[px], row_floats, g->o, g->o, 1.0f, out + (r * pwo + px) * g->o);
            }
        }
    }
    return failed ? -1 : 0;
}

#ifndef XI_FLOAT_EXPLICIT
/* out[b, j] for the R outputs whose rows of weights start at w (`in` floats apart): each output's
 * XI_DENSE_LANES lanes of products, summed lane by lane in order. The R rows are read together
 * (R sequential streams), and their R chains of sums overlap instead of one waiting on each.
 * Always inlined; with constant R the lanes stay in registers. */
XI_TARGET static inline __attribute__((always_inline)) void
XI_FN(dense_rows)(const int R, int64_t in, const float *xr, const float *w, int64_t j0,
                  const float *bias, float *outr)
{
    float lanes[XI_DENSE_ROWS][XI_DENSE_LANES];
    for (int r = 0; r < R; ++r)
        for (int l = 0; l < XI_DENSE_LANES; ++l)
            lanes[r][l] = 0.0f;
    const int64_t body = in - in % XI_DENSE_LANES, tail = in % XI_DENSE_LANES;
    for (int64_t k = 0; k < body; k += XI_DENSE_LANES)
        for (int r = 0; r < R; ++r)
            for (int l = 0; l < XI_DENSE_LANES; ++l)
                lanes[r][l] = XI_MADD(xr[k + l], w[r * in + k + l], lanes[r][l]);
    for (int r = 0; r < R; ++r) {
        for (int l = 0; l < tail; ++l)
            lanes[r][l] = XI_MADD(xr[body + l], w[r * in + body + l], lanes[r][l]);
        float sum = 0.0f;
        for (int l = 0; l < XI_DENSE_LANES; ++l)
            sum += lanes[r][l];
        outr[j0 + r] = bias ? sum + bias[j0 + r] : sum;
    }
}
#endif

XI_TARGET void XI_FN(xi_dense)(int64_t n, int64_t in, int64_t o, const float *x, const float *weight,
                               const float *bias, float *out, int nthreads)
{
    const int64_t blocks = (o + XI_DENSE_ROWS - 1) / XI_DENSE_ROWS;
    (void)nthreads;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1 && o * in >= 65536)
    for (int64_t blk = 0; blk < blocks; ++blk) {
        const int64_t j0 = blk * XI_DENSE_ROWS;
        const float *panel = weight + j0 * in;
        for (int64_t b = 0; b < n; ++b) {
            if (j0 + XI_DENSE_ROWS <= o)
                XI_FN(dense_rows)(XI_DENSE_ROWS, in, x + b * in, panel, j0, bias, out + b * o);
            else
                XI_FN(dense_rows)((int)(o - j0), in, x + b * in, panel, j0, bias, out + b * o);
        }
    }
}

XI_TARGET void XI_FN(xi_global_avg_pool)(int64_t n, int64_t pixels, int c, const float *x, float *out,
                                         int nthreads)
{
    (void)nthreads;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1 && n * pixels * c >= 65536)
    for (int64_t b = 0; b < n; ++b) {
        for (int c0 = 0; c0 < c; c0 += 64) {
            const int width = c - c0 < 64 ? c - c0 : 64;
            double acc[64] = {0.0}; /* float64 sums: a float32 sum over a large map drifts */
            for (int64_t p = 0; p < pixels; ++p) {
                const float *src = x + (b * pixels + p) * c + c0;
                for (int k = 0; k < width; ++k)
                    acc[k] += src[k];
            }
            for (int k = 0; k < width; ++k)
                out[b * c + c0 + k] = (float)(acc[k] / (double)pixels);
        }
    }
}

#undef XI_DEFINE_CONV_BLOCK
#undef XI_CONV_SCRATCH_BYTES
#undef XI_NO_UNROLL
#undef XI_UNROLL_PIXELS
#undef XI_FN
#undef XI_CAT
#undef XI_CAT_
/* the instance's parameters, so that the next one can be defined (XI_MADD stays: shared by some) */
#undef XI_SUFFIX
#undef XI_TARGET
#undef XI_CONV_PX
#undef XI_CONV_CO
#undef XI_FLOAT_EXPLICIT
#undef XI_CONV_GROUP_EXPLICIT
#undef XI_CONV_WIDE
