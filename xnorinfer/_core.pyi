"""Type stubs of the compiled extension xnorinfer._core (thin wrappers around csrc/): arguments
arrive checked by xnorinfer.ops. tests/test_core_stub.py checks these names and parameters against
the built module."""

import numpy as np

Array = np.ndarray

# ---- CPU features and instruction-set selection
def isa_names() -> list[str]: ...
def isa_compiled(index: int) -> bool: ...
def isa_supported(index: int) -> bool: ...
def isa_best() -> int: ...
def isa_get() -> int: ...
def isa_set(index: int) -> bool: ...
def cpu_features() -> list[str]: ...
def isa_requires(index: int) -> list[str]: ...
def isa_kernels(index: int) -> tuple[str, int, int] | None: ...

# ---- threads
def openmp_enabled() -> bool: ...
def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def get_thread_pin() -> int: ...
def last_team_size() -> int: ...
def after_fork_in_child() -> None: ...
def is_forked_child() -> bool: ...

# ---- bit packing
def pack_signs(x: Array, bias: Array | None, groups: int, zero_to: int, out: Array) -> int: ...
def unpack_signs(packed: Array, groups: int, out: Array) -> None: ...

# ---- binary convolution
ZERO_TO: dict[str, int]
BCONV_GEOMETRY: tuple[str, ...]
BLOCK_MAX_REST: int

def bconv_blocked_words(o: int, groups: int, channels_per_group: int, kh: int, kw: int) -> int: ...
def bconv_prepare_weights(
    w: Array, groups: int, channels_per_group: int, kh: int, kw: int, blocked: Array, tap_popcount: Array
) -> None: ...

class BConvCall:
    geometry: dict[str, int]
    x: Array
    out: Array | None
    residual: Array | None
    packed: Array | None
    out_stride: int
    first_bit: int
    def __init__(
        self,
        *,
        geometry: dict[str, int],
        x: Array,
        blocked: Array,
        tap_popcount: Array,
        out: Array | None,
        out_stride: int,
        scale: Array | None,
        bias: Array | None,
        residual: Array | None,
        rp_gamma: Array | None,
        rp_slope: Array | None,
        rp_zeta: Array | None,
        packed: Array | None,
        first_bit: int,
        pack_bias: Array | None,
        pack_zero_to: int,
    ) -> None: ...
    def __call__(self) -> None: ...

def bconv2d_block(first: BConvCall, rest: list[BConvCall]) -> None: ...

# ---- float layers
CONV_GEOMETRY: tuple[str, ...]

def conv2d_padded_outputs(o: int) -> int: ...
def conv2d(
    geometry: dict[str, int],
    x: Array,
    w: Array,
    scale: Array | None,
    bias: Array | None,
    out: Array,
    packed: Array | None = None,
    pack_bias: Array | None = None,
    pack_zero_to: int = 0,
) -> None: ...
def conv2d_max_pool(
    geometry: dict[str, int],
    x: Array,
    w: Array,
    scale: Array | None,
    bias: Array | None,
    y0: Array,
    y1: Array,
    x0: Array,
    x1: Array,
    out: Array,
) -> None: ...
def nchw_to_nhwc(x: Array, out: Array) -> None: ...
def pool2d(
    is_max: bool, x: Array, y0: Array, y1: Array, x0: Array, x1: Array, divisor: Array | None, out: Array
) -> None: ...
def dense(x: Array, w: Array, bias: Array | None, out: Array) -> None: ...
def global_avg_pool(x: Array, out: Array) -> None: ...

# ---- BWN layers
BWN_GEOMETRY: tuple[str, ...]

def bwn_conv_lanes(packed: Array, c: int, groups: int, lanes: Array) -> None: ...
def bwn_conv_lane_words(c: int, groups: int, o: int, kh: int, kw: int) -> int: ...
def bwn_conv2d(
    geometry: dict[str, int],
    x: Array,
    lanes: Array,
    alpha: Array,
    bias: Array | None,
    out: Array,
    relu: bool = False,
    in_scale: Array | None = None,
    in_shift: Array | None = None,
) -> None: ...
def bwn_dense_lane_words(inp: int, o: int) -> int: ...
def bwn_dense_lanes(packed: Array, inp: int, lanes: Array) -> None: ...
def bwn_dense(x: Array, lanes: Array, alpha: Array, bias: Array | None, out: Array) -> None: ...
