"""The layers of binary networks as functions on NHWC float32 or bit-packed arrays.

Binary layers (`binary`): bit packing, XNOR-popcount convolution and dense layers.
BWN layers (`bwn`): float activations, 1-bit weights with a per-output-channel scale.
Float layers (`float_ops`): the first and last layers, normalisation, activations, pooling.
Layout layers (`layout`): strided slices, constant padding, channel shuffles."""

from .binary import (
    BinaryConvWeights,
    BinaryDenseWeights,
    bconv2d,
    bdense,
    pack_signs,
    packed_words,
    unpack_signs,
)
from .bwn import BWNConvWeights, BWNDenseWeights, bwn_conv2d, bwn_dense
from .float_ops import *  # noqa: F401,F403
from .float_ops import __all__ as _float_all
from .layout import *  # noqa: F401,F403
from .layout import __all__ as _layout_all

__all__ = [
    "BWNConvWeights",
    "BWNDenseWeights",
    "BinaryConvWeights",
    "BinaryDenseWeights",
    "bconv2d",
    "bdense",
    "bwn_conv2d",
    "bwn_dense",
    "pack_signs",
    "packed_words",
    "unpack_signs",
    *_float_all,
    *_layout_all,
]
