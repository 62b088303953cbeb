/* Body of the scalar kernel, instantiated twice by bgemm_2x8_scalar.c: once portable, once with the
 * popcnt instruction enabled (x86-64 only; without it GCC calls a slow library routine). Counts
 * with XI_POPCOUNT64 (popcount.h).
 * Expects XI_SCALAR_NAME and XI_SCALAR_ATTR. */

XI_SCALAR_ATTR void XI_SCALAR_NAME(int m, int npanels, int taps, int tap_words,
                                   const uint64_t *const *a, const uint64_t *b, int32_t *c, int ldc)
{
    const int k = taps * tap_words;
    for (int nb = 0; nb < npanels; ++nb) {
        const uint64_t *bb = b + (int64_t)nb * k * XI_PANEL;
        /* Two rows at a time: each weight word is loaded once for both. */
        for (int i = 0; i < m; i += 2) {
            const int rows = m - i < 2 ? m - i : 2;
            const uint64_t *const *ra = a + (int64_t)i * taps;
            uint64_t acc0[XI_PANEL] = {0}, acc1[XI_PANEL] = {0};
            for (int t = 0; t < taps; ++t) {
                const uint64_t *a0 = ra[t];
                const uint64_t *a1 = rows > 1 ? ra[taps + t] : a0;
                const uint64_t *bt = bb + (int64_t)t * tap_words * XI_PANEL;
                for (int w = 0; w < tap_words; ++w) {
                    const uint64_t x0 = a0[w], x1 = a1[w];
                    for (int j = 0; j < XI_PANEL; ++j) {
                        acc0[j] += (uint64_t)XI_POPCOUNT64(x0 ^ bt[w * XI_PANEL + j]);
                        acc1[j] += (uint64_t)XI_POPCOUNT64(x1 ^ bt[w * XI_PANEL + j]);
                    }
                }
            }
            for (int j = 0; j < XI_PANEL; ++j) {
                c[(int64_t)i * ldc + nb * XI_PANEL + j] = (int32_t)acc0[j];
                if (rows > 1)
                    c[(int64_t)(i + 1) * ldc + nb * XI_PANEL + j] = (int32_t)acc1[j];
            }
        }
    }
}
