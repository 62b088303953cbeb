/* Stand-alone check of the C kernels against a naive float reference, for builds the Python
 * tests cannot reach: other architectures (run under qemu) and sanitizers. Random shapes as in
 * tests/test_bconv.py; every supported ISA; 1 and 2 threads; exact integer equality.
 *
 *   tests/c/run.sh                 # x86-64 with AddressSanitizer + UBSan, then aarch64 under qemu */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bconv.h"
#include "bgemm.h"
#include "bitpack.h"
#include "bwn.h"
#include "float_ops.h"
#include "isa.h"
#include "kernels.h"
#include "threads.h"

static uint64_t state = 88172645463325252ull;
static uint64_t next(void) { state ^= state << 13, state ^= state >> 7, state ^= state << 17; return state; }
static int pick(int lo, int hi) { return lo + (int)(next() % (uint64_t)(hi - lo + 1)); }
static float randf(void) { return (float)((int64_t)(next() % 2001) - 1000) / 997.0f; }
/* On a grid (halves in -1.5..1.5) sums and products of a few of these are exact, and value +
 * pack_bias is often exactly 0, where the packers' zero_to decides the bit; otherwise randf(). */
static float gridf(int grid) { return grid ? (float)pick(-3, 3) * 0.5f : randf(); }

/* Whether x + bias packs as -1 (a set bit), from the exact sum (a double holds it). */
static int packs_minus(float x, float bias, int zero_to)
{
    const double v = (double)x + (double)bias;
    return zero_to == XI_ZERO_TO_MINUS_ONE ? v <= 0 : v < 0;
}

/* The standalone packers with zero_to on inputs full of exact zero sums (x = -bias, +-0.0) and
 * denormals: every ISA and 1 and 2 threads against packs_minus. */
static int check_pack(int case_id)
{
    static const int channels[] = {1, 3, 31, 63, 64, 65, 200};
    static const float special[] = {0.0f, -0.0f, 1e-45f, -1e-45f, 1e-40f, -1e-40f, 1.0f, -0.5f};
    const int groups = pick(1, 3), cg = channels[pick(0, 6)], c = cg * groups, zero_to = pick(0, 1);
    const int64_t npix = pick(1, 40), gw = xi_words_for(cg), words = groups * gw;
    float *x = malloc(sizeof(float) * npix * c), *bias = malloc(sizeof(float) * c);
    uint64_t *want = calloc((size_t)(npix * words), 8), *got = malloc(8 * npix * words);
    for (int i = 0; i < c; ++i)
        bias[i] = pick(0, 1) ? special[pick(0, 7)] : randf();
    for (int64_t p = 0; p < npix; ++p)
        for (int i = 0; i < c; ++i) {
            const int kind = pick(0, 2);
            float v = kind == 0 ? -bias[i] : kind == 1 ? special[pick(0, 7)] : randf();
            x[p * c + i] = v;
            if (packs_minus(v, bias[i], zero_to))
                want[p * words + i / cg * gw + i % cg / 64] |= 1ull << (i % cg % 64);
        }
    int failures = 0;
    for (int isa = 0; isa < XI_ISA_COUNT; ++isa) {
        if (xi_isa_set((xi_isa)isa) != 0)
            continue;
        for (int threads = 1; threads <= 2; ++threads) {
            memset(got, 0xA5, (size_t)(8 * npix * words));
            if (xi_pack_signs(x, bias, npix, c, groups, zero_to, got, threads) != 0 ||
                memcmp(got, want, (size_t)(8 * npix * words))) {
                fprintf(stderr, "pack case %d (%s, %d threads): c%d g%d zero_to %d differs\n", case_id,
                        xi_isa_name((xi_isa)isa), threads, c, groups, zero_to);
                ++failures;
            }
        }
    }
    free(x), free(bias), free(want), free(got);
    return failures;
}

/* The full epilogue on the dots `dot`: scale, bias, residual, RPReLU and the packed signs of
 * value + pack_bias (groups == 1) with either zero_to, on every ISA against the same operations in
 * the same order; on the grid or not. */
static int check_epilogue(int case_id, const xi_bconv_geom *g, const uint64_t *xp, const uint64_t *blocked,
                          const int32_t *tap_pc, const float *dot)
{
    if (g->groups != 1)
        return 0;
    const int o = g->o;
    const int64_t rows = g->n * g->ho * g->wo, words = xi_words_for(o);
    float *params = malloc(sizeof(float) * 6 * o), *res = malloc(sizeof(float) * rows * o);
    float *want = malloc(sizeof(float) * rows * o), *got = malloc(sizeof(float) * rows * o);
    uint64_t *want_bits = calloc(rows * words, 8), *got_bits = malloc(8 * rows * words);
    const int grid = pick(0, 1), zero_to = pick(0, 1);
    for (int i = 0; i < 6 * o; ++i)
        params[i] = gridf(grid);
    for (int64_t i = 0; i < rows * o; ++i)
        res[i] = gridf(grid);
    const float *scale = params, *bias = params + o, *gamma = params + 2 * o, *slope = params + 3 * o,
                *zeta = params + 4 * o, *pack_bias = params + 5 * o;
    for (int64_t r = 0; r < rows; ++r)
        for (int j = 0; j < o; ++j) {
            float v = dot[r * o + j] * scale[j] + bias[j];
            v += res[r * o + j];
            v -= gamma[j];
            const float negative = v * slope[j];
            v = (v >= 0.0f ? v : negative) + zeta[j];
            want[r * o + j] = v;
            if (packs_minus(v, pack_bias[j], zero_to))
                want_bits[r * words + j / 64] |= 1ull << (j % 64);
        }
    xi_epilogue ep = {scale, bias, res, gamma, slope, zeta, got_bits, words, 0, pack_bias, zero_to};
    int failures = 0;
    for (int isa = 0; isa < XI_ISA_COUNT; ++isa) {
        if (xi_isa_set((xi_isa)isa) != 0)
            continue;
        for (int threads = 1; threads <= 2; ++threads) {
            if (xi_bconv2d(g, xp, blocked, tap_pc, &ep, got, threads) != 0)
                return fprintf(stderr, "case %d: epilogue run failed\n", case_id), 1;
            for (int64_t i = 0; i < rows * o; ++i)
                if (got[i] != want[i] || (i % o == 0 && memcmp(got_bits + i / o * words, want_bits + i / o * words, 8 * words))) {
                    fprintf(stderr, "case %d (%s, %d threads): epilogue (grid %d, zero_to %d) differs at row %lld\n",
                            case_id, xi_isa_name((xi_isa)isa), threads, grid, zero_to, (long long)(i / o));
                    ++failures;
                    break;
                }
        }
    }
    free(params), free(res), free(want), free(got), free(want_bits), free(got_bits);
    return failures;
}

/* The GEMM kernels alone on runs longer than a convolution here reaches: a tap of more than 31
 * words (1985+ channels) makes the NEON kernel widen its byte counters inside a tap and the AVX2
 * kernel split K into chunks inside a tap; 1-9 rows cover every tile height, and 40-110 rows the
 * AVX2 kernel's batches of 48; every ISA against the portable scalar kernel. */
static int check_bgemm(int case_id)
{
    static const int words[] = {1, 2, 30, 31, 32, 33, 62, 70};
    const int m = pick(0, 3) ? pick(1, 9) : pick(40, 110), npanels = pick(1, 2), taps = pick(1, 4), tap_words = words[pick(0, 7)];
    const int64_t k = (int64_t)taps * tap_words, ldc = npanels * XI_PANEL + pick(0, 3);
    uint64_t *rows = malloc(8 * m * k), *b = malloc(8 * npanels * k * XI_PANEL);
    const uint64_t **a = malloc(sizeof(*a) * m * taps);
    int32_t *want = calloc((size_t)(m * ldc), 4), *got = calloc((size_t)(m * ldc), 4);
    for (int64_t i = 0; i < m * k; ++i)
        rows[i] = next();
    for (int64_t i = 0; i < npanels * k * XI_PANEL; ++i)
        b[i] = next();
    for (int i = 0; i < m * taps; ++i) /* taps of a row out of order, as a convolution's are */
        a[i] = rows + (int64_t)(i / taps) * k + (int64_t)(taps - 1 - i % taps) * tap_words;
    xi_bgemm_2x8_scalar(m, npanels, taps, tap_words, a, b, want, (int)ldc);
    int failures = 0;
    for (int isa = 0; isa < XI_ISA_COUNT; ++isa) {
        if (!xi_isa_supported((xi_isa)isa))
            continue;
        memset(got, 0, (size_t)(4 * m * ldc));
        xi_kernels_for((xi_isa)isa)->bgemm(m, npanels, taps, tap_words, a, b, got, (int)ldc);
        if (memcmp(got, want, (size_t)(4 * m * ldc))) {
            fprintf(stderr, "bgemm case %d (%s): m%d blocks %d taps %d words %d differs\n", case_id,
                    xi_isa_name((xi_isa)isa), m, npanels, taps, tap_words);
            ++failures;
        }
    }
    free(rows), free(b), free(a), free(want), free(got);
    return failures;
}

static float *random_floats(int64_t n, int grid);

/* The float convolution and dense layer: every ISA within rounding of a double reference (the
 * SIMD builds use FMA where scalar rounds twice, and sum in other orders; the bound is recursive
 * summation's, (terms + 1) * 2^-24 of the sum of the terms' magnitudes),
 * and each ISA bit-identical on 1 and 2 threads. Zero padding on every side. */
static int check_float(int case_id)
{
    static const int channels[] = {1, 3, 5, 16, 63, 65};
    const int c = channels[pick(0, 5)], o = pick(1, 70), kh = pick(1, 5), kw = pick(1, 5);
    const int sh = pick(1, 3), sw = pick(1, 3), pt = pick(0, 2), pl = pick(0, 2), pb = pick(0, 2), pr = pick(0, 2);
    const int64_t n = pick(1, 2), h = pick(kh > pt + pb ? kh - pt - pb : 1, 9), w = pick(kw > pl + pr ? kw - pl - pr : 1, 9);
    const int64_t ho = (h + pt + pb - kh) / sh + 1, wo = (w + pl + pr - kw) / sw + 1, rows = n * ho * wo;
    const int64_t o_pad = xi_conv2d_padded_outputs(o), in = (int64_t)c * pick(1, 40);
    float *x = random_floats(n * h * w * c, 0), *wt = calloc((size_t)(kh * kw * c * o_pad), 4);
    float *dx = random_floats(n * in, 0), *dw = random_floats(o * in, 0);
    float *got[2] = {malloc(4 * rows * o), malloc(4 * rows * o)}, *dgot[2] = {malloc(4 * n * o), malloc(4 * n * o)};
    for (int64_t t = 0; t < (int64_t)kh * kw * c; ++t)
        for (int j = 0; j < o; ++j)
            wt[t * o_pad + j] = randf();
    const xi_conv_geom g = {n, h, w, c, o, kh, kw, sh, sw, pt, pl, ho, wo, 0};
    int failures = 0;
    for (int isa = 0; isa < XI_ISA_COUNT; ++isa) {
        if (xi_isa_set((xi_isa)isa) != 0)
            continue;
        for (int threads = 1; threads <= 2; ++threads) {
            xi_conv2d(&g, x, wt, NULL, NULL, got[threads - 1], NULL, NULL, 0, threads);
            xi_dense(n, in, o, dx, dw, NULL, dgot[threads - 1], threads);
        }
        int bad = memcmp(got[0], got[1], 4 * rows * o) != 0 || memcmp(dgot[0], dgot[1], 4 * n * o) != 0;
        for (int64_t r = 0; r < rows && !bad; ++r)
            for (int j = 0; j < o && !bad; ++j) {
                const int64_t b = r / (ho * wo), oy = r / wo % ho, ox = r % wo;
                double want = 0, mag = 0;
                for (int ky = 0; ky < kh; ++ky)
                    for (int kx = 0; kx < kw; ++kx) {
                        const int64_t iy = oy * sh - pt + ky, ix = ox * sw - pl + kx;
                        if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                            continue;
                        for (int ci = 0; ci < c; ++ci) {
                            const double term = (double)x[((b * h + iy) * w + ix) * c + ci] *
                                                wt[((int64_t)(ky * kw + kx) * c + ci) * o_pad + j];
                            want += term, mag += term < 0 ? -term : term;
                        }
                    }
                const double err = got[0][r * o + j] - want;
                bad = (err < 0 ? -err : err) > mag * (kh * kw * c + 1) / (1 << 24) + 1e-30;
            }
        for (int64_t r = 0; r < n && !bad; ++r)
            for (int j = 0; j < o && !bad; ++j) {
                double want = 0, mag = 0;
                for (int64_t k = 0; k < in; ++k) {
                    const double term = (double)dx[r * in + k] * dw[j * in + k];
                    want += term, mag += term < 0 ? -term : term;
                }
                const double err = dgot[0][r * o + j] - want;
                bad = (err < 0 ? -err : err) > mag * (double)(in + 1) / (1 << 24) + 1e-30;
            }
        if (bad) {
            fprintf(stderr, "float case %d (%s): n%lld %lldx%lld c%d o%d k%dx%d s%dx%d pad %d,%d,%d,%d in %lld differs\n",
                    case_id, xi_isa_name((xi_isa)isa), (long long)n, (long long)h, (long long)w, c, o, kh, kw, sh, sw,
                    pt, pb, pl, pr, (long long)in);
            ++failures;
        }
    }
    free(x), free(wt), free(dx), free(dw), free(got[0]), free(got[1]), free(dgot[0]), free(dgot[1]);
    return failures;
}

/* Max and average pooling: every ISA and 1 and 2 threads bit-equal to a naive loop (taps in
 * row-major order, max as `s > m ? s : m`, the sum divided once), on values with +-0.0 (whose max
 * keeps the first of equal zeros, unlike FMAX) and ties; channels across the 16/4/1-lane paths
 * and past one 64-channel window, windows clipped by padding. */
static int check_pool(int case_id)
{
    static const int channels[] = {1, 3, 4, 7, 16, 21, 64, 67, 130};
    const int c = channels[pick(0, 8)], k = pick(1, 4), s = pick(1, 3), pad = pick(0, k / 2);
    const int64_t n = pick(1, 2), h = pick(k > 2 * pad ? k - 2 * pad : 1, 12), w = pick(k > 2 * pad ? k - 2 * pad : 1, 12);
    const int64_t ho = (h + 2 * pad - k) / s + 1, wo = (w + 2 * pad - k) / s + 1;
    float *x = malloc(sizeof(float) * n * h * w * c), *want = malloc(sizeof(float) * n * ho * wo * c);
    float *got = malloc(sizeof(float) * n * ho * wo * c), *divisor = malloc(sizeof(float) * ho * wo);
    int32_t *y0 = malloc(4 * ho), *y1 = malloc(4 * ho), *x0 = malloc(4 * wo), *x1 = malloc(4 * wo);
    static const float special[] = {0.0f, -0.0f, 0.5f, -0.5f};
    for (int64_t i = 0; i < n * h * w * c; ++i)
        x[i] = pick(0, 2) ? randf() : special[pick(0, 3)];
    for (int64_t oy = 0; oy < ho; ++oy)
        y0[oy] = (int32_t)(oy * s - pad < 0 ? 0 : oy * s - pad), y1[oy] = (int32_t)(oy * s - pad + k > h ? h : oy * s - pad + k);
    for (int64_t ox = 0; ox < wo; ++ox)
        x0[ox] = (int32_t)(ox * s - pad < 0 ? 0 : ox * s - pad), x1[ox] = (int32_t)(ox * s - pad + k > w ? w : ox * s - pad + k);
    for (int64_t oy = 0; oy < ho; ++oy)
        for (int64_t ox = 0; ox < wo; ++ox)
            divisor[oy * wo + ox] = pick(0, 1) ? (float)(k * k) : (float)((y1[oy] - y0[oy]) * (x1[ox] - x0[ox]));
    int failures = 0;
    for (int is_max = 0; is_max <= 1; ++is_max) {
        for (int64_t b = 0; b < n; ++b)
            for (int64_t oy = 0; oy < ho; ++oy)
                for (int64_t ox = 0; ox < wo; ++ox)
                    for (int j = 0; j < c; ++j) {
                        float a = x[((b * h + y0[oy]) * w + x0[ox]) * c + j];
                        for (int64_t iy = y0[oy]; iy < y1[oy]; ++iy)
                            for (int64_t ix = iy == y0[oy] ? x0[ox] + 1 : x0[ox]; ix < x1[ox]; ++ix) {
                                const float v = x[((b * h + iy) * w + ix) * c + j];
                                a = is_max ? (v > a ? v : a) : a + v;
                            }
                        want[((b * ho + oy) * wo + ox) * c + j] = is_max ? a : a / divisor[oy * wo + ox];
                    }
        for (int isa = 0; isa < XI_ISA_COUNT; ++isa) {
            if (xi_isa_set((xi_isa)isa) != 0)
                continue;
            for (int threads = 1; threads <= 2; ++threads) {
                xi_pool2d(is_max, n, h, w, c, ho, wo, y0, y1, x0, x1, divisor, x, got, threads);
                if (memcmp(got, want, sizeof(float) * n * ho * wo * c)) { /* bits: -0.0 is not +0.0 */
                    fprintf(stderr, "pool case %d (%s, %s, %d threads): n%lld %lldx%lld c%d k%d s%d pad %d differs\n",
                            case_id, is_max ? "max" : "avg", xi_isa_name((xi_isa)isa), threads, (long long)n,
                            (long long)h, (long long)w, c, k, s, pad);
                    ++failures;
                }
            }
        }
    }
    free(x), free(want), free(got), free(divisor), free(y0), free(y1), free(x0), free(x1);
    return failures;
}

static float *random_floats(int64_t n, int grid)
{
    float *v = malloc(sizeof(float) * (n > 0 ? n : 1));
    for (int64_t i = 0; i < n; ++i)
        v[i] = gridf(grid);
    return v;
}

/* A convolution followed by pointwise ones on its output (xi_bconv2d_block) against the same
 * convolutions run one after the other, on every ISA and thread count: identical values and bits;
 * any padding value, either zero_to, values on the grid (zero_to deciding bits) or not. */
static int check_block(int case_id)
{
    static const int channels[] = {1, 3, 32, 63, 64, 65, 200, 300};
    const int c = channels[pick(0, 7)], o = channels[pick(0, 7)], nrest = pick(1, 2);
    const int kh = pick(1, 3), kw = pick(1, 3), sh = pick(1, 2), sw = pick(1, 2), pad = pick(0, 1);
    const int pad_value = pick(-1, 1), zero_to = pick(0, 1), grid = pick(0, 1);
    /* up to 40x40: enough tiles for the tiled path, or few enough for the one-after-the-other one */
    const int n = pick(1, 2), h = pick(kh, 40), w = pick(kw, 40);
    const int64_t ho = (h + 2 * pad - kh) / sh + 1, wo = (w + 2 * pad - kw) / sw + 1, rows = n * ho * wo;
    const int64_t cw = xi_words_for(c), ow = xi_words_for(o);
    xi_bconv_layer layers[3];
    void *owned[64];
    int nowned = 0;
#define OWN(p) (owned[nowned++] = (p))
    float *x = OWN(random_floats(n * h * w * c, 0)), *res = OWN(random_floats(rows * o, grid));
    uint64_t *xp = OWN(malloc(8 * n * h * w * cw));
    xi_pack_signs(x, NULL, (int64_t)n * h * w, c, 1, XI_ZERO_TO_ONE, xp, 1);
    for (int l = 0; l <= nrest; ++l) {
        const int lc = l ? o : c, lk = l ? 1 : kh, lkw = l ? 1 : kw;
        const int64_t lw = xi_words_for(lc);
        float *wt = OWN(random_floats((int64_t)o * lk * lkw * lc, 0));
        uint64_t *wp = OWN(malloc(8 * o * lk * lkw * lw));
        xi_pack_signs(wt, NULL, (int64_t)o * lk * lkw, lc, 1, XI_ZERO_TO_ONE, wp, 1);
        uint64_t *blocked = OWN(malloc(8 * xi_bconv_blocked_words(o, 1, lc, lk, lkw)));
        int32_t *tap_pc = OWN(malloc(4 * lk * lkw * o));
        xi_bconv_prepare_weights(wp, o, 1, lc, lk, lkw, blocked, tap_pc);
        float *p = OWN(random_floats(6 * o, grid));
        xi_bconv_layer L = {{n, l ? ho : h, l ? wo : w, lc, 1, o, lk, lkw, l ? 1 : sh, l ? 1 : sw, l ? 0 : pad,
                             l ? 0 : pad, l ? 0 : pad, l ? 0 : pad, l ? 1 : pad_value, ho, wo, o},
                            xp, blocked, tap_pc,
                            {p, p + o, res, p + 2 * o, p + 3 * o, p + 4 * o, NULL, ow, 0, p + 5 * o, zero_to},
                            NULL};
        layers[l] = L;
    }
    /* one after the other: the first writes floats and packed signs, the rest read both */
    float *mid = OWN(malloc(sizeof(float) * rows * o));
    uint64_t *mid_bits = OWN(malloc(8 * rows * ow));
    float *want[2], *got[2];
    for (int r = 0; r < nrest; ++r)
        want[r] = OWN(malloc(sizeof(float) * rows * o)), got[r] = OWN(malloc(sizeof(float) * rows * o));
    xi_isa_set(XI_ISA_SCALAR);
    xi_epilogue ep0 = layers[0].ep;
    ep0.packed = mid_bits;
    int failures = xi_bconv2d(&layers[0].g, xp, layers[0].blocked, layers[0].tap_popcount, &ep0, mid, 1) != 0;
    layers[0].out = mid, layers[0].ep.packed = mid_bits;
    for (int r = 1; r <= nrest; ++r) {
        layers[r].x = mid_bits, layers[r].ep.residual = mid, layers[r].ep.pack_bias = NULL;
        failures += xi_bconv2d(&layers[r].g, mid_bits, layers[r].blocked, layers[r].tap_popcount, &layers[r].ep,
                               want[r - 1], 1) != 0;
        layers[r].out = got[r - 1];
    }
    for (int isa = 0; isa < XI_ISA_COUNT && !failures; ++isa) {
        if (xi_isa_set((xi_isa)isa) != 0)
            continue;
        for (int threads = 1; threads <= 2; ++threads) {
            if (xi_bconv2d_block(&layers[0], &layers[1], nrest, threads) != 0)
                return fprintf(stderr, "block case %d: run failed\n", case_id), 1;
            for (int r = 0; r < nrest; ++r)
                if (memcmp(got[r], want[r], sizeof(float) * rows * o)) {
                    fprintf(stderr, "block case %d (%s, %d threads): n%d %dx%d c%d o%d k%dx%d s%dx%d pad %d (%d) "
                            "zero_to %d grid %d: pointwise %d differs\n", case_id, xi_isa_name((xi_isa)isa), threads,
                            n, h, w, c, o, kh, kw, sh, sw, pad, pad_value, zero_to, grid, r);
                    ++failures;
                    break;
                }
        }
    }
    while (nowned)
        free(owned[--nowned]);
#undef OWN
    return failures;
}

static int check_case(int case_id)
{
    static const int channels[] = {1, 3, 31, 32, 63, 64, 65, 127, 200};
    const int groups = pick(1, 3), cg = channels[pick(0, 8)], og = pick(1, 40);
    const int kh = pick(1, 5), kw = pick(1, 5), sh = pick(1, 3), sw = pick(1, 3);
    const int pt = pick(0, 2), pb = pick(0, 2), pl = pick(0, 2), pr = pick(0, 2), pad_value = pick(-1, 1);
    const int h = pick(kh - pt - pb > 1 ? kh - pt - pb : 1, 9), w = pick(kw - pl - pr > 1 ? kw - pl - pr : 1, 9);
    const int n = pick(1, 3), c = cg * groups, o = og * groups;
    const int64_t ho = (h + pt + pb - kh) / sh + 1, wo = (w + pl + pr - kw) / sw + 1;
    const int64_t gw = xi_words_for(cg);

    float *x = malloc(sizeof(float) * n * h * w * c), *wt = malloc(sizeof(float) * o * kh * kw * cg);
    for (int64_t i = 0; i < (int64_t)n * h * w * c; ++i) x[i] = randf();
    for (int64_t i = 0; i < (int64_t)o * kh * kw * cg; ++i) wt[i] = randf(); /* (o, kh, kw, cg) */
    uint64_t *xp = malloc(8 * n * h * w * groups * gw), *wp = malloc(8 * o * kh * kw * gw);
    xi_pack_signs(x, NULL, (int64_t)n * h * w, c, groups, XI_ZERO_TO_ONE, xp, 1);
    xi_pack_signs(wt, NULL, (int64_t)o * kh * kw, cg, 1, XI_ZERO_TO_ONE, wp, 1);
    uint64_t *blocked = malloc(8 * xi_bconv_blocked_words(o, groups, cg, kh, kw));
    int32_t *tap_pc = malloc(4 * kh * kw * o);
    xi_bconv_prepare_weights(wp, o, groups, cg, kh, kw, blocked, tap_pc);

    /* Naive reference on +-1 floats: padded taps are pad_value (+1, 0 or -1). */
    float *want = malloc(sizeof(float) * n * ho * wo * o), *got = malloc(sizeof(float) * n * ho * wo * o);
    for (int b = 0; b < n; ++b)
        for (int64_t y = 0; y < ho; ++y)
            for (int64_t xx = 0; xx < wo; ++xx)
                for (int oc = 0; oc < o; ++oc) {
                    const int grp = oc / og;
                    int dot = 0;
                    for (int ky = 0; ky < kh; ++ky)
                        for (int kx = 0; kx < kw; ++kx) {
                            const int64_t iy = y * sh - pt + ky, ix = xx * sw - pl + kx;
                            const int inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
                            for (int ci = 0; ci < cg; ++ci) {
                                const int a = inside ? (x[((b * h + iy) * w + ix) * c + grp * cg + ci] < 0 ? -1 : 1)
                                                     : pad_value;
                                const int s = wt[((oc * kh + ky) * kw + kx) * cg + ci] < 0 ? -1 : 1;
                                dot += a * s;
                            }
                        }
                    want[((b * ho + y) * wo + xx) * o + oc] = (float)dot;
                }

    xi_bconv_geom g = {n, h, w, c, groups, o, kh, kw, sh, sw, pt, pb, pl, pr, pad_value, ho, wo, o};
    xi_epilogue ep = {0};
    int failures = 0;
    for (int isa = 0; isa < XI_ISA_COUNT; ++isa) {
        if (xi_isa_set((xi_isa)isa) != 0)
            continue;
        for (int threads = 1; threads <= 2; ++threads) {
            if (xi_bconv2d(&g, xp, blocked, tap_pc, &ep, got, threads) != 0)
                return fprintf(stderr, "case %d: allocation failed\n", case_id), 1;
            for (int64_t i = 0; i < (int64_t)n * ho * wo * o; ++i)
                if (got[i] != want[i]) {
                    fprintf(stderr, "case %d (%s, %d threads): n%d %dx%d c%d g%d o%d k%dx%d s%dx%d pad %d,%d,%d,%d/%d: "
                            "out[%lld] = %g, want %g\n", case_id, xi_isa_name((xi_isa)isa), threads, n, h, w, c,
                            groups, o, kh, kw, sh, sw, pt, pb, pl, pr, pad_value, (long long)i, got[i], want[i]);
                    ++failures;
                    break;
                }
        }
    }
    failures += check_epilogue(case_id, &g, xp, blocked, tap_pc, want);
    free(x), free(wt), free(xp), free(wp), free(blocked), free(tap_pc), free(want), free(got);
    return failures;
}

/* The most roundings a term of a BWN output goes through in bwn.h's summation order, the epilogue's
 * two included: 3 in its table entry, then a convolution's chain in its block of XI_BWN_KB groups
 * and over the blocks, a dense layer's chain in its running sum of every 4th group and the 2 that
 * join the 4 sums. (The first entry of a sum is added to +0.0 exactly.) */
static int bwn_conv_depth(int64_t k)
{
    const int64_t groups = (k + 3) / 4, in_block = groups < XI_BWN_KB ? groups : XI_BWN_KB;
    return (int)(3 + (in_block - 1) + ((groups + XI_BWN_KB - 1) / XI_BWN_KB - 1) + 2);
}

static int bwn_dense_depth(int64_t in) { return (int)(3 + ((in + 15) / 16 - 1) + 2 + 2); }

/* Higham's gamma_d = d u / (1 - d u): a sum whose terms go through at most d roundings is within
 * gamma_d * (sum of the terms' magnitudes) of the exact one. */
static double gamma_d(int d) { return d * 0x1p-24 / (1 - d * 0x1p-24); }

/* The BWN convolution and dense layer (1-bit weights, float activations): every ISA and 1 and 2
 * threads bit-identical to the first (one summation order everywhere, bwn.h), and within the
 * order's proven bound gamma_d * (sum |alpha * x| + |bias|) of a double reference, d the depth above
 * (2^-22 = gamma_4 is not provable for any float32 order with a bias, see docs/architecture.md).
 * Groups, strides, padding. */
static int check_bwn(int case_id)
{
    static const int channels[] = {1, 3, 5, 16, 63, 65, 200};
    const int groups = pick(1, 3), cg = channels[pick(0, 6)], c = cg * groups, og = pick(1, 70), o = og * groups;
    const int kh = pick(1, 11), kw = pick(1, 5), sh = pick(1, 3), sw = pick(1, 3), pt = pick(0, 2), pl = pick(0, 2);
    const int64_t n = pick(1, 2), h = pick(kh > pt ? kh - pt : 1, kh + 4), w = pick(kw > pl ? kw - pl : 1, kw + 4);
    const int64_t ho = (h + pt - kh) / sh + 1, wo = (w + pl - kw) / sw + 1, rows = n * ho * wo;
    const int gw = (cg + 63) / 64;
    const int64_t in = pick(1, 300), dwords = (in + 63) / 64;
    const int relu = case_id % 2, affine = case_id % 3 == 0;
    float *insc = random_floats(c, 0), *insh = random_floats(c, 0);
    float *x = random_floats(n * h * w * c, 0), *alpha = random_floats(o, 0), *bias = random_floats(o, 0);
    float *dx = random_floats(n * in, 0);
    uint64_t *wp = calloc((size_t)(o * kh * kw * gw), 8), *dw = calloc((size_t)(o * dwords), 8);
    uint32_t *clanes = malloc(4 * (size_t)xi_bwn_conv_lane_words(c, groups, o, kh, kw));
    uint32_t *lanes = malloc(4 * (size_t)xi_bwn_dense_lane_words(in, o));
    for (int j = 0; j < o; ++j) {
        alpha[j] = alpha[j] < 0 ? -alpha[j] : alpha[j];
        for (int t = 0; t < kh * kw; ++t)
            for (int ci = 0; ci < cg; ++ci)
                if (next() & 1)
                    wp[((int64_t)j * kh * kw + t) * gw + ci / 64] |= 1ull << (ci % 64);
        for (int64_t k = 0; k < in; ++k)
            if (next() & 1)
                dw[j * dwords + k / 64] |= 1ull << (k % 64);
    }
    xi_bwn_conv_lanes(wp, c, groups, o, kh, kw, clanes);
    xi_bwn_dense_lanes(dw, in, o, lanes);
    const xi_bwn_geom g = {n, h, w, c, groups, o, kh, kw, sh, sw, pt, pl, ho, wo};
    float *got = malloc(4 * rows * o), *first = malloc(4 * rows * o), *dgot = malloc(4 * n * o), *dfirst = malloc(4 * n * o);
    int failures = 0, have_first = 0;
    for (int isa = 0; isa < XI_ISA_COUNT; ++isa) {
        if (xi_isa_set((xi_isa)isa) != 0)
            continue;
        for (int threads = 1; threads <= 2; ++threads) {
            int bad = xi_bwn_conv2d(&g, x, affine ? insc : NULL, affine ? insh : NULL, clanes, alpha, bias, relu, got, threads) != 0;
            bad |= xi_bwn_dense(n, in, o, dx, lanes, alpha, bias, dgot, threads) != 0;
            if (!have_first) {
                memcpy(first, got, 4 * rows * o), memcpy(dfirst, dgot, 4 * n * o), have_first = 1;
                for (int64_t r = 0; r < rows && !bad; ++r)
                    for (int j = 0; j < o && !bad; ++j) {
                        const int64_t b = r / (ho * wo), oy = r / wo % ho, ox = r % wo;
                        const int gi = j / og;
                        double want = 0, mag = 0;
                        for (int ky = 0; ky < kh; ++ky)
                            for (int kx = 0; kx < kw; ++kx) {
                                const int64_t iy = oy * sh - pt + ky, ix = ox * sw - pl + kx;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                                    continue;
                                for (int ci = 0; ci < cg; ++ci) {
                                    const int64_t at = ((b * h + iy) * w + ix) * c + gi * cg + ci;
                                    /* the input affine as the kernel rounds it (a multiply, an add) */
                                    const double v = affine ? (double)(float)((float)(x[at] * insc[gi * cg + ci]) + insh[gi * cg + ci])
                                                            : x[at];
                                    const int neg = (wp[((int64_t)j * kh * kw + ky * kw + kx) * gw + ci / 64] >> (ci % 64)) & 1;
                                    want += neg ? -v : v, mag += v < 0 ? -v : v;
                                }
                            }
                        want = want * alpha[j] + bias[j];
                        want = relu && want < 0 ? 0 : want;
                        mag = mag * alpha[j] + (bias[j] < 0 ? -bias[j] : bias[j]);
                        const double err = got[r * o + j] - want;
                        bad = (err < 0 ? -err : err) > gamma_d(bwn_conv_depth(kh * kw * cg)) * mag + 1e-30;
                    }
                for (int64_t r = 0; r < n && !bad; ++r)
                    for (int j = 0; j < o && !bad; ++j) {
                        double want = 0, mag = 0;
                        for (int64_t k = 0; k < in; ++k) {
                            const double v = dx[r * in + k];
                            want += (dw[j * dwords + k / 64] >> (k % 64)) & 1 ? -v : v, mag += v < 0 ? -v : v;
                        }
                        const double err = dgot[r * o + j] - (want * alpha[j] + bias[j]);
                        bad = (err < 0 ? -err : err) > gamma_d(bwn_dense_depth(in)) * (mag * alpha[j] + (bias[j] < 0 ? -bias[j] : bias[j])) + 1e-30;
                    }
            } else {
                bad |= memcmp(got, first, 4 * rows * o) != 0 || memcmp(dgot, dfirst, 4 * n * o) != 0;
            }
            if (bad) {
                fprintf(stderr, "bwn case %d (%s, %d threads): n%lld %lldx%lld c%d g%d o%d k%dx%d s%dx%d pad %d,%d in %lld differs\n",
                        case_id, xi_isa_name((xi_isa)isa), threads, (long long)n, (long long)h, (long long)w, c, groups, o,
                        kh, kw, sh, sw, pt, pl, (long long)in);
                ++failures;
            }
        }
    }
    free(x), free(alpha), free(bias), free(dx), free(wp), free(dw), free(clanes), free(lanes), free(insc), free(insh), free(got), free(first), free(dgot), free(dfirst);
    return failures;
}

int main(int argc, char **argv)
{
    const int cases = argc > 1 ? atoi(argv[1]) : 300;
    int failures = 0;
    for (int i = 0; i < cases; ++i)
        failures += check_case(i) + check_block(i) + check_pack(i) + check_bgemm(i) + check_float(i)
                    + check_pool(i) + check_bwn(i);
    printf("%d cases, isas:", cases);
    for (int isa = 0; isa < XI_ISA_COUNT; ++isa)
        if (xi_isa_supported((xi_isa)isa))
            printf(" %s", xi_isa_name((xi_isa)isa));
    printf(", openmp %d: %s\n", xi_openmp_enabled(), failures ? "FAILED" : "all equal");
    return failures != 0;
}
