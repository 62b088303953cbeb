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
#include "bitpack.h"
#include "isa.h"
#include "threads.h"

static uint64_t state = 88172645463325252ull;
static uint64_t next(void) { state ^= state << 13, state ^= state >> 7, state ^= state << 17; return state; }
static int pick(int lo, int hi) { return lo + (int)(next() % (uint64_t)(hi - lo + 1)); }
static float randf(void) { return (float)((int64_t)(next() % 2001) - 1000) / 997.0f; }

/* The full epilogue on the dots `dot`: scale, bias, residual, RPReLU and the packed signs of
 * value + pack_bias (groups == 1), on every ISA against the same operations in the same order. */
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
    for (int i = 0; i < 6 * o; ++i)
        params[i] = randf();
    for (int64_t i = 0; i < rows * o; ++i)
        res[i] = randf();
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
            if (v + pack_bias[j] < 0.0f)
                want_bits[r * words + j / 64] |= 1ull << (j % 64);
        }
    xi_epilogue ep = {scale, bias, res, gamma, slope, zeta, got_bits, words, 0, pack_bias};
    int failures = 0;
    for (int isa = 0; isa < XI_ISA_COUNT; ++isa) {
        if (xi_isa_set((xi_isa)isa) != 0)
            continue;
        for (int threads = 1; threads <= 2; ++threads) {
            if (xi_bconv2d(g, xp, blocked, tap_pc, &ep, got, threads) != 0)
                return fprintf(stderr, "case %d: epilogue run failed\n", case_id), 1;
            for (int64_t i = 0; i < rows * o; ++i)
                if (got[i] != want[i] || (i % o == 0 && memcmp(got_bits + i / o * words, want_bits + i / o * words, 8 * words))) {
                    fprintf(stderr, "case %d (%s, %d threads): epilogue differs at row %lld\n", case_id,
                            xi_isa_name((xi_isa)isa), threads, (long long)(i / o));
                    ++failures;
                    break;
                }
        }
    }
    free(params), free(res), free(want), free(got), free(want_bits), free(got_bits);
    return failures;
}

static int check_case(int case_id)
{
    static const int channels[] = {1, 3, 31, 32, 63, 64, 65, 127, 200};
    const int groups = pick(1, 3), cg = channels[pick(0, 8)], og = pick(1, 40);
    const int kh = pick(1, 5), kw = pick(1, 5), sh = pick(1, 3), sw = pick(1, 3);
    const int pt = pick(0, 2), pb = pick(0, 2), pl = pick(0, 2), pr = pick(0, 2), pad_one = pick(0, 1);
    const int h = pick(kh - pt - pb > 1 ? kh - pt - pb : 1, 9), w = pick(kw - pl - pr > 1 ? kw - pl - pr : 1, 9);
    const int n = pick(1, 3), c = cg * groups, o = og * groups;
    const int64_t ho = (h + pt + pb - kh) / sh + 1, wo = (w + pl + pr - kw) / sw + 1;
    const int64_t gw = xi_words_for(cg);

    float *x = malloc(sizeof(float) * n * h * w * c), *wt = malloc(sizeof(float) * o * kh * kw * cg);
    for (int64_t i = 0; i < (int64_t)n * h * w * c; ++i) x[i] = randf();
    for (int64_t i = 0; i < (int64_t)o * kh * kw * cg; ++i) wt[i] = randf(); /* (o, kh, kw, cg) */
    uint64_t *xp = malloc(8 * n * h * w * groups * gw), *wp = malloc(8 * o * kh * kw * gw);
    xi_pack_signs(x, NULL, (int64_t)n * h * w, c, groups, xp, 1);
    xi_pack_signs(wt, NULL, (int64_t)o * kh * kw, cg, 1, wp, 1);
    uint64_t *blocked = malloc(8 * xi_bconv_blocked_words(o, groups, kh, kw, gw));
    int32_t *tap_pc = malloc(4 * kh * kw * o);
    xi_bconv_prepare_weights(wp, o, groups, kh, kw, gw, blocked, tap_pc);

    /* Naive reference on +-1 floats: padded taps are 0 or +1. */
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
                                                     : pad_one;
                                const int s = wt[((oc * kh + ky) * kw + kx) * cg + ci] < 0 ? -1 : 1;
                                dot += a * s;
                            }
                        }
                    want[((b * ho + y) * wo + xx) * o + oc] = (float)dot;
                }

    xi_bconv_geom g = {n, h, w, c, groups, o, kh, kw, sh, sw, pt, pb, pl, pr, pad_one, ho, wo, o};
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
                            groups, o, kh, kw, sh, sw, pt, pb, pl, pr, pad_one, (long long)i, got[i], want[i]);
                    ++failures;
                    break;
                }
        }
    }
    failures += check_epilogue(case_id, &g, xp, blocked, tap_pc, want);
    free(x), free(wt), free(xp), free(wp), free(blocked), free(tap_pc), free(want), free(got);
    return failures;
}

int main(int argc, char **argv)
{
    const int cases = argc > 1 ? atoi(argv[1]) : 300;
    int failures = 0;
    for (int i = 0; i < cases; ++i)
        failures += check_case(i);
    printf("%d cases, isas:", cases);
    for (int isa = 0; isa < XI_ISA_COUNT; ++isa)
        if (xi_isa_supported((xi_isa)isa))
            printf(" %s", xi_isa_name((xi_isa)isa));
    printf(", openmp %d: %s\n", xi_openmp_enabled(), failures ? "FAILED" : "all equal");
    return failures != 0;
}
