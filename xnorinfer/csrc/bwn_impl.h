/* Bodies of the BWN kernels (bwn.h), included once per instruction set by bwn.c with XI_SUFFIX,
 * XI_TARGET, XI_BWN_PX, XI_BWN_CV and XI_BWN_DENSE_RB defined (XI_BWN_AVX512 / XI_BWN_AVX2
 * optional).
 *
 * Both layers use T-MAC-style lookup tables: for each group of 4 inputs a 16-float table of its
 * signed sums is built once (bwn_tables) and shared by every output channel; an output then adds
 * one table entry per group, picked by its 4 weight bits (the lanes' codes, bwn.h). AVX-512 looks
 * up 16 channels at once with VPERMPS (one table = one ZMM, the index a lane word shifted right by
 * 4q: VPERMPS reads its low 4 bits), AVX2 8 channels with VPERMPS on the table's first 8 entries
 * plus a sign flip, the other builds a plain load per output.
 *
 * Convolution: a thread takes XI_BWN_PX output pixels at a time, gathers their receptive fields
 * (im2col, one row of K floats per pixel, zeros up to a multiple of 32), and walks K in blocks of
 * XI_BWN_KB groups: it builds the PX pixels' tables of the block (PX x KB x 64 bytes, in L1), then
 * every block of 16 x CV output channels looks them up, PX x CV vectors of block sums in registers,
 * which are added to the outputs' running sums (in L1) at the end of the block. The weights stay
 * 1 bit each (4 bits per channel per group); nothing is expanded.
 *
 * Dense: the tables of up to XI_BWN_DENSE_IMAGES images are built at once; outputs go in sets of
 * XI_BWN_DENSE_RB blocks of 16 (the threads' unit of work), each set against every image of the
 * batch while its bits are in cache. */
#define XI_CAT_(a, b) a##_##b
#define XI_CAT(a, b) XI_CAT_(a, b)
#define XI_FN(name) XI_CAT(name, XI_SUFFIX)
#ifndef XI_BWN_PREFETCH
#define XI_BWN_PREFETCH 16 /* chunks of 64 bytes the AVX-512 dense body prefetches ahead per block */
#endif
#ifndef XI_BWN_DENSE_IMAGES
#define XI_BWN_DENSE_IMAGES 8 /* images whose tables a dense layer builds at once */
#endif
#define XI_BWN_TSTRIDE (16 * XI_BWN_KB) /* floats between two pixels' tables of a conv block */
#if defined(__GNUC__) && !defined(__clang__)
#define XI_NO_UNROLL _Pragma("GCC unroll 1")
#else
#define XI_NO_UNROLL
#endif

/* The dense layer's tables for one image (bwn.h): for each group g of 4 inputs (zeros past `in`),
 * entry m < 8 is ((s0 x0 + s1 x1) + s2 x2) + x3 with s_b = -1 where bit b of m is set, and entry
 * 8 + m its negation; 16 floats a group, 64-byte aligned. */
XI_TARGET static void XI_FN(bwn_tables)(int64_t in, int64_t groups, const float *x, float *tab)
{
    const int64_t full = in / 4 < groups ? in / 4 : groups;
#ifdef XI_BWN_AVX512
    const __m512 s0 = _mm512_setr_ps(1, -1, 1, -1, 1, -1, 1, -1, -1, 1, -1, 1, -1, 1, -1, 1);
    const __m512 s1 = _mm512_setr_ps(1, 1, -1, -1, 1, 1, -1, -1, -1, -1, 1, 1, -1, -1, 1, 1);
    const __m512 s2 = _mm512_setr_ps(1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1, 1, 1, 1, 1);
    const __m512 s3 = _mm512_setr_ps(1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1);
    for (int64_t g = 0; g < full; ++g) {
        const float *v = x + 4 * g; /* the products by +-1 are exact: each FMA is one rounded add */
        __m512 t = _mm512_mul_ps(_mm512_set1_ps(v[0]), s0);
        t = _mm512_fmadd_ps(_mm512_set1_ps(v[1]), s1, t);
        t = _mm512_fmadd_ps(_mm512_set1_ps(v[2]), s2, t);
        _mm512_store_ps(tab + 16 * g, _mm512_fmadd_ps(_mm512_set1_ps(v[3]), s3, t));
    }
#else
    for (int64_t g = 0; g < full; ++g) {
        const float *v = x + 4 * g;
        for (int m = 0; m < 8; ++m) {
            const float a0 = m & 1 ? -v[0] : v[0], a1 = m & 2 ? -v[1] : v[1], a2 = m & 4 ? -v[2] : v[2];
            const float t = ((a0 + a1) + a2) + v[3];
            tab[16 * g + m] = t, tab[16 * g + 8 + m] = -t;
        }
    }
#endif
    for (int64_t g = full; g < groups; ++g) {
        float v[4];
        for (int b = 0; b < 4; ++b)
            v[b] = 4 * g + b < in ? x[4 * g + b] : 0.0f;
        for (int m = 0; m < 8; ++m) {
            const float a0 = m & 1 ? -v[0] : v[0], a1 = m & 2 ? -v[1] : v[1], a2 = m & 4 ? -v[2] : v[2];
            const float t = ((a0 + a1) + a2) + v[3];
            tab[16 * g + m] = t, tab[16 * g + 8 + m] = -t;
        }
    }
}

/* Rows [0, npx) of patch (row stride kp): the receptive fields of output pixels p0.. in group gi,
 * (ky, kx, ci) order, each value sc[ci] * v + sh[ci] when sc is not NULL, zeros for padded taps and
 * from K to kp; rows npx..PX - 1 are zero. */
XI_TARGET static void XI_FN(bwn_im2col)(const xi_bwn_geom *g, const float *x, const float *sc, const float *sh,
                                        int gi, int64_t p0, int npx, int64_t kp, float *patch)
{
    const int cg = g->c / g->groups;
    const int64_t K = (int64_t)g->kh * g->kw * cg;
    int64_t b = p0 / (g->ho * g->wo), oy = p0 / g->wo % g->ho, ox = p0 % g->wo;
    for (int q = 0; q < npx; ++q) {
        float *d = patch + q * kp;
        const int64_t iy0 = oy * g->sh - g->pad_t, ix0 = ox * g->sw - g->pad_l;
        for (int ky = 0; ky < g->kh; ++ky) {
            const int64_t iy = iy0 + ky;
            for (int kx = 0; kx < g->kw; ++kx, d += cg) {
                const int64_t ix = ix0 + kx;
                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) {
                    memset(d, 0, sizeof(float) * (size_t)cg);
                } else {
                    const float *src = x + ((b * g->h + iy) * g->w + ix) * g->c + (int64_t)gi * cg;
                    if (sc)
                        for (int ci = 0; ci < cg; ++ci)
                            d[ci] = src[ci] * sc[ci] + sh[ci];
                    else
                        memcpy(d, src, sizeof(float) * (size_t)cg);
                }
            }
        }
        if (kp > K)
            memset(d, 0, sizeof(float) * (size_t)(kp - K));
        if (++ox == g->wo) {
            ox = 0;
            if (++oy == g->ho)
                oy = 0, ++b;
        }
    }
    if (npx < XI_BWN_PX)
        memset(patch + npx * kp, 0, sizeof(float) * (size_t)((XI_BWN_PX - npx) * kp));
}

/* sums[p * ss + 16 * v + j] += the block sum of pixel p and channel 16 v + j of the CV blocks of 16
 * channels whose lanes start at `ln` (ls words apart), over nch chunks (8 groups each) of the
 * tables `tab` (pixel p's at p * XI_BWN_TSTRIDE): the entries added in order to +0.0 (bwn.h).
 * Always inlined with constant CV. */
XI_TARGET static inline __attribute__((always_inline)) void
XI_FN(bwn_conv_block)(const int CV, int64_t nch, const uint32_t *ln, int64_t ls, const float *tab, float *sums,
                      int64_t ss)
{
#if defined(XI_BWN_AVX512)
    __m512 acc[XI_BWN_PX][XI_BWN_CV];
    for (int p = 0; p < XI_BWN_PX; ++p)
        for (int v = 0; v < CV; ++v)
            acc[p][v] = _mm512_setzero_ps();
    for (int64_t c = 0; c < nch; ++c) {
        const uint32_t *w = ln + c * 16;
        const float *t = tab + c * 128;
        __m512i shift = _mm512_setzero_si512(); /* 4q in every lane: VPSRLVD, one uop, no unrolling */
        XI_NO_UNROLL
        for (int q = 0; q < 8; ++q, t += 16) { /* vpermps reads the low 4 bits of each index */
            __m512i idx[XI_BWN_CV];
            for (int v = 0; v < CV; ++v)
                idx[v] = _mm512_srlv_epi32(_mm512_loadu_si512((const void *)(w + v * ls)), shift);
            for (int p = 0; p < XI_BWN_PX; ++p) {
                const __m512 table = _mm512_load_ps(t + p * XI_BWN_TSTRIDE);
                for (int v = 0; v < CV; ++v)
                    acc[p][v] = _mm512_add_ps(acc[p][v], _mm512_permutexvar_ps(idx[v], table));
            }
            shift = _mm512_add_epi32(shift, _mm512_set1_epi32(4));
        }
    }
    for (int p = 0; p < XI_BWN_PX; ++p)
        for (int v = 0; v < CV; ++v) {
            float *d = sums + p * ss + 16 * v;
            _mm512_storeu_ps(d, _mm512_add_ps(_mm512_loadu_ps(d), acc[p][v]));
        }
#elif defined(XI_BWN_AVX2)
    /* 8-entry tables: a code's low 3 bits pick the entry, its bit 3 (moved to the sign bit) flips
     * the entry's sign, as entry 8 + m = -entry m. */
    const __m256i sign = _mm256_set1_epi32((int)0x80000000u);
    __m256 acc[XI_BWN_PX][XI_BWN_CV][2];
    for (int p = 0; p < XI_BWN_PX; ++p)
        for (int v = 0; v < CV; ++v)
            acc[p][v][0] = acc[p][v][1] = _mm256_setzero_ps();
    for (int64_t c = 0; c < nch; ++c) {
        const float *t = tab + c * 128;
        for (int v = 0; v < CV; ++v)
            for (int h = 0; h < 2; ++h) {
                const __m256i w = _mm256_loadu_si256((const __m256i *)(ln + v * ls + c * 16 + 8 * h));
                for (int q = 0; q < 8; ++q) {
                    const __m256i u = _mm256_slli_epi32(w, 28 - 4 * q); /* the code in bits 28-31 */
                    const __m256i idx = _mm256_srai_epi32(u, 28);
                    const __m256 s = _mm256_castsi256_ps(_mm256_and_si256(u, sign));
                    for (int p = 0; p < XI_BWN_PX; ++p) {
                        const __m256 e = _mm256_permutevar8x32_ps(_mm256_load_ps(t + p * XI_BWN_TSTRIDE + 16 * q), idx);
                        acc[p][v][h] = _mm256_add_ps(acc[p][v][h], _mm256_xor_ps(e, s));
                    }
                }
            }
    }
    for (int p = 0; p < XI_BWN_PX; ++p)
        for (int v = 0; v < CV; ++v)
            for (int h = 0; h < 2; ++h) {
                float *d = sums + p * ss + 16 * v + 8 * h;
                _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), acc[p][v][h]));
            }
#else
    for (int v = 0; v < CV; ++v) {
        float a[XI_BWN_PX][16];
        for (int p = 0; p < XI_BWN_PX; ++p)
            for (int j = 0; j < 16; ++j)
                a[p][j] = 0.0f;
        for (int64_t c = 0; c < nch; ++c) {
            const uint32_t *w = ln + v * ls + c * 16;
            const float *t = tab + c * 128;
            for (int q = 0; q < 8; ++q)
                for (int j = 0; j < 16; ++j) {
                    const uint32_t code = (w[j] >> (4 * q)) & 15u;
                    for (int p = 0; p < XI_BWN_PX; ++p)
                        a[p][j] += t[p * XI_BWN_TSTRIDE + 16 * q + code];
                }
        }
        for (int p = 0; p < XI_BWN_PX; ++p)
            for (int j = 0; j < 16; ++j)
                sums[p * ss + 16 * v + j] += a[p][j];
    }
#endif
}

XI_TARGET int XI_FN(xi_bwn_conv2d)(const xi_bwn_geom *g, const float *x, const float *in_scale,
                                   const float *in_shift, const uint32_t *lanes, const float *alpha,
                                   const float *bias, int relu, float *out, int nthreads)
{
    const int cg = g->c / g->groups, og = g->o / g->groups;
    const int64_t K = (int64_t)g->kh * g->kw * cg, chunks = (K + 31) / 32, kp = 32 * chunks;
    const int64_t cblocks = (og + 15) / 16, ss = 16 * cblocks, per_group = cblocks * chunks * 16;
    const int64_t npix = g->n * g->ho * g->wo, nsets = (npix + XI_BWN_PX - 1) / XI_BWN_PX;
    int failed = 0;
    (void)nthreads;
#pragma omp parallel num_threads(nthreads) if (nthreads > 1 && nsets > 1 && npix * K * g->o > 200000)
    {
        /* the patch rows, then the running sums */
        float *patch = (float *)xi_scratch(XI_SCRATCH_THREAD, sizeof(float) * (size_t)(XI_BWN_PX * (kp + ss)));
        float *tab = (float *)xi_scratch(XI_SCRATCH_EXTRA, sizeof(float) * XI_BWN_PX * XI_BWN_TSTRIDE);
        if (!patch || !tab) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t set = 0; set < nsets; ++set) {
            if (!patch || !tab)
                continue;
            float *sums = patch + XI_BWN_PX * kp;
            const int64_t p0 = set * XI_BWN_PX;
            const int npx = npix - p0 < XI_BWN_PX ? (int)(npix - p0) : XI_BWN_PX;
            for (int gi = 0; gi < g->groups; ++gi) {
                const uint32_t *gl = lanes + gi * per_group;
                XI_FN(bwn_im2col)(g, x, in_scale ? in_scale + gi * cg : NULL, in_shift ? in_shift + gi * cg : NULL, gi,
                                  p0, npx, kp, patch);
                memset(sums, 0, sizeof(float) * (size_t)(XI_BWN_PX * ss));
                for (int64_t c0 = 0; c0 < chunks; c0 += XI_BWN_KB / 8) {
                    const int64_t nch = chunks - c0 < XI_BWN_KB / 8 ? chunks - c0 : XI_BWN_KB / 8;
                    for (int p = 0; p < XI_BWN_PX; ++p)
                        XI_FN(bwn_tables)(32 * nch, 8 * nch, patch + p * kp + 32 * c0, tab + p * XI_BWN_TSTRIDE);
                    int64_t cb = 0;
                    for (; cb + XI_BWN_CV <= cblocks; cb += XI_BWN_CV)
                        XI_FN(bwn_conv_block)(XI_BWN_CV, nch, gl + (cb * chunks + c0) * 16, chunks * 16, tab,
                                              sums + 16 * cb, ss);
                    for (; cb < cblocks; ++cb)
                        XI_FN(bwn_conv_block)(1, nch, gl + (cb * chunks + c0) * 16, chunks * 16, tab, sums + 16 * cb, ss);
                }
                for (int p = 0; p < npx; ++p) {
                    float *dst = out + (p0 + p) * g->o + gi * og;
                    const float *a = alpha + gi * og, *s = sums + p * ss;
                    if (bias)
                        for (int j = 0; j < og; ++j)
                            dst[j] = s[j] * a[j] + bias[gi * og + j];
                    else
                        for (int j = 0; j < og; ++j)
                            dst[j] = s[j] * a[j];
                    if (relu)
                        for (int j = 0; j < og; ++j)
                            dst[j] = dst[j] < 0 ? 0.0f : dst[j];
                }
            }
        }
    }
    return failed ? -1 : 0;
}

/* sums[16 * b + j] for the RB blocks of 16 outputs whose lanes start at `lanes` (bwn.h): four
 * running sums per output, P[g % 4] += table g's entry at the output's code for group g, groups in
 * order, then (P0 + P1) + (P2 + P3). Always inlined with constant RB. */
XI_TARGET static inline __attribute__((always_inline)) void
XI_FN(bwn_dense_blocks)(const int RB, int64_t chunks, const uint32_t *lanes, const float *tab, float *sums)
{
#if defined(XI_BWN_AVX512)
    __m512 acc[XI_BWN_DENSE_RB][4];
    for (int b = 0; b < RB; ++b)
        for (int q = 0; q < 4; ++q)
            acc[b][q] = _mm512_setzero_ps();
    for (int64_t c = 0; c < chunks; ++c) {
        __m512i w[XI_BWN_DENSE_RB];
        for (int b = 0; b < RB; ++b) {
            w[b] = _mm512_loadu_si512((const void *)(lanes + (b * chunks + c) * 16));
            if (c + XI_BWN_PREFETCH < chunks) /* weights come from memory once per image: ask early */
                _mm_prefetch((const char *)(lanes + (b * chunks + c + XI_BWN_PREFETCH) * 16), _MM_HINT_T0);
        }
        const float *t = tab + c * 128;
        for (int q = 0; q < 8; ++q) { /* vpermps reads the low 4 bits of each index */
            const __m512 table = _mm512_load_ps(t + 16 * q);
            for (int b = 0; b < RB; ++b) {
                const __m512i idx = q ? _mm512_srli_epi32(w[b], 4 * q) : w[b];
                acc[b][q & 3] = _mm512_add_ps(acc[b][q & 3], _mm512_permutexvar_ps(idx, table));
            }
        }
    }
    for (int b = 0; b < RB; ++b)
        _mm512_storeu_ps(sums + 16 * b, _mm512_add_ps(_mm512_add_ps(acc[b][0], acc[b][1]),
                                                      _mm512_add_ps(acc[b][2], acc[b][3])));
#elif defined(XI_BWN_AVX2)
    /* 8-entry tables: a code's low 3 bits pick the entry, its bit 3 (moved to the sign bit) flips
     * the entry's sign, as entry 8 + m = -entry m. */
    const __m256i sign = _mm256_set1_epi32((int)0x80000000u);
    __m256 acc[XI_BWN_DENSE_RB][2][4];
    for (int b = 0; b < RB; ++b)
        for (int h = 0; h < 2; ++h)
            for (int q = 0; q < 4; ++q)
                acc[b][h][q] = _mm256_setzero_ps();
    for (int64_t c = 0; c < chunks; ++c) {
        __m256i w[XI_BWN_DENSE_RB][2];
        for (int b = 0; b < RB; ++b)
            for (int h = 0; h < 2; ++h)
                w[b][h] = _mm256_loadu_si256((const __m256i *)(lanes + (b * chunks + c) * 16 + 8 * h));
        const float *t = tab + c * 128;
        for (int q = 0; q < 8; ++q) {
            const __m256 table = _mm256_load_ps(t + 16 * q);
            for (int b = 0; b < RB; ++b)
                for (int h = 0; h < 2; ++h) {
                    const __m256i v = _mm256_slli_epi32(w[b][h], 28 - 4 * q); /* the code in bits 28-31 */
                    const __m256 e = _mm256_permutevar8x32_ps(table, _mm256_srai_epi32(v, 28));
                    const __m256 s = _mm256_xor_ps(e, _mm256_castsi256_ps(_mm256_and_si256(v, sign)));
                    acc[b][h][q & 3] = _mm256_add_ps(acc[b][h][q & 3], s);
                }
        }
    }
    for (int b = 0; b < RB; ++b)
        for (int h = 0; h < 2; ++h)
            _mm256_storeu_ps(sums + 16 * b + 8 * h, _mm256_add_ps(_mm256_add_ps(acc[b][h][0], acc[b][h][1]),
                                                                  _mm256_add_ps(acc[b][h][2], acc[b][h][3])));
#else
    for (int b = 0; b < RB; ++b) {
        float p[16][4];
        for (int j = 0; j < 16; ++j)
            for (int q = 0; q < 4; ++q)
                p[j][q] = 0.0f;
        for (int64_t c = 0; c < chunks; ++c) {
            const uint32_t *w = lanes + (b * chunks + c) * 16;
            const float *t = tab + c * 128;
            for (int q = 0; q < 8; ++q)
                for (int j = 0; j < 16; ++j)
                    p[j][q & 3] += t[16 * q + ((w[j] >> (4 * q)) & 15u)];
        }
        for (int j = 0; j < 16; ++j)
            sums[16 * b + j] = (p[j][0] + p[j][1]) + (p[j][2] + p[j][3]);
    }
#endif
}

XI_TARGET int XI_FN(xi_bwn_dense)(int64_t n, int64_t in, int64_t o, const float *x, const uint32_t *lanes,
                                  const float *alpha, const float *bias, float *out, int nthreads)
{
    const int64_t chunks = (in + 31) / 32, blocks = (o + 15) / 16;
    const int64_t sets = (blocks + XI_BWN_DENSE_RB - 1) / XI_BWN_DENSE_RB;
    const int64_t nb = n < XI_BWN_DENSE_IMAGES ? n : XI_BWN_DENSE_IMAGES;
    /* 64-byte aligned: a table per cache line */
    float *tabs = (float *)xi_scratch(XI_SCRATCH_TEAM, sizeof(float) * (size_t)(nb * chunks * 128));
    if (!tabs)
        return -1;
    (void)nthreads;
    for (int64_t b0 = 0; b0 < n; b0 += nb) {
        const int64_t cnt = n - b0 < nb ? n - b0 : nb;
        for (int64_t b = 0; b < cnt; ++b)
            XI_FN(bwn_tables)(in, 8 * chunks, x + (b0 + b) * in, tabs + b * chunks * 128);
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1 && sets > 1 && o * in >= 65536)
        for (int64_t set = 0; set < sets; ++set) {
            const int64_t blk = set * XI_BWN_DENSE_RB, j0 = 16 * blk;
            const int rb = blocks - blk < XI_BWN_DENSE_RB ? (int)(blocks - blk) : XI_BWN_DENSE_RB;
            for (int64_t b = 0; b < cnt; ++b) {
                float sums[16 * XI_BWN_DENSE_RB];
                if (rb == XI_BWN_DENSE_RB)
                    XI_FN(bwn_dense_blocks)(XI_BWN_DENSE_RB, chunks, lanes + blk * chunks * 16,
                                            tabs + b * chunks * 128, sums);
                else
                    XI_FN(bwn_dense_blocks)(rb, chunks, lanes + blk * chunks * 16, tabs + b * chunks * 128, sums);
                float *dst = out + (b0 + b) * o;
                const int64_t rows = o - j0 < 16 * rb ? o - j0 : 16 * rb;
                for (int64_t r = 0; r < rows; ++r)
                    dst[j0 + r] = bias ? sums[r] * alpha[j0 + r] + bias[j0 + r] : sums[r] * alpha[j0 + r];
            }
        }
    }
    return 0;
}

#undef XI_FN
#undef XI_CAT
#undef XI_CAT_
#undef XI_BWN_TSTRIDE
#undef XI_NO_UNROLL
/* the instance's parameters, so that the next one can be defined */
#undef XI_SUFFIX
#undef XI_TARGET
#undef XI_BWN_PX
#undef XI_BWN_CV
#undef XI_BWN_DENSE_RB
#ifdef XI_BWN_AVX512
#undef XI_BWN_AVX512
#endif
#ifdef XI_BWN_AVX2
#undef XI_BWN_AVX2
#endif
