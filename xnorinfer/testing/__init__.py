"""Property-test a converted model against its float reference: the float64 interpreter of its
stored graph (`reference_predict`), `compare` with a layer-by-layer report, and assertions for
pytest. Needs only NumPy; torch for torch references, hypothesis for `xnorinfer.testing.strategies`
(the `testing` extra). See docs/testing.md."""

from .compare import LayerResult, Report, SignFlip, assert_matches_reference, assert_matches_torch, compare, near_tie
from .reference import REFERENCE_OPS, reference_op, reference_predict, reference_trace

__all__ = [
    "LayerResult",
    "REFERENCE_OPS",
    "Report",
    "SignFlip",
    "assert_matches_reference",
    "assert_matches_torch",
    "compare",
    "near_tie",
    "reference_op",
    "reference_predict",
    "reference_trace",
]
