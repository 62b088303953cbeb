# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin wrappers around the C kernels in csrc/.

Arguments arrive already validated by the Python layer (xnorinfer.ops): C-contiguous arrays of the
right dtype and consistent shapes. Nothing here allocates outputs or checks shapes."""

from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t


cdef extern from "csrc/isa.h":
    ctypedef enum xi_isa:
        XI_ISA_SCALAR
        XI_ISA_COUNT
    const char *xi_isa_name(xi_isa isa)
    int xi_isa_compiled(xi_isa isa)
    int xi_isa_supported(xi_isa isa)
    xi_isa xi_isa_best()
    xi_isa xi_isa_get()
    int xi_isa_set(xi_isa isa)
    int XI_CPU_FEATURE_COUNT
    unsigned xi_cpu_features()
    const char *xi_cpu_feature_name(int i)
    unsigned xi_isa_requires(xi_isa isa)

cdef extern from "csrc/kernels.h":
    ctypedef struct xi_kernels:
        const char *isa
        const char *bgemm_name
        int bgemm_mr, bgemm_nr
    const xi_kernels *xi_kernels_for(xi_isa isa)

cdef extern from "csrc/threads.h":
    int xi_openmp_enabled()
    int xi_get_num_threads()
    void xi_set_num_threads(int n)
    int xi_get_thread_pin()
    int xi_last_team_size()
    void xi_after_fork_in_child()
    int xi_is_forked_child()

cdef extern from "csrc/bitpack.h":
    enum:
        XI_ZERO_TO_ONE
        XI_ZERO_TO_MINUS_ONE
    int64_t xi_pack_signs(const float *x, const float *bias, int64_t npix, int c, int groups, int zero_to,
                          uint64_t *out, int nthreads) nogil
    void xi_unpack_signs(const uint64_t *packed, int64_t npix, int c, int groups, float *out,
                         int nthreads) nogil

cdef extern from "csrc/bconv.h":
    ctypedef struct xi_bconv_geom:
        int64_t n, h, w
        int c, groups, o
        int kh, kw, sh, sw
        int pad_t, pad_b, pad_l, pad_r
        int pad_value
        int64_t ho, wo
        int64_t out_stride
    ctypedef struct xi_epilogue:
        const float *scale
        const float *bias
        const float *residual
        const float *rp_gamma
        const float *rp_slope
        const float *rp_zeta
        uint64_t *packed
        int64_t packed_words, first_bit
        const float *pack_bias
        int pack_zero_to
    int64_t xi_bconv_blocked_words(int o, int groups, int channels_per_group, int kh, int kw)
    void xi_bconv_prepare_weights(const uint64_t *w, int o, int groups, int channels_per_group, int kh,
                                  int kw, uint64_t *blocked, int32_t *tap_popcount) nogil
    int xi_bconv2d(const xi_bconv_geom *g, const uint64_t *x, const uint64_t *blocked,
                   const int32_t *tap_popcount, const xi_epilogue *ep, float *out,
                   int nthreads) nogil
    ctypedef struct xi_bconv_layer:
        xi_bconv_geom g
        const uint64_t *x
        const uint64_t *blocked
        const int32_t *tap_popcount
        xi_epilogue ep
        float *out
    enum: XI_BLOCK_MAX_REST
    int xi_bconv2d_block(const xi_bconv_layer *first, const xi_bconv_layer *rest, int nrest,
                         int nthreads) nogil

cdef extern from "csrc/float_ops.h":
    ctypedef struct xi_conv_geom:
        int64_t n, h, w
        int c, o, kh, kw
        int sh, sw, pad_t, pad_l
        int64_t ho, wo
        int relu
    int64_t xi_conv2d_padded_outputs(int o)
    int xi_conv2d(const xi_conv_geom *g, const float *x, const float *w, const float *scale,
                  const float *bias, float *out, uint64_t *packed, const float *pack_bias, int pack_zero_to,
                  int nthreads) nogil
    int xi_conv2d_max_pool(const xi_conv_geom *g, const float *x, const float *w, const float *scale,
                           const float *bias, int64_t pho, int64_t pwo, const int32_t *y0, const int32_t *y1,
                           const int32_t *x0, const int32_t *x1, float *out, int nthreads) nogil
    void xi_nchw_to_nhwc(const float *x, int64_t n, int64_t c, int64_t hw, float *out) nogil
    void xi_pool2d(int is_max, int64_t n, int64_t h, int64_t w, int c, int64_t ho, int64_t wo,
                   const int32_t *y0, const int32_t *y1, const int32_t *x0, const int32_t *x1,
                   const float *divisor, const float *x, float *out, int nthreads) nogil
    void xi_dense(int64_t n, int64_t inp, int64_t o, const float *x, const float *panels, const float *bias,
                  float *out, int nthreads) nogil
    void xi_global_avg_pool(int64_t n, int64_t pixels, int c, const float *x, float *out, int nthreads) nogil

cdef extern from "csrc/bwn.h":
    ctypedef struct xi_bwn_geom:
        int64_t n, h, w
        int c, groups, o
        int kh, kw, sh, sw, pad_t, pad_l
        int64_t ho, wo
    int64_t xi_bwn_conv_lane_words(int c, int groups, int o, int kh, int kw)
    void xi_bwn_conv_lanes(const uint64_t *packed, int c, int groups, int o, int kh, int kw,
                           uint32_t *lanes) nogil
    int xi_bwn_conv2d(const xi_bwn_geom *g, const float *x, const float *in_scale, const float *in_shift,
                      const uint32_t *lanes, const float *alpha, const float *bias, int relu, float *out,
                      int nthreads) nogil
    int64_t xi_bwn_dense_lane_words(int64_t inp, int64_t o)
    void xi_bwn_dense_lanes(const uint64_t *packed, int64_t inp, int64_t o, uint32_t *lanes) nogil
    int xi_bwn_dense(int64_t n, int64_t inp, int64_t o, const float *x, const uint32_t *lanes,
                     const float *alpha, const float *bias, float *out, int nthreads) nogil


# ---- CPU features and instruction-set selection -------------------------------------------------

def isa_names():
    """Names of every instruction set the kernels know, in order of preference (worst first)."""
    return [xi_isa_name(<xi_isa>i).decode() for i in range(XI_ISA_COUNT)]

def isa_compiled(int index):
    return bool(xi_isa_compiled(<xi_isa>index))

def isa_supported(int index):
    return bool(xi_isa_supported(<xi_isa>index))

def isa_best():
    return <int>xi_isa_best()

def isa_get():
    return <int>xi_isa_get()

def isa_set(int index):
    return xi_isa_set(<xi_isa>index) == 0

def _feature_names(unsigned bits):
    return [xi_cpu_feature_name(i).decode() for i in range(XI_CPU_FEATURE_COUNT) if bits & (1u << i)]

def cpu_features():
    """The CPU features the kernels look for that this CPU (and OS) has, as detected once."""
    return _feature_names(xi_cpu_features())

def isa_requires(int index):
    """The CPU features an instruction set's kernels need."""
    return _feature_names(xi_isa_requires(<xi_isa>index))

def isa_kernels(int index):
    """The binary GEMM of an instruction set's row of the kernel table: (name, rows, channels), or
    None where this build has no row for it."""
    cdef const xi_kernels *k = xi_kernels_for(<xi_isa>index)
    if k == NULL:
        return None
    return k.bgemm_name.decode(), k.bgemm_mr, k.bgemm_nr


# ---- threads ------------------------------------------------------------------------------------

def openmp_enabled():
    return bool(xi_openmp_enabled())

def get_num_threads():
    return xi_get_num_threads()

def set_num_threads(int n):
    xi_set_num_threads(n)

def get_thread_pin():
    return xi_get_thread_pin()

def last_team_size():
    return xi_last_team_size()

def after_fork_in_child():
    xi_after_fork_in_child()

def is_forked_child():
    return bool(xi_is_forked_child())


# ---- bit packing --------------------------------------------------------------------------------

def pack_signs(const float[:, ::1] x not None, const float[::1] bias, int groups, int zero_to,
               uint64_t[:, ::1] out not None):
    """Packs rows of x into out (zero_to: 0, zero packs as +1; 1, as -1); returns the number of
    NaNs met."""
    cdef const float *b = &bias[0] if bias is not None else NULL
    cdef int64_t nans
    cdef int64_t npix = x.shape[0]
    cdef int c = <int>x.shape[1]
    cdef int nthreads = xi_get_num_threads()
    if npix == 0:
        return 0
    with nogil:
        nans = xi_pack_signs(&x[0, 0], b, npix, c, groups, zero_to, &out[0, 0], nthreads)
    return nans

def unpack_signs(const uint64_t[:, ::1] packed not None, int groups, float[:, ::1] out not None):
    cdef int64_t npix = out.shape[0]
    cdef int c = <int>out.shape[1]
    cdef int nthreads = xi_get_num_threads()
    if npix == 0:
        return
    with nogil:
        xi_unpack_signs(&packed[0, 0], npix, c, groups, &out[0, 0], nthreads)


# ---- binary convolution -------------------------------------------------------------------------

def bconv_blocked_words(int o, int groups, int channels_per_group, int kh, int kw):
    return xi_bconv_blocked_words(o, groups, channels_per_group, kh, kw)

def bconv_prepare_weights(const uint64_t[:, ::1] w not None, int groups, int channels_per_group, int kh,
                          int kw, uint64_t[::1] blocked not None, int32_t[::1] tap_popcount not None):
    """w: (o, kh * kw * group_words) packed weights."""
    cdef int o = <int>w.shape[0]
    if w.shape[1] != kh * kw * ((channels_per_group + 63) // 64) or tap_popcount.shape[0] != kh * kw * o \
            or blocked.shape[0] != xi_bconv_blocked_words(o, groups, channels_per_group, kh, kw):
        raise ValueError("bconv_prepare_weights: the arrays do not fit the weights' shape")
    with nogil:
        xi_bconv_prepare_weights(&w[0, 0], o, groups, channels_per_group, kh, kw, &blocked[0],
                                 &tap_popcount[0])

cdef inline const float *_ptr(const float[::1] a):
    return &a[0] if a is not None else NULL

# The sign an exact zero x + bias packs as (xi_zero_to), by name: the kernels' codes.
ZERO_TO = {"one": XI_ZERO_TO_ONE, "minus_one": XI_ZERO_TO_MINUS_ONE}

cdef _geometry_error(dict geometry, tuple fields):
    """For a geometry without exactly `fields`: each wrapper looks its fields up and counts them,
    which costs less on every call than comparing sets of names."""
    return TypeError(f"geometry needs exactly the fields {fields}, got {tuple(geometry)}")

# The fields of a binary convolution's geometry (xi_bconv_geom), as BConvCall takes them.
BCONV_GEOMETRY = ("n", "h", "w", "c", "groups", "o", "kh", "kw", "sh", "sw", "pad_t", "pad_b", "pad_l", "pad_r",
                  "pad_value", "ho", "wo")
# Pointwise convolutions a fused block (bconv2d_block) takes after its first one, at most.
BLOCK_MAX_REST = XI_BLOCK_MAX_REST

cdef _check_bconv_status(int status):
    if status == -1:
        raise MemoryError("xnorinfer: out of memory for the binary convolution's scratch buffers")
    if status == -2:
        raise ValueError("a binary convolution's output contains NaN: its sign is undefined")
    if status == -3:
        raise ValueError("these binary convolutions do not form a block (see xi_bconv2d_block)")

cdef class BConvCall:
    """One binary convolution's kernel arguments, bound once (ops.binary.bind_bconv2d checks them);
    calling it runs xi_bconv2d. Built by keyword only:

    geometry: a dict of the BCONV_GEOMETRY fields, pad_value the value of a padded tap (1, 0 or -1).
    x: the packed input, flat. out: (n, ho, wo, o) with contiguous channels and pixels `out_stride`
    floats apart (more than o when it is a channel slice of a wider NHWC tensor), or None when only
    `packed` is wanted. packed: None or (n * ho * wo, words) signs of the outputs (+ pack_bias) for
    the next layer, this convolution's channel 0 at bit first_bit, zero packing as pack_signs's
    zero_to says in pack_zero_to (see xi_epilogue). The arrays are kept alive by the call."""
    cdef xi_bconv_layer layer
    cdef readonly dict geometry
    cdef readonly object x, out, residual, packed
    cdef readonly int64_t out_stride, first_bit
    cdef tuple _arrays

    def __init__(self, *, dict geometry, const uint64_t[::1] x not None, const uint64_t[::1] blocked not None,
                 const int32_t[::1] tap_popcount not None, float[:, :, :, :] out, int64_t out_stride,
                 const float[::1] scale, const float[::1] bias, const float[::1] residual,
                 const float[::1] rp_gamma, const float[::1] rp_slope, const float[::1] rp_zeta,
                 uint64_t[:, ::1] packed, int64_t first_bit, const float[::1] pack_bias, int pack_zero_to):
        cdef xi_bconv_geom *g = &self.layer.g
        try:
            g.n, g.h, g.w = geometry["n"], geometry["h"], geometry["w"]
            g.c, g.groups, g.o = geometry["c"], geometry["groups"], geometry["o"]
            g.kh, g.kw, g.sh, g.sw = geometry["kh"], geometry["kw"], geometry["sh"], geometry["sw"]
            g.pad_t, g.pad_b = geometry["pad_t"], geometry["pad_b"]
            g.pad_l, g.pad_r = geometry["pad_l"], geometry["pad_r"]
            g.pad_value, g.ho, g.wo = geometry["pad_value"], geometry["ho"], geometry["wo"]
        except KeyError:
            raise _geometry_error(geometry, BCONV_GEOMETRY) from None
        if len(geometry) != len(BCONV_GEOMETRY):
            raise _geometry_error(geometry, BCONV_GEOMETRY)
        g.out_stride = out_stride
        self.layer.x = &x[0]
        self.layer.blocked = &blocked[0]
        self.layer.tap_popcount = &tap_popcount[0]
        self.layer.out = &out[0, 0, 0, 0] if out is not None else NULL
        cdef xi_epilogue *ep = &self.layer.ep
        ep.scale = _ptr(scale)
        ep.bias = _ptr(bias)
        ep.residual = _ptr(residual)
        ep.rp_gamma = _ptr(rp_gamma)
        ep.rp_slope = _ptr(rp_slope)
        ep.rp_zeta = _ptr(rp_zeta)
        ep.packed = &packed[0, 0] if packed is not None else NULL
        ep.packed_words = packed.shape[1] if packed is not None else 0
        ep.first_bit = first_bit
        ep.pack_bias = _ptr(pack_bias)
        ep.pack_zero_to = pack_zero_to
        self.geometry = geometry
        self.x, self.residual = x.base, residual.base if residual is not None else None
        self.out = out.base if out is not None else None
        self.packed = packed.base if packed is not None else None
        self.out_stride, self.first_bit = out_stride, first_bit
        self._arrays = (x, blocked, tap_popcount, out, scale, bias, residual, rp_gamma, rp_slope, rp_zeta, packed,
                        pack_bias)

    def __call__(self):
        cdef int status
        cdef int nthreads = xi_get_num_threads()
        with nogil:
            status = xi_bconv2d(&self.layer.g, self.layer.x, self.layer.blocked, self.layer.tap_popcount,
                                &self.layer.ep, self.layer.out, nthreads)
        _check_bconv_status(status)

def bconv2d_block(BConvCall first not None, list rest):
    """A convolution and the 1 to BLOCK_MAX_REST pointwise ones that read its output, tile by tile
    (xi_bconv2d_block)."""
    cdef xi_bconv_layer layers[1 + XI_BLOCK_MAX_REST]
    if not 1 <= len(rest) <= XI_BLOCK_MAX_REST:
        raise ValueError(f"a block has 1 to {XI_BLOCK_MAX_REST} pointwise convolutions, got {len(rest)}")
    layers[0] = first.layer
    cdef BConvCall call
    for i, call in enumerate(rest):
        layers[i + 1] = call.layer
    cdef int status
    cdef int nrest = len(rest)
    cdef int nthreads = xi_get_num_threads()
    with nogil:
        status = xi_bconv2d_block(&layers[0], &layers[1], nrest, nthreads)
    _check_bconv_status(status)


# ---- float layers -------------------------------------------------------------------------------

def conv2d_padded_outputs(int o):
    return xi_conv2d_padded_outputs(o)

# The fields of a float convolution's geometry (xi_conv_geom), as conv2d and conv2d_max_pool take them.
CONV_GEOMETRY = ("n", "h", "w", "c", "o", "kh", "kw", "sh", "sw", "pad_t", "pad_l", "ho", "wo", "relu")

cdef int _conv_geometry(xi_conv_geom *g, dict geometry) except -1:
    try:
        g.n, g.h, g.w = geometry["n"], geometry["h"], geometry["w"]
        g.c, g.o, g.kh, g.kw = geometry["c"], geometry["o"], geometry["kh"], geometry["kw"]
        g.sh, g.sw, g.pad_t, g.pad_l = geometry["sh"], geometry["sw"], geometry["pad_t"], geometry["pad_l"]
        g.ho, g.wo, g.relu = geometry["ho"], geometry["wo"], geometry["relu"]
    except KeyError:
        raise _geometry_error(geometry, CONV_GEOMETRY) from None
    if len(geometry) != len(CONV_GEOMETRY):
        raise _geometry_error(geometry, CONV_GEOMETRY)
    return 0

def conv2d(dict geometry, const float[:, :, :, ::1] x not None, const float[:, :, :, ::1] w not None,
           const float[::1] scale, const float[::1] bias, float[:, :, :, ::1] out not None,
           uint64_t[:, ::1] packed=None, const float[::1] pack_bias=None, int pack_zero_to=0):
    """geometry: the CONV_GEOMETRY fields (relu: 1 for max(out, 0)); w is (kh, kw, c, o_pad).
    packed: None or (n * ho * wo, words) for the signs of out (+ pack_bias, zero as pack_signs's
    zero_to), written as well."""
    cdef xi_conv_geom g
    _conv_geometry(&g, geometry)
    cdef const float *s = _ptr(scale)
    cdef const float *b = _ptr(bias)
    cdef uint64_t *p = &packed[0, 0] if packed is not None else NULL
    cdef const float *pb = _ptr(pack_bias)
    cdef int nthreads = xi_get_num_threads()
    cdef int status
    with nogil:
        status = xi_conv2d(&g, &x[0, 0, 0, 0], &w[0, 0, 0, 0], s, b, &out[0, 0, 0, 0], p, pb, pack_zero_to,
                           nthreads)
    if status == -1:
        raise MemoryError("xnorinfer: out of memory for the convolution's scratch buffers")
    if status == -2:
        raise ValueError("a convolution's output contains NaN: its sign is undefined")

def conv2d_max_pool(dict geometry, const float[:, :, :, ::1] x not None, const float[:, :, :, ::1] w not None,
                    const float[::1] scale, const float[::1] bias, const int32_t[::1] y0 not None,
                    const int32_t[::1] y1 not None, const int32_t[::1] x0 not None, const int32_t[::1] x1 not None,
                    float[:, :, :, ::1] out not None):
    """conv2d's geometry and weights, then max pooling over windows as pool2d's into out."""
    cdef xi_conv_geom g
    _conv_geometry(&g, geometry)
    cdef const float *s = _ptr(scale)
    cdef const float *b = _ptr(bias)
    cdef int nthreads = xi_get_num_threads()
    cdef int status
    with nogil:
        status = xi_conv2d_max_pool(&g, &x[0, 0, 0, 0], &w[0, 0, 0, 0], s, b, out.shape[1], out.shape[2],
                                    &y0[0], &y1[0], &x0[0], &x1[0], &out[0, 0, 0, 0], nthreads)
    if status != 0:
        raise MemoryError("xnorinfer: out of memory for the convolution's scratch buffers")

def nchw_to_nhwc(const float[:, :, :, ::1] x not None, float[:, :, :, ::1] out not None):
    """out (n, h, w, c) = x (n, c, h, w) transposed."""
    if x.shape[0] * x.shape[1] * x.shape[2] * x.shape[3] == 0:
        return
    with nogil:
        xi_nchw_to_nhwc(&x[0, 0, 0, 0], x.shape[0], x.shape[1], x.shape[2] * x.shape[3], &out[0, 0, 0, 0])

def pool2d(bint is_max, const float[:, :, :, ::1] x not None, const int32_t[::1] y0 not None,
           const int32_t[::1] y1 not None, const int32_t[::1] x0 not None, const int32_t[::1] x1 not None,
           const float[::1] divisor not None, float[:, :, :, ::1] out not None):
    """Windows [y0, y1) x [x0, x1) per output row / column (see csrc/float_ops.h)."""
    cdef int nthreads = xi_get_num_threads()
    with nogil:
        xi_pool2d(is_max, x.shape[0], x.shape[1], x.shape[2], <int>x.shape[3], out.shape[1], out.shape[2],
                  &y0[0], &y1[0], &x0[0], &x1[0], &divisor[0], &x[0, 0, 0, 0], &out[0, 0, 0, 0], nthreads)

def dense(const float[:, ::1] x not None, const float[:, ::1] w not None, const float[::1] bias,
          float[:, ::1] out not None):
    """out = x @ w.T + bias, w (o, in) row-major."""
    if w.shape[0] != out.shape[1] or w.shape[1] != x.shape[1] or out.shape[0] != x.shape[0] \
            or (bias is not None and bias.shape[0] != out.shape[1]):
        raise ValueError("dense: x, w, bias and out do not fit together")
    cdef const float *b = _ptr(bias)
    cdef int nthreads = xi_get_num_threads()
    with nogil:
        xi_dense(x.shape[0], x.shape[1], out.shape[1], &x[0, 0], &w[0, 0], b, &out[0, 0], nthreads)

def global_avg_pool(const float[:, :, ::1] x not None, float[:, ::1] out not None):
    """x: (n, pixels, c)."""
    cdef int nthreads = xi_get_num_threads()
    with nogil:
        xi_global_avg_pool(x.shape[0], x.shape[1], <int>x.shape[2], &x[0, 0, 0], &out[0, 0], nthreads)


# ---- BWN layers (1-bit weights, float activations) ----------------------------------------------

def bwn_conv_lanes(const uint64_t[:, :, :, ::1] packed not None, int c, int groups, uint32_t[::1] lanes not None):
    """lanes = the (o, kh, kw, words) packed weights as csrc/bwn.h's conv lanes."""
    cdef int o = <int>packed.shape[0], kh = <int>packed.shape[1], kw = <int>packed.shape[2]
    if lanes.shape[0] != xi_bwn_conv_lane_words(c, groups, o, kh, kw) or packed.shape[3] != (c // groups + 63) // 64:
        raise ValueError("bwn_conv_lanes: the arrays do not fit the weights' shape")
    with nogil:
        xi_bwn_conv_lanes(&packed[0, 0, 0, 0], c, groups, o, kh, kw, &lanes[0])

def bwn_conv_lane_words(int c, int groups, int o, int kh, int kw):
    return xi_bwn_conv_lane_words(c, groups, o, kh, kw)

# The fields of a BWN convolution's geometry (xi_bwn_geom), as bwn_conv2d takes them.
BWN_GEOMETRY = ("n", "h", "w", "c", "groups", "o", "kh", "kw", "sh", "sw", "pad_t", "pad_l", "ho", "wo")

def bwn_conv2d(dict geometry, const float[:, :, :, ::1] x not None, const uint32_t[::1] lanes not None,
               const float[::1] alpha not None, const float[::1] bias, float[:, :, :, ::1] out not None,
               bint relu=False, const float[::1] in_scale=None, const float[::1] in_shift=None):
    """geometry: the BWN_GEOMETRY fields; relu: max(out, 0); in_scale, in_shift (c each, or both
    None): the conv reads in_scale * x + in_shift."""
    cdef xi_bwn_geom g
    try:
        g.n, g.h, g.w = geometry["n"], geometry["h"], geometry["w"]
        g.c, g.groups, g.o = geometry["c"], geometry["groups"], geometry["o"]
        g.kh, g.kw, g.sh, g.sw = geometry["kh"], geometry["kw"], geometry["sh"], geometry["sw"]
        g.pad_t, g.pad_l, g.ho, g.wo = geometry["pad_t"], geometry["pad_l"], geometry["ho"], geometry["wo"]
    except KeyError:
        raise _geometry_error(geometry, BWN_GEOMETRY) from None
    if len(geometry) != len(BWN_GEOMETRY):
        raise _geometry_error(geometry, BWN_GEOMETRY)
    cdef const float *b = _ptr(bias)
    if (in_scale is None) != (in_shift is None) or (in_scale is not None and (
            in_scale.shape[0] != g.c or in_shift.shape[0] != g.c)):
        raise ValueError("bwn_conv2d: in_scale and in_shift must both be None or both have c values")
    cdef const float *sc = _ptr(in_scale)
    cdef const float *sh = _ptr(in_shift)
    cdef int nthreads = xi_get_num_threads()
    cdef int status
    with nogil:
        status = xi_bwn_conv2d(&g, &x[0, 0, 0, 0], sc, sh, &lanes[0], &alpha[0], b, relu, &out[0, 0, 0, 0], nthreads)
    if status != 0:
        raise MemoryError("xnorinfer: out of memory for the BWN convolution's scratch buffers")

def bwn_dense_lane_words(int64_t inp, int64_t o):
    return xi_bwn_dense_lane_words(inp, o)

def bwn_dense_lanes(const uint64_t[:, ::1] packed not None, int64_t inp, uint32_t[::1] lanes not None):
    """lanes = the (o, words) packed weights as csrc/bwn.h's dense lanes."""
    cdef int64_t o = packed.shape[0]
    if lanes.shape[0] != xi_bwn_dense_lane_words(inp, o) or packed.shape[1] != (inp + 63) // 64:
        raise ValueError("bwn_dense_lanes: the arrays do not fit the weights' shape")
    with nogil:
        xi_bwn_dense_lanes(&packed[0, 0], inp, o, &lanes[0])

def bwn_dense(const float[:, ::1] x not None, const uint32_t[::1] lanes not None, const float[::1] alpha not None,
              const float[::1] bias, float[:, ::1] out not None):
    """out (n, o) = x (n, in) against the 1-bit weights' lanes (bwn_dense_lanes), times alpha, plus bias."""
    if lanes.shape[0] != xi_bwn_dense_lane_words(x.shape[1], out.shape[1]):
        raise ValueError("bwn_dense: the lanes do not fit the layer's shape")
    cdef const float *b = _ptr(bias)
    cdef int nthreads = xi_get_num_threads()
    cdef int status
    with nogil:
        status = xi_bwn_dense(x.shape[0], x.shape[1], out.shape[1], &x[0, 0], &lanes[0], &alpha[0], b, &out[0, 0],
                              nthreads)
    if status != 0:
        raise MemoryError("xnorinfer: out of memory for the BWN dense layer's tables")
