/* The float conv's pixel group for AVX2 and AVX-512, written with intrinsics: included by
 * float_ops.c inside an x86 instance of float_ops_impl.h (XI_SUFFIX, XI_TARGET, XI_CONV_PX = 12
 * defined) with the vector macros below set for its width, and XI_CONV_GROUP_EXPLICIT so that the
 * generic conv_group is not built.
 *
 * Same sums in the same order as the generic code (and so bit for bit the same on both levels):
 * each output channel's sum starts at 0 and takes one fmaf per tap, kernel rows top to bottom,
 * then (kx, channel) in memory order, padded taps as zeros; then * scale, + bias, max(0, .).
 *
 * Why not the generic loops: the compiler's code (6 pixels, whole 64-channel blocks with a half
 * block for narrow layers) ran the stems at 25-62% of the FMA peak. The time went to
 *  - whole groups gathered into a patch when one pixel touched the padding (a stride-2 row of
 *    112 pixels has 1 such pixel in ~9 groups of 12), memset/memcpy per tap row of every pixel;
 *    here each pixel's kernel rows are pointers, in place unless that row crosses the border,
 *    and only such rows are copied;
 *  - sums stored to an array and a scalar epilogue per channel; here scale, bias and ReLU are
 *    applied in registers and stored (masked past o);
 *  - a 32-channel layer (ReActNet-A) on AVX-512 ran in 12 sums, too few to cover the FMA latency;
 *    tiles are chosen per width: 6 pixels x 4 vectors, or 12 pixels x 1-2 vectors.
 *
 * Vector macros: XI_V (type), XI_VL (lanes), XI_VZERO(), XI_VLOAD(p), XI_VBCAST(p), XI_VFMA(a, b,
 * acc), XI_VMUL, XI_VADD, XI_VMAX0(v) (max(0, v): -0.0 and NaN kept as the scalar test does),
 * XI_VMASK (type), XI_VMASK_FIRST(n) (lanes < n), XI_VLOAD_M(m, p), XI_VSTORE(p, v),
 * XI_VSTORE_M(p, m, v). */

/* PX pixels (lanes q0 .. q0 + PX of the group) x NV vectors of output channels [ob, ob + width),
 * width <= NV * XI_VL. rows[ky * XI_CONV_PX + q]: where lane q's kernel row ky starts (run floats).
 * Always inlined with constant PX and NV, so the sums live in registers. */
XI_TARGET static inline __attribute__((always_inline)) void
XI_FN(conv_tile)(const int PX, const int NV, const int RUN, const int PS, const int PACK, const float *const *rows,
                 const float *base, int64_t rs, int kh, int64_t run, const float *w, int64_t o_pad, int q0,
                 int npx, int64_t ob, int width, const float *scale, const float *bias, int relu, int64_t o,
                 float *dst, uint64_t *packed, int64_t words, const float *pack_bias, int le, int *nan_seen)
{
    XI_V a[12][4]; /* fixed sizes, not [PX][NV]: a variable-length array would stay in memory */
#pragma GCC unroll 12
    for (int p = 0; p < PX; ++p)
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j)
            a[p][j] = XI_VZERO();
    for (int ky = 0; ky < kh; ++ky) {
        const float *r[12];
#pragma GCC unroll 12
        for (int p = 0; p < PX; ++p)
            r[p] = PS ? NULL : rows[ky * XI_CONV_PX + q0 + p];
        const float *wr = w + ky * run * o_pad + ob;
        if (RUN) { /* a known row of taps: unrolled, every load at a constant offset */
            const float *rk = base + ky * rs + q0 * PS;
#pragma GCC unroll 36
            for (int t = 0; t < RUN; ++t, wr += o_pad) {
                /* Opaque to the compiler, so that it does not see that pixel p's tap t is pixel
                 * p + 1's tap t - PS and keep broadcasts alive across taps (it then runs out of
                 * registers and spills the sums). Volatile: two plain asm statements with the same input
                 * would be merged. No instruction, or one register move. */
                const float *rt = rk;
                __asm__ volatile("" : "+r"(rt));
                XI_V wv[4];
#pragma GCC unroll 4
                for (int j = 0; j < NV; ++j)
                    wv[j] = XI_VLOAD(wr + j * XI_VL);
#pragma GCC unroll 12
                for (int p = 0; p < PX; ++p) {
                    const XI_V v = XI_VBCAST(rt + p * PS + t);
#pragma GCC unroll 4
                    for (int j = 0; j < NV; ++j)
                        a[p][j] = XI_VFMA(v, wv[j], a[p][j]);
                }
            }
            continue;
        }
#pragma GCC unroll 2
        for (int64_t t = 0; t < run; ++t, wr += o_pad) {
            XI_MCA_MARK("BEGIN conv");
            XI_V wv[4];
#pragma GCC unroll 4
            for (int j = 0; j < NV; ++j)
                wv[j] = XI_VLOAD(wr + j * XI_VL);
#pragma GCC unroll 12
            for (int p = 0; p < PX; ++p) {
                const XI_V v = XI_VBCAST(r[p] + t);
#pragma GCC unroll 4
                for (int j = 0; j < NV; ++j)
                    a[p][j] = XI_VFMA(v, wv[j], a[p][j]);
            }
            XI_MCA_MARK("END");
        }
    }
    /* the last vector may reach past o: its lanes of scale and bias (o floats) are not read, its
     * lanes of dst (the next pixel's) not written */
    const int last = (width - 1) / XI_VL, tail = width - last * XI_VL;
    const XI_VMASK m = XI_VMASK_FIRST(tail);
    XI_V sv[4], bv[4], pv[4];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
        if (j > last)
            continue;
        sv[j] = !scale ? XI_VZERO() : j < last ? XI_VLOAD(scale + ob + j * XI_VL) : XI_VLOAD_M(m, scale + ob + j * XI_VL);
        bv[j] = !bias ? XI_VZERO() : j < last ? XI_VLOAD(bias + ob + j * XI_VL) : XI_VLOAD_M(m, bias + ob + j * XI_VL);
        pv[j] = !pack_bias ? XI_VZERO()
                : j < last ? XI_VLOAD(pack_bias + ob + j * XI_VL)
                           : XI_VLOAD_M(m, pack_bias + ob + j * XI_VL);
    }
    /* the packed word's bits of lanes < tail in the last vector; the tile's channels lie in one
     * word (ob is a multiple of XI_CONV_WIDE * XI_VL, which divides 64) */
    const uint64_t tail_bits = tail == XI_VL ? ~(uint64_t)0 : ((uint64_t)1 << tail) - 1;
    uint64_t nans = 0;
#pragma GCC unroll 12
    for (int p = 0; p < PX; ++p) {
        if (q0 + p >= npx)
            break;
        float *d = dst + (int64_t)(q0 + p) * o + ob;
        uint64_t word = 0;
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) {
            if (j > last)
                continue;
            XI_V v = a[p][j];
            if (scale)
                v = XI_VMUL(v, sv[j]);
            if (bias)
                v = XI_VADD(v, bv[j]);
            if (relu)
                v = XI_VMAX0(v);
            if (j < last)
                XI_VSTORE(d + j * XI_VL, v);
            else
                XI_VSTORE_M(d + j * XI_VL, m, v);
            if (PACK) {
                /* the signs from the values still in registers, by the x86 packers' test
                 * (bitpack_simd.c) on the same floats: v + pack_bias < 0 (<= 0 with le), ordered */
                if (pack_bias)
                    v = XI_VADD(v, pv[j]);
                uint64_t sb = XI_VSIGN_BITS(v, le), nb = XI_VNAN_BITS(v);
                if (j == last)
                    sb &= tail_bits, nb &= tail_bits;
                word |= sb << (j * XI_VL);
                nans |= nb;
            }
        }
        if (PACK) {
            uint64_t *wp = packed + (int64_t)(q0 + p) * words + ob / 64;
            if (ob % 64 == 0)
                *wp = word;
            else
                *wp |= word << (ob % 64);
        }
    }
    if (nans) /* only when packing */
        *nan_seen = 1;
}

/* The group's tiles over all output channels; RUN and PS as conv_tile's. */
XI_TARGET static inline __attribute__((always_inline)) void
XI_FN(conv_tiles)(const int RUN, const int PS, const int PACK, const float *const *rows, const float *base, int64_t rs, int kh,
                  int64_t run, const float *w, int64_t o_pad, int npx, int64_t o, const float *scale,
                  const float *bias, int relu, float *dst, uint64_t *packed, int64_t words, const float *pack_bias,
                  int le, int *nan_seen)
{
    for (int64_t ob = 0; ob < o; ob += XI_CONV_WIDE * XI_VL) {
        const int width = o - ob < XI_CONV_WIDE * XI_VL ? (int)(o - ob) : XI_CONV_WIDE * XI_VL;
        const int nv = (width + XI_VL - 1) / XI_VL;
        /* enough sums to cover the FMA latency (2 ports x 4 cycles) without running out of
         * registers: 6 pixels for the widest tile, 12 for the narrower ones */
        if (nv == XI_CONV_WIDE) {
            XI_FN(conv_tile)(6, XI_CONV_WIDE, RUN, PS, PACK, rows, base, rs, kh, run, w, o_pad, 0, npx, ob, width, scale, bias, relu, o, dst, packed, words, pack_bias, le, nan_seen);
            if (npx > 6)
                XI_FN(conv_tile)(6, XI_CONV_WIDE, RUN, PS, PACK, rows, base, rs, kh, run, w, o_pad, 6, npx, ob, width, scale, bias, relu, o,
                                 dst, packed, words, pack_bias, le, nan_seen);
        }
#if XI_CONV_WIDE == 4
        else if (nv == 3) {
            XI_FN(conv_tile)(6, 3, RUN, PS, PACK, rows, base, rs, kh, run, w, o_pad, 0, npx, ob, width, scale, bias, relu, o, dst, packed, words, pack_bias, le, nan_seen);
            if (npx > 6)
                XI_FN(conv_tile)(6, 3, RUN, PS, PACK, rows, base, rs, kh, run, w, o_pad, 6, npx, ob, width, scale, bias, relu, o, dst, packed, words, pack_bias, le, nan_seen);
        } else if (nv == 2)
            XI_FN(conv_tile)(12, 2, RUN, PS, PACK, rows, base, rs, kh, run, w, o_pad, 0, npx, ob, width, scale, bias, relu, o, dst, packed, words, pack_bias, le, nan_seen);
#endif
        else
            XI_FN(conv_tile)(12, 1, RUN, PS, PACK, rows, base, rs, kh, run, w, o_pad, 0, npx, ob, width, scale, bias, relu, o, dst, packed, words, pack_bias, le, nan_seen);
    }
}

/* Output pixels [p0, p0 + npx) (npx <= XI_CONV_PX; flattened over images and rows) into dst, o
 * floats per pixel; the group's lanes past npx repeat pixel p_last (their sums are not stored).
 * `patch` holds XI_CONV_PX * depth floats and then XI_CONV_PX * kh row pointers (xi_conv2d's
 * scratch): a kernel row that crosses the input's border is copied there with zeros for the
 * padding, every other row is read in place. */
XI_TARGET static inline __attribute__((always_inline)) void
XI_FN(conv_group_body)(const int PACK, const xi_conv_geom *g, const float *x, const float *w, const float *scale,
                       const float *bias, float *patch, int64_t p0, int npx, int64_t p_last, float *dst,
                       uint64_t *packed, const float *pack_bias, int le, int *nan_seen)
{
    const int64_t words = (g->o + 63) / 64;
    const int64_t depth = (int64_t)g->kh * g->kw * g->c, run = (int64_t)g->kw * g->c;
    const int64_t o_pad = (g->o + XI_CONV_OALIGN - 1) / XI_CONV_OALIGN * XI_CONV_OALIGN;
    const float **rows = (const float **)(patch + XI_CONV_PX * depth);
    /* the first pixel's image, row and column: two divisions, 32-bit ones where the pixel index
     * fits (a fraction of the 64-bit ones' latency), instead of three 64-bit ones */
    int64_t b, oy, ox;
    if ((uint64_t)p0 <= UINT32_MAX && (uint64_t)g->wo <= UINT32_MAX && (uint64_t)g->ho <= UINT32_MAX) {
        const uint32_t r = (uint32_t)p0 / (uint32_t)g->wo, bb = r / (uint32_t)g->ho;
        b = bb, oy = r - bb * (uint32_t)g->ho, ox = (uint32_t)p0 - r * (uint32_t)g->wo;
    } else {
        const int64_t r = p0 / g->wo;
        b = r / g->ho, oy = r - b * g->ho, ox = p0 - r * g->wo;
    }
    {
        /* The common case: the group's XI_CONV_PX pixels lie in one output row and their windows
         * inside the input, so pixel q's kernel row ky starts at base + ky * rs + q * sw * c. For
         * the image stems (c = 3: taps per kernel row and pixel step known), the tiles then read
         * every input at a constant offset from one pointer: no row pointers, no loop over taps.
         * Lanes past npx are real pixels of the row whose sums are not stored. */
        const int64_t iy0 = oy * g->sh - g->pad_t, ix0 = ox * g->sw - g->pad_l, ps = (int64_t)g->sw * g->c;
        if (ox + XI_CONV_PX <= g->wo && iy0 >= 0 && iy0 + g->kh <= g->h && ix0 >= 0 &&
            ix0 + (int64_t)(XI_CONV_PX - 1) * g->sw + g->kw <= g->w) {
            const float *base = x + ((b * g->h + iy0) * g->w + ix0) * g->c;
            const int64_t rs = g->w * g->c;
            if (run == 9 && ps == 6 && XI_CONV_FIXED_MAX_RUN >= 9) { /* 3x3, stride 2 */
                XI_FN(conv_tiles)(9, 6, PACK, NULL, base, rs, g->kh, run, w, o_pad, npx, g->o, scale, bias, g->relu, dst, packed, words, pack_bias, le, nan_seen);
                return;
            }
            if (run == 21 && ps == 6 && XI_CONV_FIXED_MAX_RUN >= 21) { /* 7x7, stride 2 */
                XI_FN(conv_tiles)(21, 6, PACK, NULL, base, rs, g->kh, run, w, o_pad, npx, g->o, scale, bias, g->relu, dst, packed, words, pack_bias, le, nan_seen);
                return;
            }
            if (run == 33 && ps == 12 && XI_CONV_FIXED_MAX_RUN >= 33) { /* 11x11, stride 4 */
                XI_FN(conv_tiles)(33, 12, PACK, NULL, base, rs, g->kh, run, w, o_pad, npx, g->o, scale, bias, g->relu, dst, packed, words, pack_bias, le, nan_seen);
                return;
            }
        }
    }
    for (int q = 0; q < XI_CONV_PX; ++q) {
        if (q == npx)
            b = p_last / (g->ho * g->wo), oy = p_last / g->wo % g->ho, ox = p_last % g->wo;
        const int64_t iy0 = oy * g->sh - g->pad_t, ix0 = ox * g->sw - g->pad_l;
        /* the taps of a kernel row that lie inside the input: columns [lo, hi) of the window */
        const int lo = ix0 < 0 ? (int)-ix0 : 0;
        const int hi = ix0 + g->kw > g->w ? (int)(g->w - ix0) : g->kw;
        const float *img = x + b * g->h * g->w * g->c;
        if (iy0 >= 0 && iy0 + g->kh <= g->h && lo == 0 && hi == g->kw) { /* most pixels */
            const float *row = img + (iy0 * g->w + ix0) * g->c;
            for (int ky = 0; ky < g->kh; ++ky, row += g->w * g->c)
                rows[ky * XI_CONV_PX + q] = row;
            goto next;
        }
        for (int ky = 0; ky < g->kh; ++ky) {
            const int64_t iy = iy0 + ky;
            if (iy >= 0 && iy < g->h && lo == 0 && hi == g->kw) {
                rows[ky * XI_CONV_PX + q] = img + (iy * g->w + ix0) * g->c;
                continue;
            }
            float *d = patch + (q * g->kh + ky) * run;
            rows[ky * XI_CONV_PX + q] = d;
            if (iy < 0 || iy >= g->h || hi <= lo) { /* padded taps add 0 */
                memset(d, 0, sizeof(float) * (size_t)run);
                continue;
            }
            if (lo > 0)
                memset(d, 0, sizeof(float) * (size_t)lo * g->c);
            memcpy(d + (int64_t)lo * g->c, img + (iy * g->w + ix0 + lo) * g->c, sizeof(float) * (size_t)(hi - lo) * g->c);
            if (hi < g->kw)
                memset(d + (int64_t)hi * g->c, 0, sizeof(float) * (size_t)(g->kw - hi) * g->c);
        }
    next:
        if (q < npx && ++ox == g->wo) {
            ox = 0;
            if (++oy == g->ho)
                oy = 0, ++b;
        }
    }
    XI_FN(conv_tiles)(0, 0, PACK, rows, NULL, 0, g->kh, run, w, o_pad, npx, g->o, scale, bias, g->relu, dst, packed, words, pack_bias, le, nan_seen);
}

/* The group with its float output only (the conv alone, and fused with max pooling) ... */
XI_TARGET static inline void XI_FN(conv_group)(const xi_conv_geom *g, const float *x, const float *w, const float *scale,
                                        const float *bias, float *patch, int64_t p0, int npx, int64_t p_last,
                                        float *dst)
{
    XI_FN(conv_group_body)(0, g, x, w, scale, bias, patch, p0, npx, p_last, dst, NULL, NULL, 0, NULL);
}

#if XI_CONV_PACK_IN_REGISTERS
/* ... and with the signs of its output packed too, pixel p's words at packed + (p - p0) * words:
 * v + pack_bias < 0 (<= 0 with le), as the packers test; *nan_seen = 1 if one such value is NaN.
 * A separate instance: the packing's registers and tests cost the plain conv up to 15% on AVX2. */
XI_TARGET static inline void XI_FN(conv_group_pack)(const xi_conv_geom *g, const float *x, const float *w,
                                             const float *scale, const float *bias, float *patch, int64_t p0,
                                             int npx, int64_t p_last, float *dst, uint64_t *packed,
                                             const float *pack_bias, int le, int *nan_seen)
{
    XI_FN(conv_group_body)(1, g, x, w, scale, bias, patch, p0, npx, p_last, dst, packed, pack_bias, le, nan_seen);
}
#endif
