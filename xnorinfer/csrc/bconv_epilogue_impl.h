/* The binary convolution's epilogue, included once per instruction set by bconv_epilogue.c with
 * XI_SUFFIX and XI_TARGET defined, and, for a SIMD target, XI_LANES and the XI_V* primitives.
 * Every lane runs the same float operations in the same order as the scalar tail (no contraction
 * into FMA), so every ISA gives the same bits, only more lanes at a time. */
#define XI_CAT_(a, b) a##_##b
#define XI_CAT(a, b) XI_CAT_(a, b)
#define XI_FN(name) XI_CAT(name, XI_SUFFIX)

/* One output row's operands, offset to the tile's first channel. pack_bias is never NULL when
 * packing (zeros stand in: v < -0.0f is v < 0, v <= -0.0f is v <= 0). */
typedef struct {
    const int32_t *c;
    int32_t nbits;
    const float *scale, *bias, *residual, *gamma, *slope, *zeta, *pack_bias;
    float *out;
    uint64_t *packed; /* the word holding the row's first bit, at bit `shift` */
    int shift;
    int pack_le; /* zero packs as -1: the sign test is value <= -pack_bias */
} XI_FN(row_args);

/* A lane's sign bit for the packer, `<` or (le, a constant wherever this is inlined) `<=`. */
#define XI_SIGN_BIT(v, t, le) ((le) ? (v) <= (t) : (v) < (t))
#ifdef XI_LANES
#define XI_VSIGN_BITS(v, t, le) ((le) ? XI_VLE_BITS((v), (t)) : XI_VLESS_BITS((v), (t)))
#endif

/* act(scale * dot + bias + residual) for channel j, in the order PyTorch applies its layers. */
XI_TARGET static inline __attribute__((always_inline)) float
XI_FN(value)(const XI_FN(row_args) *r, int j, const int has_residual, const int has_rprelu)
{
    float v = (float)(r->nbits - 2 * r->c[j]) * r->scale[j] + r->bias[j];
    if (has_residual)
        v += r->residual[j];
    if (has_rprelu) {
        v -= r->gamma[j];
        const float negative = v * r->slope[j];
        v = (v >= 0.0f ? v : negative) + r->zeta[j];
    }
    return v;
}

/* One output row: its values and, with has_pack, its signs (bit j of a word set iff
 * value + pack_bias < 0, tested as value < -pack_bias; with pack_le value + pack_bias <= 0, tested
 * as value <= -pack_bias), from registers while the values are still in them. Each test is the
 * same as on the rounded sum, which xi_pack_signs makes: a sum rounded to nearest has the sign of
 * the exact one and is 0 only when that is (a zero or subnormal sum of two floats is exact), and
 * value <= -b is exactly value + b <= 0 (under flush-to-zero, which this library never sets, a sum
 * rounding to a subnormal could differ). Always inlined with constant flags, so each combination
 * is one branch-free loop. Returns nonzero if a packed value was NaN. */
XI_TARGET static inline __attribute__((always_inline)) int64_t
XI_FN(epilogue_row)(const XI_FN(row_args) *r, int count, const int has_residual, const int has_rprelu,
                    const int has_pack, const int pack_le)
{
    int64_t nans = 0;
    for (int w0 = 0; w0 < count; w0 += 64) {
        const int end = count - w0 < 64 ? count : w0 + 64;
        uint64_t word = 0;
        int j = w0;
#ifdef XI_LANES
        for (; j + XI_LANES <= end; j += XI_LANES) {
            XI_VF v = XI_VADD(XI_VMUL(XI_VCOUNTS(r->c + j, r->nbits), XI_VLOAD(r->scale + j)),
                              XI_VLOAD(r->bias + j));
            if (has_residual)
                v = XI_VADD(v, XI_VLOAD(r->residual + j));
            if (has_rprelu) {
                v = XI_VSUB(v, XI_VLOAD(r->gamma + j));
                v = XI_VADD(XI_VPRELU(v, XI_VLOAD(r->slope + j)), XI_VLOAD(r->zeta + j));
            }
            XI_VSTORE(r->out + j, v);
            if (has_pack) {
                word |= XI_VSIGN_BITS(v, XI_VNEG(XI_VLOAD(r->pack_bias + j)), pack_le) << (j - w0);
                nans += XI_VNAN_LANES(v) != 0;
            }
        }
#endif
        for (; j < end; ++j) {
            const float v = XI_FN(value)(r, j, has_residual, has_rprelu);
            r->out[j] = v;
            if (has_pack) {
                word |= (uint64_t)XI_SIGN_BIT(v, -r->pack_bias[j], pack_le) << (j - w0);
                nans += (v != v);
            }
        }
        if (has_pack) {
            uint64_t *dst = r->packed + w0 / 64;
            if (!r->shift) {
                dst[0] = word;
            } else { /* the low bits join the word begun before; the rest starts the next one */
                dst[0] |= word << r->shift;
                if (r->shift + (end - w0) > 64)
                    dst[1] = word >> (64 - r->shift);
            }
        }
    }
    return nans;
}

/* Returns CALL(has_residual, has_rprelu, has_pack, pack_le) with the flags of row arguments r as
 * constants, so that each combination is its own inlined, branch-free loop. */
#ifndef XI_WITH_FLAGS
#define XI_WITH_RPRELU_FLAGS(res_, rp_, CALL, pack, le)                                            \
    (res_ && rp_ ? CALL(1, 1, pack, le) : res_ ? CALL(1, 0, pack, le) : rp_ ? CALL(0, 1, pack, le) : CALL(0, 0, pack, le))
#define XI_WITH_FLAGS(r, CALL)                                                                     \
    do {                                                                                           \
        const int res_ = (r)->residual != NULL, rp_ = (r)->gamma != NULL;                          \
        if ((r)->packed && (r)->pack_le)                                                           \
            return XI_WITH_RPRELU_FLAGS(res_, rp_, CALL, 1, 1);                                    \
        if ((r)->packed)                                                                           \
            return XI_WITH_RPRELU_FLAGS(res_, rp_, CALL, 1, 0);                                    \
        return XI_WITH_RPRELU_FLAGS(res_, rp_, CALL, 0, 0);                                        \
    } while (0)
#endif

XI_TARGET static inline __attribute__((always_inline)) int64_t
XI_FN(epilogue_row_any)(const XI_FN(row_args) *r, int count)
{
#define XI_ROW(res, rp, pack, le) XI_FN(epilogue_row)(r, count, res, rp, pack, le)
    XI_WITH_FLAGS(r, XI_ROW);
#undef XI_ROW
}

#if defined(XI_LANES) && XI_LANES >= 8
/* A tile's rows at once, vector of channels by vector: the per-channel operands are loaded once
 * for all rows instead of once per row. Each vector's signs are whole bytes (8 or 16 bits) stored
 * in place, so this serves packing whose first bit is on a byte (the bytes before it, a previous
 * convolution's, are left alone; the bytes after the last channel, to the end of its word, are
 * zeroed: the same words as epilogue_row writes). Little-endian words (x86). r->c, r->residual,
 * r->out and r->packed are row 0's; the strides are the rows'. */
XI_TARGET static inline __attribute__((always_inline)) int64_t
XI_FN(epilogue_columns)(XI_FN(row_args) *r, const int32_t *nbits, int rows, int count, int ldc, int64_t res_stride,
                        int64_t out_stride, int64_t packed_stride, const int has_residual, const int has_rprelu,
                        const int has_pack, const int pack_le)
{
    int64_t nans = 0;
    unsigned nan_lanes = 0; /* lanes that met a NaN: counted once at the end, nonzero is enough */
    int j = 0;
    for (; j + XI_LANES <= count; j += XI_LANES) {
        const XI_VF scale = XI_VLOAD(r->scale + j), bias = XI_VLOAD(r->bias + j);
        XI_VF gamma = scale, slope = scale, zeta = scale, pack_bias = scale; /* pack_bias: negated */
        if (has_rprelu)
            gamma = XI_VLOAD(r->gamma + j), slope = XI_VLOAD(r->slope + j), zeta = XI_VLOAD(r->zeta + j);
        if (has_pack)
            pack_bias = XI_VNEG(XI_VLOAD(r->pack_bias + j));
        for (int i = 0; i < rows; ++i) {
            XI_VF v = XI_VADD(XI_VMUL(XI_VCOUNTS(r->c + (int64_t)i * ldc + j, nbits[i]), scale), bias);
            if (has_residual)
                v = XI_VADD(v, XI_VLOAD(r->residual + i * res_stride + j));
            if (has_rprelu) {
                v = XI_VSUB(v, gamma);
                v = XI_VADD(XI_VPRELU(v, slope), zeta);
            }
            XI_VSTORE(r->out + i * out_stride + j, v);
            if (has_pack) {
                const uint64_t bits = XI_VSIGN_BITS(v, pack_bias, pack_le);
                memcpy((unsigned char *)(r->packed + i * packed_stride) + (r->shift + j) / 8, &bits, XI_LANES / 8);
                nan_lanes |= XI_VNAN_LANES(v);
            }
        }
    }
    nans += __builtin_popcount(nan_lanes);
    if (j == count) {
        const int end_bit = (r->shift + count) % 64;
        if (has_pack && end_bit) { /* zeros to the end of the last word */
            const int64_t last = (r->shift + count) / 64;
            for (int i = 0; i < rows; ++i)
                r->packed[i * packed_stride + last] &= (1ull << end_bit) - 1;
        }
        return nans;
    }
    for (int i = 0; i < rows; ++i) { /* the last channels, then zeros to the end of the word */
        XI_FN(row_args) ri = *r;
        ri.c = r->c + (int64_t)i * ldc;
        ri.nbits = nbits[i];
        ri.residual = has_residual ? r->residual + i * res_stride : NULL;
        uint64_t bits = 0;
        for (int t = j; t < count; ++t) {
            const float v = XI_FN(value)(&ri, t, has_residual, has_rprelu);
            r->out[i * out_stride + t] = v;
            if (has_pack) {
                bits |= (uint64_t)XI_SIGN_BIT(v, -r->pack_bias[t], pack_le) << (t - j);
                nans += (v != v);
            }
        }
        if (has_pack) {
            unsigned char *bytes = (unsigned char *)(r->packed + i * packed_stride);
            const int first = (r->shift + j) / 8, end = (r->shift + count + 63) / 64 * 8;
            memset(bytes + first, 0, (size_t)(end - first));
            memcpy(bytes + first, &bits, (size_t)((count - j + 7) / 8));
        }
    }
    return nans;
}

XI_TARGET static inline __attribute__((always_inline)) int64_t
XI_FN(epilogue_columns_any)(XI_FN(row_args) *r, const int32_t *nbits, int rows, int count, int ldc,
                            int64_t res_stride, int64_t out_stride, int64_t packed_stride)
{
#define XI_COLUMNS(res, rp, pack, le) \
    XI_FN(epilogue_columns)(r, nbits, rows, count, ldc, res_stride, out_stride, packed_stride, res, rp, pack, le)
    XI_WITH_FLAGS(r, XI_COLUMNS);
#undef XI_COLUMNS
}
#endif

/* Output channels [oc0, oc0 + count) of a tile of rows from their popcounts (rows of `ldc`), and
 * their signs when the next layer's packed input is written here too (row values go to `scratch`
 * when there is no float output). Row i reads residual row res_row0 + i and writes output (float
 * and packed) row out_row0 + i. scale, bias and, when packing, pack_bias are never NULL here
 * (the driver substitutes ones and zeros). Returns nonzero if a packed value was NaN. */
XI_TARGET int64_t XI_FN(xi_bconv_epilogue)(const xi_bconv_geom *g, const xi_epilogue *ep, const int32_t *c, int ldc,
                                           int rows, const int *valid_taps, int64_t res_row0, int64_t out_row0,
                                           int oc0, int count, float *out, float *scratch)
{
    XI_FN(row_args) r;
    r.scale = ep->scale + oc0;
    r.bias = ep->bias + oc0;
    r.gamma = ep->rp_gamma ? ep->rp_gamma + oc0 : NULL;
    r.slope = r.gamma ? ep->rp_slope + oc0 : NULL;
    r.zeta = r.gamma ? ep->rp_zeta + oc0 : NULL;
    r.pack_bias = ep->packed ? ep->pack_bias + oc0 : NULL;
    r.shift = (int)((ep->first_bit + oc0) % 64);
    r.pack_le = ep->pack_zero_to == XI_ZERO_TO_MINUS_ONE;
#if defined(XI_LANES) && XI_LANES >= 8
    /* Walking the counts down columns pays while the tile's counts stay in L1 (32 KB). */
    if (rows <= XI_EPILOGUE_MAX_ROWS && (int64_t)rows * ldc <= 8192 && (!ep->packed || r.shift % 8 == 0)) {
        int32_t nbits[XI_EPILOGUE_MAX_ROWS];
        for (int i = 0; i < rows; ++i)
            nbits[i] = xi_bconv_dot_bits(g, valid_taps[i]);
        r.c = c;
        r.residual = ep->residual ? ep->residual + res_row0 * g->o + oc0 : NULL;
        r.out = out ? out + out_row0 * g->out_stride + oc0 : scratch;
        r.packed = ep->packed ? ep->packed + out_row0 * ep->packed_words + (ep->first_bit + oc0) / 64 : NULL;
        return XI_FN(epilogue_columns_any)(&r, nbits, rows, count, ldc, g->o, out ? g->out_stride : 0,
                                           ep->packed_words);
    }
#endif
    int64_t nans = 0;
    for (int i = 0; i < rows; ++i) {
        r.c = c + (int64_t)i * ldc;
        r.nbits = xi_bconv_dot_bits(g, valid_taps[i]);
        r.residual = ep->residual ? ep->residual + (res_row0 + i) * g->o + oc0 : NULL;
        r.out = out ? out + (out_row0 + i) * g->out_stride + oc0 : scratch;
        r.packed = ep->packed ? ep->packed + (out_row0 + i) * ep->packed_words + (ep->first_bit + oc0) / 64 : NULL;
        nans += XI_FN(epilogue_row_any)(&r, count);
    }
    return nans;
}

#undef XI_SIGN_BIT
#undef XI_VSIGN_BITS
#undef XI_FN
#undef XI_CAT
#undef XI_CAT_
