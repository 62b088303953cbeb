/* Bodies of the float kernels, included once per instruction set by float_ops.c with XI_SUFFIX
 * and XI_TARGET defined. Plain loops over contiguous channels, which the compiler vectorises for
 * the target; sums are accumulated in the same order on every target. */
#define XI_CAT_(a, b) a##_##b
#define XI_CAT(a, b) XI_CAT_(a, b)
#define XI_FN(name) XI_CAT(name, XI_SUFFIX)

/* Register blocking: XI_CONV_PX output pixels x XI_CONV_CO output channels of sums stay in
 * registers while the weights of one input channel are loaded once for all the pixels. */
#define XI_CONV_PX 4
#define XI_CONV_CO 16

/* acc[p][k] = sum over taps t and channels ci of src[p * taps + t][ci] * w[(t * c + ci) * o_pad + k] */
XI_TARGET static void XI_FN(conv_block)(const float *const *src, int taps, int c, const float *w,
                                        int64_t o_pad, float acc[XI_CONV_PX][XI_CONV_CO])
{
    for (int p = 0; p < XI_CONV_PX; ++p)
        for (int k = 0; k < XI_CONV_CO; ++k)
            acc[p][k] = 0.0f;
    for (int t = 0; t < taps; ++t) {
        const float *s0 = src[t], *s1 = src[taps + t], *s2 = src[2 * taps + t], *s3 = src[3 * taps + t];
        for (int ci = 0; ci < c; ++ci) {
            const float *wr = w + ((int64_t)t * c + ci) * o_pad;
            const float v0 = s0[ci], v1 = s1[ci], v2 = s2[ci], v3 = s3[ci];
            for (int k = 0; k < XI_CONV_CO; ++k) {
                const float wk = wr[k];
                acc[0][k] += v0 * wk;
                acc[1][k] += v1 * wk;
                acc[2][k] += v2 * wk;
                acc[3][k] += v3 * wk;
            }
        }
    }
}

XI_TARGET static int XI_FN(conv2d)(const xi_conv_geom *g, const float *x, const float *w, const float *zeros,
                                    const float *scale, const float *bias, float *out, int nthreads)
{
    const int64_t rows = g->n * g->ho;
    const int taps = g->kh * g->kw;
    const int64_t o_pad = (g->o + XI_CONV_CO - 1) / XI_CONV_CO * XI_CONV_CO;
    int failed = 0;
    (void)nthreads;
#pragma omp parallel num_threads(nthreads) if (nthreads > 1 && rows > 1)
    {
        const float **src = (const float **)malloc(sizeof(float *) * (size_t)taps * XI_CONV_PX);
        if (!src) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r) {
            if (!src)
                continue;
            const int64_t n = r / g->ho, oy = r % g->ho;
            for (int64_t ox0 = 0; ox0 < g->wo; ox0 += XI_CONV_PX) {
                const int npx = g->wo - ox0 < XI_CONV_PX ? (int)(g->wo - ox0) : XI_CONV_PX;
                /* each pixel's taps: its input pixel, or a row of zeros where the tap is padding
                 * (a padded tap adds 0; pixels past the row's end repeat the last real one) */
                for (int p = 0; p < XI_CONV_PX; ++p) {
                    const int64_t ox = ox0 + (p < npx ? p : npx - 1);
                    for (int ky = 0; ky < g->kh; ++ky)
                        for (int kx = 0; kx < g->kw; ++kx) {
                            const int64_t iy = oy * g->sh - g->pad_t + ky, ix = ox * g->sw - g->pad_l + kx;
                            const int inside = iy >= 0 && iy < g->h && ix >= 0 && ix < g->w;
                            src[p * taps + ky * g->kw + kx] = inside ? x + ((n * g->h + iy) * g->w + ix) * g->c
                                                                     : zeros;
                        }
                }
                for (int64_t ob = 0; ob < g->o; ob += XI_CONV_CO) {
                    float acc[XI_CONV_PX][XI_CONV_CO];
                    XI_FN(conv_block)(src, taps, g->c, w + ob, o_pad, acc);
                    const int width = g->o - ob < XI_CONV_CO ? (int)(g->o - ob) : XI_CONV_CO;
                    for (int p = 0; p < npx; ++p) {
                        float *dst = out + (r * g->wo + ox0 + p) * g->o + ob;
                        for (int k = 0; k < width; ++k) {
                            float v = acc[p][k];
                            if (scale)
                                v *= scale[ob + k];
                            if (bias)
                                v += bias[ob + k];
                            dst[k] = v;
                        }
                    }
                }
            }
        }
        free((void *)src);
    }
    return failed ? -1 : 0;
}

XI_TARGET static void XI_FN(pool2d)(int is_max, int64_t n, int64_t h, int64_t w, int c, int64_t ho,
                                    int64_t wo, const int32_t *y0, const int32_t *y1, const int32_t *x0,
                                    const int32_t *x1, const float *divisor, const float *x, float *out,
                                    int nthreads)
{
    const int64_t rows = n * ho;
    (void)nthreads;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1 && rows > 1)
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t b = r / ho, oy = r % ho;
        for (int64_t ox = 0; ox < wo; ++ox) {
            float *dst = out + (r * wo + ox) * c;
            int first = 1;
            for (int64_t iy = y0[oy]; iy < y1[oy]; ++iy) {
                for (int64_t ix = x0[ox]; ix < x1[ox]; ++ix) {
                    const float *src = x + ((b * h + iy) * w + ix) * c;
                    if (first) {
                        for (int k = 0; k < c; ++k)
                            dst[k] = src[k];
                        first = 0;
                    } else if (is_max) {
                        for (int k = 0; k < c; ++k)
                            dst[k] = src[k] > dst[k] ? src[k] : dst[k];
                    } else {
                        for (int k = 0; k < c; ++k)
                            dst[k] += src[k];
                    }
                }
            }
            if (first) { /* an empty window (only padding): max pooling never yields it */
                for (int k = 0; k < c; ++k)
                    dst[k] = 0.0f;
            } else if (!is_max) {
                const float d = divisor[oy * wo + ox];
                for (int k = 0; k < c; ++k)
                    dst[k] /= d;
            }
        }
    }
}

#undef XI_FN
#undef XI_CAT
#undef XI_CAT_
