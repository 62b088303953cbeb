/* The aarch64 NEON instance's inner kernels, written with intrinsics (vfmaq_f32, vfmaq_n_f32),
 * included by float_ops.c before float_ops_impl.h's NEON instance, which then uses these in place
 * of its generic conv_block, conv_block_half, pool_window and dense_rows.
 *
 * Every output is the same sequence of operations as the generic bodies with XI_MADD = fmaf: each
 * sum is one chain of fused multiply-adds in the same term order (FMLA rounds once, as fmaf), max
 * pooling is `s > acc ? s : acc` (a compare and a select, not FMAX: -0.0 against +0.0 and NaN as
 * scalar code), average pooling adds in tap order and divides (FDIV is exact IEEE division). So
 * the results are bit-identical to the compiler-vectorised builds with FMA (AVX2, AVX-512, and the
 * previous NEON build), independent of the thread count (threads split outputs, never a sum), and
 * within rounding of the scalar build, which rounds products and sums separately: pooling equal,
 * conv and dense within (terms + 1) * 2^-24 of the sum of the terms' magnitudes (tests/c). Only
 * loop orders that no sum sees differ from the generic code: dense runs its 8-output panel as two
 * halves of 4 outputs (16 sums in registers), pooling 16 channels at a time over all taps.
 * aarch64 only: ARMv7's NEON flushes subnormals to zero and VFMA needs VFPv4 (float_ops.c). */
#if !defined(__aarch64__) || XI_CONV_PX != 6 || XI_CONV_CO != 16 || XI_DENSE_LANES != 16
#error "float_ops_neon.h: the aarch64 NEON instance with 6 x 16 conv blocks and 16 dense lanes"
#endif

#if defined(__GNUC__) && !defined(__clang__)
#define XI_NEON_NO_UNROLL _Pragma("GCC unroll 1") /* unrolled, the 24 sums spill */
#else
#define XI_NEON_NO_UNROLL
#endif

/* 6 pixels x 16 channels of sums, 24 of the 32 Q registers: per tap four weight vectors and one
 * broadcast FMLA per pixel and vector. */
static void conv_block_neon(const float *const *src, int kh, int64_t run, int64_t row_stride, const float *w,
                            int64_t o_pad, float acc[XI_CONV_PX][XI_CONV_CO])
{
    float32x4_t a00 = vdupq_n_f32(0.0f), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00,
                a13 = a00, a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00,
                a33 = a00, a40 = a00, a41 = a00, a42 = a00, a43 = a00, a50 = a00, a51 = a00, a52 = a00,
                a53 = a00;
    const float *s0 = src[0], *s1 = src[1], *s2 = src[2], *s3 = src[3], *s4 = src[4], *s5 = src[5];
    for (int ky = 0; ky < kh; ++ky) {
        const float *wk = w + ky * run * o_pad;
        const int64_t at = ky * row_stride;
        XI_NEON_NO_UNROLL
        for (int64_t t = 0; t < run; ++t) {
            XI_MCA_MARK("BEGIN conv");
            const float *wr = wk + t * o_pad;
            const float32x4_t w0 = vld1q_f32(wr), w1 = vld1q_f32(wr + 4), w2 = vld1q_f32(wr + 8),
                              w3 = vld1q_f32(wr + 12);
#define XI_PIXEL(P)                                                                                \
    {                                                                                              \
        const float v = s##P[at + t];                                                              \
        a##P##0 = vfmaq_n_f32(a##P##0, w0, v), a##P##1 = vfmaq_n_f32(a##P##1, w1, v);              \
        a##P##2 = vfmaq_n_f32(a##P##2, w2, v), a##P##3 = vfmaq_n_f32(a##P##3, w3, v);              \
    }
            XI_PIXEL(0) XI_PIXEL(1) XI_PIXEL(2) XI_PIXEL(3) XI_PIXEL(4) XI_PIXEL(5)
#undef XI_PIXEL
            XI_MCA_MARK("END");
        }
    }
#define XI_STORE(P)                                                                                \
    vst1q_f32(acc[P], a##P##0), vst1q_f32(acc[P] + 4, a##P##1), vst1q_f32(acc[P] + 8, a##P##2),    \
        vst1q_f32(acc[P] + 12, a##P##3);
    XI_STORE(0) XI_STORE(1) XI_STORE(2) XI_STORE(3) XI_STORE(4) XI_STORE(5)
#undef XI_STORE
}

/* The same for layers (or last blocks) of at most 8 channels: 6 pixels x 8 channels. */
static void conv_block_half_neon(const float *const *src, int kh, int64_t run, int64_t row_stride, const float *w,
                                 int64_t o_pad, float acc[XI_CONV_PX][XI_CONV_CO])
{
    float32x4_t a00 = vdupq_n_f32(0.0f), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00,
                a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
    const float *s0 = src[0], *s1 = src[1], *s2 = src[2], *s3 = src[3], *s4 = src[4], *s5 = src[5];
    for (int ky = 0; ky < kh; ++ky) {
        const float *wk = w + ky * run * o_pad;
        const int64_t at = ky * row_stride;
        XI_NEON_NO_UNROLL
        for (int64_t t = 0; t < run; ++t) {
            const float *wr = wk + t * o_pad;
            const float32x4_t w0 = vld1q_f32(wr), w1 = vld1q_f32(wr + 4);
#define XI_PIXEL(P)                                                                                \
    {                                                                                              \
        const float v = s##P[at + t];                                                              \
        a##P##0 = vfmaq_n_f32(a##P##0, w0, v), a##P##1 = vfmaq_n_f32(a##P##1, w1, v);              \
    }
            XI_PIXEL(0) XI_PIXEL(1) XI_PIXEL(2) XI_PIXEL(3) XI_PIXEL(4) XI_PIXEL(5)
#undef XI_PIXEL
        }
    }
#define XI_STORE(P) vst1q_f32(acc[P], a##P##0), vst1q_f32(acc[P] + 4, a##P##1);
    XI_STORE(0) XI_STORE(1) XI_STORE(2) XI_STORE(3) XI_STORE(4) XI_STORE(5)
#undef XI_STORE
}

/* Channels [0, len) of one pooling window (see the generic pool_window): 16 channels at a time
 * over all the taps, then 4, then one. */
static inline __attribute__((always_inline)) void pool_window_neon(const int is_max, const int len, const float *src,
                                                                   int64_t ny, int64_t nx, int64_t row, int64_t col,
                                                                   float d, float *dst)
{
    const float32x4_t dv = vdupq_n_f32(d);
    int k = 0;
    for (; k + 16 <= len; k += 16) {
        float32x4_t a0 = vld1q_f32(src + k), a1 = vld1q_f32(src + k + 4), a2 = vld1q_f32(src + k + 8),
                    a3 = vld1q_f32(src + k + 12);
        for (int64_t iy = 0; iy < ny; ++iy)
            for (int64_t ix = iy == 0; ix < nx; ++ix) {
                XI_MCA_MARK("BEGIN pool");
                const float *s = src + iy * row + ix * col + k;
                const float32x4_t s0 = vld1q_f32(s), s1 = vld1q_f32(s + 4), s2 = vld1q_f32(s + 8),
                                  s3 = vld1q_f32(s + 12);
                if (is_max) {
                    a0 = vbslq_f32(vcgtq_f32(s0, a0), s0, a0), a1 = vbslq_f32(vcgtq_f32(s1, a1), s1, a1);
                    a2 = vbslq_f32(vcgtq_f32(s2, a2), s2, a2), a3 = vbslq_f32(vcgtq_f32(s3, a3), s3, a3);
                } else {
                    a0 = vaddq_f32(a0, s0), a1 = vaddq_f32(a1, s1), a2 = vaddq_f32(a2, s2), a3 = vaddq_f32(a3, s3);
                }
                XI_MCA_MARK("END");
            }
        if (!is_max)
            a0 = vdivq_f32(a0, dv), a1 = vdivq_f32(a1, dv), a2 = vdivq_f32(a2, dv), a3 = vdivq_f32(a3, dv);
        vst1q_f32(dst + k, a0), vst1q_f32(dst + k + 4, a1), vst1q_f32(dst + k + 8, a2), vst1q_f32(dst + k + 12, a3);
    }
    for (; k + 4 <= len; k += 4) {
        float32x4_t a = vld1q_f32(src + k);
        for (int64_t iy = 0; iy < ny; ++iy)
            for (int64_t ix = iy == 0; ix < nx; ++ix) {
                const float32x4_t s = vld1q_f32(src + iy * row + ix * col + k);
                a = is_max ? vbslq_f32(vcgtq_f32(s, a), s, a) : vaddq_f32(a, s);
            }
        vst1q_f32(dst + k, is_max ? a : vdivq_f32(a, dv));
    }
    for (; k < len; ++k) {
        float a = src[k];
        for (int64_t iy = 0; iy < ny; ++iy)
            for (int64_t ix = iy == 0; ix < nx; ++ix) {
                const float s = src[iy * row + ix * col + k];
                a = is_max ? (s > a ? s : a) : a + s;
            }
        dst[k] = is_max ? a : a / d;
    }
}

/* Rows [r0, r0 + nr) (nr <= 4) of the rows of weights at w (`in` floats apart): 16 lanes each (16 Q
 * registers), one FMLA chain per lane over the body in k order; lanes gets their sums. */
static inline __attribute__((always_inline)) void dense_quad_neon(const int r0, const int nr, int64_t in,
                                                                  int64_t body, const float *xr, const float *w,
                                                                  float lanes[XI_DENSE_ROWS][XI_DENSE_LANES])
{
    float32x4_t a[4][4];
    for (int r = 0; r < 4; ++r)
        for (int q = 0; q < 4; ++q)
            a[r][q] = vdupq_n_f32(0.0f);
    for (int64_t k = 0; k < body; k += XI_DENSE_LANES) {
        XI_MCA_MARK("BEGIN dense");
        const float32x4_t x0 = vld1q_f32(xr + k), x1 = vld1q_f32(xr + k + 4), x2 = vld1q_f32(xr + k + 8),
                          x3 = vld1q_f32(xr + k + 12);
        for (int r = 0; r < nr; ++r) {
            const float *p = w + (r0 + r) * in + k;
            a[r][0] = vfmaq_f32(a[r][0], x0, vld1q_f32(p)), a[r][1] = vfmaq_f32(a[r][1], x1, vld1q_f32(p + 4));
            a[r][2] = vfmaq_f32(a[r][2], x2, vld1q_f32(p + 8)), a[r][3] = vfmaq_f32(a[r][3], x3, vld1q_f32(p + 12));
        }
        XI_MCA_MARK("END");
    }
    for (int r = 0; r < nr; ++r)
        for (int q = 0; q < 4; ++q)
            vst1q_f32(lanes[r0 + r] + 4 * q, a[r][q]);
}

/* out[b, j0 + r] for the R (<= 8) outputs whose rows of weights start at w, as the generic
 * dense_rows. */
static inline __attribute__((always_inline)) void dense_rows_neon(const int R, int64_t in, const float *xr,
                                                                  const float *w, int64_t j0, const float *bias,
                                                                  float *outr)
{
    float lanes[XI_DENSE_ROWS][XI_DENSE_LANES];
    const int64_t body = in - in % XI_DENSE_LANES, tail = in % XI_DENSE_LANES;
    if (R == XI_DENSE_ROWS) { /* a whole panel: two constant halves */
        dense_quad_neon(0, 4, in, body, xr, w, lanes);
        dense_quad_neon(4, 4, in, body, xr, w, lanes);
    } else {
        for (int r0 = 0; r0 < R; r0 += 4)
            dense_quad_neon(r0, R - r0 < 4 ? R - r0 : 4, in, body, xr, w, lanes);
    }
    for (int r = 0; r < R; ++r) {
        for (int l = 0; l < tail; ++l)
            lanes[r][l] = XI_MADD(xr[body + l], w[r * in + body + l], lanes[r][l]);
        float sum = 0.0f;
        for (int l = 0; l < XI_DENSE_LANES; ++l)
            sum += lanes[r][l];
        outr[j0 + r] = bias ? sum + bias[j0 + r] : sum;
    }
}

#undef XI_NEON_NO_UNROLL
