/* Bodies of the BWN kernels (bwn.h), included once per instruction set by bwn.c with XI_SUFFIX,
 * XI_TARGET, XI_BWN_MADD, XI_BWN_PX and XI_BWN_CO defined (XI_BWN_AVX512 optional). Plain loops
 * over contiguous channels that the compiler vectorises for the target, as in float_ops_impl.h.
 *
 * Convolution: the weights stay 1 bit each in bit panels (bwn.c, xi_bwn_conv_panels), one word per
 * tap for 64 output channels. A thread takes a tile of XI_BWN_TILE output pixels, gathers their
 * receptive fields into `patch` (im2col, one row of K = kh * kw * c / groups floats per pixel),
 * and for each block of XI_BWN_CO output channels expands that block's bits into a panel of
 * +-1.0 floats (K x CO, in L2) which the register-blocked micro-kernel multiplies the tile's rows
 * by: PX pixels x CO channels of sums in registers, one FMA by +-1.0 per term. The panel is
 * rebuilt per tile (1/TILE of the tile's work), so the layer never holds its weights as floats.
 *
 * Dense: each output's weights are streamed at 1 bit: 16 inputs at a time, the sign bit of each
 * flipped where its weight bit is set, then added to the output's 16 lanes. Outputs in blocks of
 * XI_BWN_ROWS, whose rows of words are read together, and every image of the batch against the
 * block while it is in L1. */
#define XI_CAT_(a, b) a##_##b
#define XI_CAT(a, b) XI_CAT_(a, b)
#define XI_FN(name) XI_CAT(name, XI_SUFFIX)
#define XI_BWN_TILE (8 * XI_BWN_PX)
#ifndef XI_BWN_ROWS
#define XI_BWN_ROWS 8
#define XI_BWN_LANES 16
#endif

#if defined(__GNUC__) && !defined(__clang__)
#define XI_NO_UNROLL _Pragma("GCC unroll 1")
#define XI_UNROLL_PIXELS _Pragma("GCC unroll 8")
#else
#define XI_NO_UNROLL
#define XI_UNROLL_PIXELS
#endif

/* panel[k * CO + j] = the sign (+-1.0) of bit j0 + j of bits[k], k < K. */
XI_TARGET static void XI_FN(bwn_decode)(const uint64_t *bits, int64_t K, int j0, float *panel)
{
    for (int64_t k = 0; k < K; ++k) {
        const uint64_t wb = bits[k] >> j0;
        const uint32_t lo = (uint32_t)wb;
        float *row = panel + k * XI_BWN_CO;
        for (int j = 0; j < (XI_BWN_CO < 32 ? XI_BWN_CO : 32); ++j)
            row[j] = (float)(1 - 2 * (int)((lo >> j) & 1u));
#if XI_BWN_CO > 32
        const uint32_t hi = (uint32_t)(wb >> 32);
        for (int j = 0; j < XI_BWN_CO - 32; ++j)
            row[32 + j] = (float)(1 - 2 * (int)((hi >> j) & 1u));
#endif
    }
}

/* acc[p][j] = sum over k < K, in order, of patch[p * K + k] * panel[k * CO + j]. */
XI_TARGET static void XI_FN(bwn_micro)(const float *patch, int64_t K, const float *panel,
                                       float acc[XI_BWN_PX][XI_BWN_CO])
{
    float a[XI_BWN_PX][XI_BWN_CO]; /* local: stays in registers */
    for (int p = 0; p < XI_BWN_PX; ++p)
        for (int j = 0; j < XI_BWN_CO; ++j)
            a[p][j] = 0.0f;
    XI_NO_UNROLL
    for (int64_t k = 0; k < K; ++k) {
        const float *wr = panel + k * XI_BWN_CO;
        XI_UNROLL_PIXELS
        for (int p = 0; p < XI_BWN_PX; ++p) {
            const float v = patch[p * K + k];
            for (int j = 0; j < XI_BWN_CO; ++j)
                a[p][j] = XI_BWN_MADD(v, wr[j], a[p][j]);
        }
    }
    for (int p = 0; p < XI_BWN_PX; ++p)
        for (int j = 0; j < XI_BWN_CO; ++j)
            acc[p][j] = a[p][j];
}

/* Rows [0, npx) of patch: the receptive fields of output pixels p0.. in group gi, (ky, kx, ci)
 * order, zeros for padded taps; rows up to the next multiple of PX are zero too. */
XI_TARGET static void XI_FN(bwn_im2col)(const xi_bwn_geom *g, const float *x, int gi, int64_t p0, int npx,
                                        float *patch)
{
    const int cg = g->c / g->groups;
    const int64_t K = (int64_t)g->kh * g->kw * cg;
    int64_t b = p0 / (g->ho * g->wo), oy = p0 / g->wo % g->ho, ox = p0 % g->wo;
    for (int q = 0; q < npx; ++q) {
        float *d = patch + q * K;
        const int64_t iy0 = oy * g->sh - g->pad_t, ix0 = ox * g->sw - g->pad_l;
        for (int ky = 0; ky < g->kh; ++ky) {
            const int64_t iy = iy0 + ky;
            for (int kx = 0; kx < g->kw; ++kx, d += cg) {
                const int64_t ix = ix0 + kx;
                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                    memset(d, 0, sizeof(float) * (size_t)cg);
                else
                    memcpy(d, x + ((b * g->h + iy) * g->w + ix) * g->c + (int64_t)gi * cg, sizeof(float) * (size_t)cg);
            }
        }
        if (++ox == g->wo) {
            ox = 0;
            if (++oy == g->ho)
                oy = 0, ++b;
        }
    }
    const int rows = (npx + XI_BWN_PX - 1) / XI_BWN_PX * XI_BWN_PX;
    if (rows > npx)
        memset(patch + npx * K, 0, sizeof(float) * (size_t)((rows - npx) * K));
}

XI_TARGET static int XI_FN(bwn_conv2d)(const xi_bwn_geom *g, const float *x, const uint64_t *panels,
                                       const float *alpha, const float *bias, float *out, int nthreads)
{
    const int cg = g->c / g->groups, og = g->o / g->groups;
    const int64_t K = (int64_t)g->kh * g->kw * cg, blocks = (og + XI_BWN_BLOCK - 1) / XI_BWN_BLOCK;
    const int64_t npix = g->n * g->ho * g->wo, ntiles = (npix + XI_BWN_TILE - 1) / XI_BWN_TILE;
    int failed = 0;
    (void)nthreads;
#pragma omp parallel num_threads(nthreads) if (nthreads > 1 && ntiles > 1 && npix * K * g->o > 200000)
    {
        float *patch = (float *)malloc(sizeof(float) * (size_t)(XI_BWN_TILE * K));
        float *panel = (float *)malloc(sizeof(float) * (size_t)(XI_BWN_CO * K));
        if (!patch || !panel) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t tile = 0; tile < ntiles; ++tile) {
            if (!patch || !panel)
                continue;
            const int64_t p0 = tile * XI_BWN_TILE;
            const int npx = npix - p0 < XI_BWN_TILE ? (int)(npix - p0) : XI_BWN_TILE;
            for (int gi = 0; gi < g->groups; ++gi) {
                XI_FN(bwn_im2col)(g, x, gi, p0, npx, patch);
                for (int64_t blk = 0; blk < blocks; ++blk)
                    for (int j0 = 0; j0 < XI_BWN_BLOCK && blk * XI_BWN_BLOCK + j0 < og; j0 += XI_BWN_CO) {
                        XI_FN(bwn_decode)(panels + (gi * blocks + blk) * K, K, j0, panel);
                        const int oc0 = gi * og + (int)blk * XI_BWN_BLOCK + j0;
                        const int cnt = og - (oc0 - gi * og) < XI_BWN_CO ? og - (oc0 - gi * og) : XI_BWN_CO;
                        for (int q = 0; q < npx; q += XI_BWN_PX) {
                            float acc[XI_BWN_PX][XI_BWN_CO];
                            XI_FN(bwn_micro)(patch + q * K, K, panel, acc);
                            const int np = npx - q < XI_BWN_PX ? npx - q : XI_BWN_PX;
                            for (int p = 0; p < np; ++p) {
                                float *dst = out + (p0 + q + p) * g->o + oc0;
                                if (bias)
                                    for (int j = 0; j < cnt; ++j)
                                        dst[j] = acc[p][j] * alpha[oc0 + j] + bias[oc0 + j];
                                else
                                    for (int j = 0; j < cnt; ++j)
                                        dst[j] = acc[p][j] * alpha[oc0 + j];
                            }
                        }
                    }
            }
        }
        free(patch);
        free(panel);
    }
    return failed ? -1 : 0;
}

/* out[j0 + r] for the R outputs whose rows of words start at w (`words` apart): see bwn.h for the
 * order. Always inlined with constant R, so that the lanes stay in registers. */
XI_TARGET static inline __attribute__((always_inline)) void
XI_FN(bwn_dense_rows)(const int R, int64_t in, int64_t words, const float *xr, const uint64_t *w,
                      const float *alpha, const float *bias, float *outr)
{
    const int64_t body = in - in % XI_BWN_LANES, tail = in % XI_BWN_LANES;
#ifdef XI_BWN_AVX512
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    __m512 lanes[XI_BWN_ROWS];
    for (int r = 0; r < R; ++r)
        lanes[r] = _mm512_setzero_ps();
    for (int64_t k = 0; k < in; k += XI_BWN_LANES) {
        const __mmask16 valid = k < body ? (__mmask16)0xffff : (__mmask16)((1u << tail) - 1);
        const __m512i v = _mm512_castps_si512(_mm512_maskz_loadu_ps(valid, xr + k));
        const int64_t wi = k / 64;
        const int shift = (int)(k % 64);
        for (int r = 0; r < R; ++r) {
            const __mmask16 m = (__mmask16)(w[r * words + wi] >> shift) & valid;
            lanes[r] = _mm512_add_ps(lanes[r], _mm512_castsi512_ps(_mm512_mask_xor_epi32(v, m, v, sign)));
        }
    }
    for (int r = 0; r < R; ++r) {
        float l[XI_BWN_LANES];
        _mm512_storeu_ps(l, lanes[r]);
        float sum = 0.0f;
        for (int i = 0; i < XI_BWN_LANES; ++i)
            sum += l[i];
        outr[r] = bias ? sum * alpha[r] + bias[r] : sum * alpha[r];
    }
#else
    float lanes[XI_BWN_ROWS][XI_BWN_LANES];
    for (int r = 0; r < R; ++r)
        for (int l = 0; l < XI_BWN_LANES; ++l)
            lanes[r][l] = 0.0f;
    for (int64_t k = 0; k < body; k += XI_BWN_LANES) {
        const int64_t wi = k / 64;
        const int shift = (int)(k % 64);
        for (int r = 0; r < R; ++r) {
            const uint32_t m = (uint32_t)(w[r * words + wi] >> shift);
            for (int l = 0; l < XI_BWN_LANES; ++l)
                lanes[r][l] += ((m >> l) & 1u) ? -xr[k + l] : xr[k + l];
        }
    }
    for (int r = 0; r < R; ++r) {
        const uint32_t m = tail ? (uint32_t)(w[r * words + body / 64] >> (body % 64)) : 0;
        for (int l = 0; l < tail; ++l)
            lanes[r][l] += ((m >> l) & 1u) ? -xr[body + l] : xr[body + l];
        float sum = 0.0f;
        for (int l = 0; l < XI_BWN_LANES; ++l)
            sum += lanes[r][l];
        outr[r] = bias ? sum * alpha[r] + bias[r] : sum * alpha[r];
    }
#endif
}

XI_TARGET static void XI_FN(bwn_dense)(int64_t n, int64_t in, int64_t o, const float *x, const uint64_t *packed,
                                       const float *alpha, const float *bias, float *out, int nthreads)
{
    const int64_t words = (in + 63) / 64, blocks = (o + XI_BWN_ROWS - 1) / XI_BWN_ROWS;
    (void)nthreads;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1 && blocks > 1 && o * in >= 65536)
    for (int64_t blk = 0; blk < blocks; ++blk) {
        const int64_t j0 = blk * XI_BWN_ROWS;
        const uint64_t *w = packed + j0 * words;
        const float *bb = bias ? bias + j0 : NULL;
        for (int64_t b = 0; b < n; ++b) {
            if (j0 + XI_BWN_ROWS <= o)
                XI_FN(bwn_dense_rows)(XI_BWN_ROWS, in, words, x + b * in, w, alpha + j0, bb, out + b * o + j0);
            else
                XI_FN(bwn_dense_rows)((int)(o - j0), in, words, x + b * in, w, alpha + j0, bb, out + b * o + j0);
        }
    }
}

#undef XI_NO_UNROLL
#undef XI_UNROLL_PIXELS
#undef XI_FN
#undef XI_CAT
#undef XI_CAT_
#undef XI_BWN_TILE
/* the instance's parameters, so that the next one can be defined */
#undef XI_SUFFIX
#undef XI_TARGET
#undef XI_BWN_MADD
#undef XI_BWN_PX
#undef XI_BWN_CO
#ifdef XI_BWN_AVX512
#undef XI_BWN_AVX512
#endif
