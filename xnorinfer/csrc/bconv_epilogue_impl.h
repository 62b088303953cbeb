/* The binary convolution's epilogue, included once per instruction set by bconv_epilogue.c with
 * XI_SUFFIX and XI_TARGET defined: the same float operations in the same order on every target
 * (no contraction into FMA), so every ISA gives the same bits, only more lanes at a time. */
#define XI_CAT_(a, b) a##_##b
#define XI_CAT(a, b) XI_CAT_(a, b)
#define XI_FN(name) XI_CAT(name, XI_SUFFIX)

/* One output row: act(scale * dot + bias + residual), in the order PyTorch applies its layers.
 * Always inlined with constant flags, so each combination is one branch-free loop that the
 * compiler vectorises (the PReLU select included: both sides are computed, then blended). */
XI_TARGET static inline __attribute__((always_inline)) void
XI_FN(epilogue_row)(const int32_t *restrict c, int32_t nbits, const float *restrict scale, const float *restrict bias,
             const float *restrict residual, const float *restrict gamma, const float *restrict slope,
             const float *restrict zeta, float *restrict out, int count, const int has_residual,
             const int has_rprelu)
{
    for (int j = 0; j < count; ++j) {
        float v = (float)(nbits - 2 * c[j]) * scale[j] + bias[j];
        if (has_residual)
            v += residual[j];
        if (has_rprelu) {
            v -= gamma[j];
            const float negative = v * slope[j];
            v = (v >= 0.0f ? v : negative) + zeta[j];
        }
        out[j] = v;
    }
}

/* Output channels [oc0, oc0 + count) of a tile of rows from their popcounts (rows of `ldc`), then
 * their signs when the next layer's packed input is written here too (row values go to `scratch`
 * when there is no float output). scale and bias are never NULL here (the driver substitutes ones
 * and zeros). Returns the NaNs packed. */
XI_TARGET static int64_t XI_FN(epilogue)(const xi_bconv_geom *g, const xi_epilogue *ep, const int32_t *c, int ldc, int rows,
                        const int *valid_taps, int64_t out_row0, int oc0, int count, float *out, float *scratch,
                        xi_pack_run_fn pack_run)
{
    const int cg = g->c / g->groups, taps = g->kh * g->kw;
    const float *scale = ep->scale + oc0, *bias = ep->bias + oc0;
    const float *gamma = ep->rp_gamma ? ep->rp_gamma + oc0 : NULL;
    const float *slope = gamma ? ep->rp_slope + oc0 : NULL, *zeta = gamma ? ep->rp_zeta + oc0 : NULL;
    int64_t nans = 0;
    for (int i = 0; i < rows; ++i) {
        const int32_t nbits = (g->pad_one ? taps : valid_taps[i]) * cg;
        const int32_t *ci = c + (int64_t)i * ldc;
        const float *ri = ep->residual ? ep->residual + (out_row0 + i) * g->o + oc0 : NULL;
        float *oi = out ? out + (out_row0 + i) * g->out_stride + oc0 : scratch;
        if (ri && gamma)
            XI_FN(epilogue_row)(ci, nbits, scale, bias, ri, gamma, slope, zeta, oi, count, 1, 1);
        else if (ri)
            XI_FN(epilogue_row)(ci, nbits, scale, bias, ri, NULL, NULL, NULL, oi, count, 1, 0);
        else if (gamma)
            XI_FN(epilogue_row)(ci, nbits, scale, bias, NULL, gamma, slope, zeta, oi, count, 0, 1);
        else
            XI_FN(epilogue_row)(ci, nbits, scale, bias, NULL, NULL, NULL, NULL, oi, count, 0, 0);
        if (ep->packed)
            nans += pack_run(oi, ep->pack_bias ? ep->pack_bias + oc0 : NULL, count,
                             ep->packed + (out_row0 + i) * ep->packed_words + (ep->first_bit + oc0) / 64);
    }
    return nans;
}

#undef XI_FN
#undef XI_CAT
#undef XI_CAT_
