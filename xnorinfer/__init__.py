"""xnorinfer: a CPU inference engine for binarized neural networks."""

from . import convert, ops
from ._runtime import (
    _apply_environment,
    available_isas,
    get_isa,
    get_num_threads,
    set_isa,
    set_num_threads,
    show_config,
)
from ._version import __version__
from .classify import classify
from .format import ModelFormatError
from .model import Model, load
from .preprocess import ImageError

_apply_environment()
del _apply_environment

__all__ = [
    "__version__",
    "available_isas",
    "get_isa",
    "get_num_threads",
    "ImageError",
    "Model",
    "ModelFormatError",
    "classify",
    "convert",
    "load",
    "ops",
    "set_isa",
    "set_num_threads",
    "show_config",
]
