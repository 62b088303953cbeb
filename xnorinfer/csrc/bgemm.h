/* XNOR-popcount GEMM micro-kernels, one per instruction set.
 *
 * An indirect GEMM: row i of A is not stored contiguously but as `taps` pointers, each to
 * `tap_words` packed words (one input pixel of one group, or a zero run for a padded tap), so a
 * convolution needs no im2col copy. B is the weights in the blocked layout
 * [panel][taps * tap_words][8]: word k of 8 consecutive output channels lies in one 64-byte line,
 * which an AVX-512 kernel loads as one register and XORs against a broadcast activation word,
 * accumulating 8 channels per register with no horizontal reduction. (A convolution whose taps
 * share words, bconv.h's paired taps, gathers each row's words into one run and passes them as a
 * single tap.)
 *
 * Every kernel computes, for rows i < m and channels j < 8 * npanels,
 *     c[i * ldc + j] = sum over taps t, words w of popcount(a[i * taps + t][w] ^ b[j's panel][t * tap_words + w][j % 8])
 */
#ifndef XNORINFER_BGEMM_H
#define XNORINFER_BGEMM_H

#include <stdint.h>

#include "arch.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XI_PANEL 8 /* output channels per weight panel (a "block" is a fused ReActNet block, bconv.h) */

typedef void xi_bgemm_kernel(int m, int npanels, int taps, int tap_words, const uint64_t *const *a,
                             const uint64_t *b, int32_t *c, int ldc);

/* The micro-kernels, named by tile (rows x channels) and ISA. */
xi_bgemm_kernel xi_bgemm_2x8_scalar;
xi_bgemm_kernel xi_bgemm_2x8_scalar_popcnt; /* x86-64 with the popcnt instruction */
#ifdef XI_X86
xi_bgemm_kernel xi_bgemm_3x8_avx2;
xi_bgemm_kernel xi_bgemm_6x16_avx512bw;
xi_bgemm_kernel xi_bgemm_4x8_avx512bw;
xi_bgemm_kernel xi_bgemm_6x32_avx512;
#endif
#ifdef XI_NEON
#if defined(__aarch64__)
#define XI_BGEMM_NEON_MR 4 /* 32 Q registers */
xi_bgemm_kernel xi_bgemm_4x8_neon;
#define XI_BGEMM_NEON xi_bgemm_4x8_neon
#else
#define XI_BGEMM_NEON_MR 2 /* 16 Q registers */
xi_bgemm_kernel xi_bgemm_2x8_neon;
#define XI_BGEMM_NEON xi_bgemm_2x8_neon
#endif
#endif

/* The body of a kernel built from an always-inlined TILE(mr, taps, tap_words, a, b, c, ldc) of up
 * to MR (<= 4) rows and one 8-channel panel: the tiles of every panel, each called with its row
 * count as a constant so that each count is its own unrolled loop. */
#define XI_BGEMM_BY_TILES(TILE, MR, m, npanels, taps, tap_words, a, b, c, ldc)                      \
    do {                                                                                           \
        const int64_t bs_ = (int64_t)(taps) * (tap_words) * XI_PANEL;                              \
        for (int nb_ = 0; nb_ < (npanels); ++nb_) {                                                \
            for (int i0_ = 0; i0_ < (m); i0_ += (MR)) {                                            \
                const int mr_ = (m) - i0_ < (MR) ? (m) - i0_ : (MR);                               \
                const uint64_t *const *ra_ = (a) + (int64_t)i0_ * (taps);                          \
                const uint64_t *bb_ = (b) + nb_ * bs_;                                             \
                int32_t *cc_ = (c) + (int64_t)i0_ * (ldc) + nb_ * XI_PANEL;                        \
                switch (mr_) { /* counts above MR never occur; clamped so none indexes past it */  \
                case 4: TILE((MR) >= 4 ? 4 : 1, taps, tap_words, ra_, bb_, cc_, ldc); break;       \
                case 3: TILE((MR) >= 3 ? 3 : 1, taps, tap_words, ra_, bb_, cc_, ldc); break;       \
                case 2: TILE((MR) >= 2 ? 2 : 1, taps, tap_words, ra_, bb_, cc_, ldc); break;       \
                default: TILE(1, taps, tap_words, ra_, bb_, cc_, ldc); break;                      \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* The body of a kernel whose always-inlined TILE(mr, nb, taps, tap_words, a, b, panel_stride, c, ldc)
 * covers up to MR (<= 6) rows and NB (<= 4) panels of 8 channels: column panels of NB of them
 * outermost, so that a panel's weights (NB * k words) stay in L1 for every row, and each tile
 * called with its row and panel counts as constants (each pair its own unrolled loops). */
#define XI_BGEMM_ROWS_(TILE, MR, NBC, mr, ...)                                                                         \
    switch (mr) { /* counts above MR never occur; clamped so none indexes past it */                                   \
    case 6: TILE((MR) >= 6 ? 6 : 1, NBC, __VA_ARGS__); break;                                                          \
    case 5: TILE((MR) >= 5 ? 5 : 1, NBC, __VA_ARGS__); break;                                                          \
    case 4: TILE((MR) >= 4 ? 4 : 1, NBC, __VA_ARGS__); break;                                                          \
    case 3: TILE((MR) >= 3 ? 3 : 1, NBC, __VA_ARGS__); break;                                                          \
    case 2: TILE((MR) >= 2 ? 2 : 1, NBC, __VA_ARGS__); break;                                                          \
    default: TILE(1, NBC, __VA_ARGS__); break;                                                                         \
    }
#define XI_BGEMM_BY_PANELS(TILE, MR, NB, m, npanels, taps, tap_words, a, b, c, ldc)                                    \
    do {                                                                                                               \
        const int64_t bs_ = (int64_t)(taps) * (tap_words) * XI_PANEL;                                                  \
        for (int nb0_ = 0; nb0_ < (npanels); nb0_ += (NB)) {                                                           \
            const int nb_ = (npanels) - nb0_ < (NB) ? (npanels) - nb0_ : (NB);                                         \
            const uint64_t *bb_ = (b) + nb0_ * bs_;                                                                    \
            for (int i0_ = 0; i0_ < (m); i0_ += (MR)) {                                                                \
                const int mr_ = (m) - i0_ < (MR) ? (m) - i0_ : (MR);                                                   \
                const uint64_t *const *ra_ = (a) + (int64_t)i0_ * (taps);                                              \
                int32_t *cc_ = (c) + (int64_t)i0_ * (ldc) + nb0_ * XI_PANEL;                                           \
                switch (nb_) {                                                                                         \
                case 4: XI_BGEMM_ROWS_(TILE, MR, (NB) >= 4 ? 4 : 1, mr_, taps, tap_words, ra_, bb_, bs_, cc_, ldc); break; \
                case 3: XI_BGEMM_ROWS_(TILE, MR, (NB) >= 3 ? 3 : 1, mr_, taps, tap_words, ra_, bb_, bs_, cc_, ldc); break; \
                case 2: XI_BGEMM_ROWS_(TILE, MR, (NB) >= 2 ? 2 : 1, mr_, taps, tap_words, ra_, bb_, bs_, cc_, ldc); break; \
                default: XI_BGEMM_ROWS_(TILE, MR, 1, mr_, taps, tap_words, ra_, bb_, bs_, cc_, ldc); break;            \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
