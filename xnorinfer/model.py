"""Model: a graph with its metadata, optimised and compiled once, run on NumPy arrays."""

from __future__ import annotations

import io
import math
import os

import numpy as np

from . import _runtime, shipped
from . import format as model_format
from .graph import Executor, Graph, infer_shapes, optimize
from .graph.opset import node_macs
from .graph.passes import step_name, step_op, step_writes, steps
from .ops.binary import pack_signs, unpack_signs
from .ops.float_ops import nchw_to_nhwc

LAYOUTS = ("NCHW", "NHWC")
# predict's default: images at once while their intermediates fit in this many bytes, about a
# last-level cache: a larger batch spills it (ReActNet-A, 6.4 MB an image, runs more images a
# second 2 at a time than 16 at a time).
WORKING_SET_BYTES = 16 << 20


class Model:
    """A loaded binary network.

    `metadata` holds what the converter recorded: arch, classes, input_size (C, H, W),
    preprocessing mean/std, source checkpoint sha256."""

    def __init__(self, graph: Graph, metadata: dict | None = None):
        infos = infer_shapes(graph)  # the graph as stored must be valid, not only its optimised form
        self.graph = graph
        self.metadata = dict(metadata or {})
        model_format.check_metadata(self.metadata, graph, infos)  # classify trusts what it reads there
        self._executor = Executor(optimize(graph))
        self._trace_executor = None  # built on the first trace: most models are never traced

    # ---- inference ------------------------------------------------------------------------------

    @property
    def input_size(self) -> tuple[int, int, int]:
        """(C, H, W) the model was built for."""
        h, w, c = self.graph.input_shape
        return c, h, w

    def predict(self, x, layout: str = "NCHW", batch_size: int | None = None) -> np.ndarray:
        """Run the network on a batch: float (N, C, H, W) like PyTorch, or (N, H, W, C) with
        layout="NHWC". Returns float32 (N, outputs), e.g. logits. `batch_size`: images run at once
        (memory grows with it); by default as many as keep the intermediates within
        WORKING_SET_BYTES (16 MB; `default_batch_size`)."""
        _runtime.warn_if_forked()
        nhwc = self._as_nhwc(x, layout)
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        step = batch_size or self.default_batch_size(nhwc.shape[1:])
        parts = [self._run_finite(nhwc[i : i + step]) for i in range(0, max(len(nhwc), 1), step)]
        return np.concatenate(parts) if len(parts) != 1 else parts[0]

    def _as_nhwc(self, x, layout: str) -> np.ndarray:
        """x checked and as a C-contiguous float32 NHWC batch."""
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if not isinstance(x, np.ndarray):
            raise TypeError(f"x must be a numpy.ndarray, got {type(x).__name__}")
        if x.dtype.kind != "f":
            raise TypeError(
                f"x must be a float array (normalised pixels), got dtype {x.dtype}; "
                "use xnorinfer.classify for raw images"
            )
        if x.ndim != 4:
            raise ValueError(f"x must be a 4-D batch ({layout}), got shape {x.shape}; add a batch axis with x[None]")
        c = self.graph.input_shape[2]
        if x.shape[1 if layout == "NCHW" else 3] != c:
            raise ValueError(
                f"the model takes {c} input channels, x has {x.shape[1 if layout == 'NCHW' else 3]} "
                f"(layout {layout}, shape {x.shape})"
            )
        if layout == "NCHW":
            nhwc = nchw_to_nhwc(np.ascontiguousarray(x, dtype=np.float32))
        else:
            nhwc = np.ascontiguousarray(x, dtype=np.float32)
        if not np.isfinite(nhwc).all():
            raise ValueError("x contains NaN or infinite values")
        return nhwc

    def trace(self, x, layout: str = "NCHW", overrides: dict | None = None) -> dict[str, np.ndarray]:
        """Run the stored graph, unfused, through the kernels and return every node's output:
        {node name: float32 array}, maps in x's layout (NCHW by default, like predict), bit-packed
        signs unpacked to +1/-1. Models from converters name nodes by the PyTorch modules they
        compute (a module's helper nodes are "module/suffix").

        `overrides` ({node name: array in that layout, signs as +-1}) replaces what those nodes
        compute: downstream nodes read the given values, so each layer can be fed a reference's
        own inputs (the returned values of overridden nodes are still what the engine computed).
        Unfused, so a difference points at one stored layer; `predict` runs the optimised graph."""
        nhwc = self._as_nhwc(x, layout)
        if self._trace_executor is None:
            self._trace_executor = Executor(self.graph)
        executor = self._trace_executor
        infos = executor._infos(nhwc.shape[1:])
        by_name = {node.name: node.output for node in self.graph.nodes}
        fed = {}
        for name, value in (overrides or {}).items():
            if name not in by_name:
                raise KeyError(f"overrides: the model has no node {name!r}")
            info = infos[by_name[name]]
            value = np.asarray(value, np.float32)
            if value.ndim == 4 and layout == "NCHW":
                value = nchw_to_nhwc(np.ascontiguousarray(value))
            want = (len(nhwc),) + (info.shape[:-1] + (info.channels,))
            if value.shape != want:
                raise ValueError(f"overrides[{name!r}] has shape {value.shape}, the node's output is {want} (NHWC)")
            fed[by_name[name]] = pack_signs(np.ascontiguousarray(value), groups=info.groups) if info.packed else value
        executor.run(nhwc, overrides=fed, capture=set(by_name.values()))
        result = {}
        for name, tensor in by_name.items():
            value, info = executor.captured[tensor], infos[tensor]
            if info.packed:
                value = unpack_signs(value, info.packed_channels, info.groups)
            result[name] = value.transpose(0, 3, 1, 2) if value.ndim == 4 and layout == "NCHW" else value
        return result

    def _optimised_signs(self, nhwc: np.ndarray) -> dict[str, np.ndarray]:
        """{sign node name: +-1 float32 NHWC} as predict's optimised graph decides them (folded
        thresholds, fused epilogues): where a near tie flipped predict, not the unfused trace."""
        executor = self._executor
        infos = executor._infos(nhwc.shape[1:])
        packs = {node.output: node.name for node in executor.graph.nodes if node.op == "pack_signs"}
        executor.run(nhwc, capture=set(packs))
        return {
            name: unpack_signs(executor.captured[t], infos[t].packed_channels, infos[t].groups)
            for t, name in packs.items()
        }

    def _run_finite(self, x: np.ndarray) -> np.ndarray:
        """The executor's output for finite x, which must be finite too: only the output is
        checked; after a NaN or infinity the layers are re-run one by one to name the culprit."""
        try:
            out = self._executor.run(x)
            if np.isfinite(out).all():
                return out
        except ValueError:  # a kernel met a NaN where it takes a sign: an overflow upstream
            pass
        node = self._executor.first_non_finite(x)
        where = f"layer {node.name!r} ({node.op}) is the first to produce" if node else "the layers produce"
        raise FloatingPointError(
            f"{where} NaN or infinite values from finite input: float32 overflow "
            "(the model's parameters are too large for this input)"
        )

    def default_batch_size(self, image_shape: tuple[int, int, int]) -> int:
        """Images `predict` runs at once for (H, W, C) images when not told: at least 1."""
        return max(1, WORKING_SET_BYTES // max(1, self._executor.bytes_per_image(tuple(image_shape))))

    # ---- files ----------------------------------------------------------------------------------

    def save(self, path) -> None:
        """Write the model to a .xnr file (or a binary file object)."""
        model_format.save(self.graph, self.metadata, path)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        self.save(buf)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Model:
        return load(data)

    def __reduce__(self):
        # Pickles as its file bytes, so multiprocessing workers rebuild it with the same checks.
        return (Model.from_bytes, (self.to_bytes(),))

    # ---- description ----------------------------------------------------------------------------

    def summary(self) -> str:
        """A table of what a run calls, one line a step, after the passes: the layer (a block's
        members after its first: a binary conv with its pointwise convs, a conv with its max
        pooling), output shape, parameters, MACs, and the tensors its kernel writes besides its
        output (a concat's channel slice, a packer's signs): those concats and packers make no
        call of their own."""
        graph, infos = self._executor.graph, self._executor.infos
        rows = [("step", "op", "output", "params", "binary MACs", "float MACs", "also writes")]
        for members in steps(graph):
            macs = [node_macs(node, infos) for node in members]
            binary, flt = sum(m[0] for m in macs), sum(m[1] for m in macs)
            params = sum(int(p.size) * (64 if p.dtype == np.uint64 else 1) for n in members for p in n.params.values())
            rows.append(
                (
                    step_name(members),
                    step_op(members),
                    str(infos[members[-1].output]),
                    f"{params:,}" if params else "",
                    f"{binary:,}" if binary else "",
                    f"{flt:,}" if flt else "",
                    "; ".join(step_writes(members, graph)),
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "-" * len(lines[0]))
        every = [node_macs(node, infos) for node in graph.nodes]
        total_bin, total_float = sum(b for b, _ in every), sum(f for _, f in every)
        meta = ", ".join(f"{k}={self.metadata[k]}" for k in ("arch", "dataset") if k in self.metadata)
        binary_weights = sum(int(p.size) * 64 for n in graph.nodes for k, p in n.params.items() if k.endswith("_bits"))
        lines += [
            "",
            f"model: {meta or 'unnamed'}; input (C, H, W) {self.input_size}",
            f"binary MACs {total_bin:,} ({total_bin / 1e9:.3f} G), float MACs {total_float:,} "
            f"({total_float / 1e6:.1f} M); binary weight bits (word-padded) {binary_weights:,}",
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Model(arch={self.metadata.get('arch', '?')!r}, input_size={self.input_size})"


def load(path) -> Model:
    """Load a .xnr model from a path, a shipped model's name ("cifar10_reactnet", when no file of
    that name exists; see xnorinfer.shipped), a binary file object or bytes. Raises
    ModelFormatError for anything wrong with the file (format.load's limits and schema) and for a
    model whose one image needs more than MAX_ARENA_BYTES of working memory."""
    if isinstance(path, (str, os.PathLike)):
        path = shipped.resolve(path)
    where = os.fspath(path) if isinstance(path, (str, os.PathLike)) else "model data"
    graph, metadata = model_format.load(path)
    try:
        model = Model(graph, metadata)
    except ValueError as exc:  # a layer refused its weights while being compiled
        raise model_format.ModelFormatError(f"{where}: inconsistent model: {exc}") from None
    shape = graph.input_shape
    needed = 4 * math.prod(shape) + model._executor.bytes_per_image(shape)
    if needed > model_format.MAX_ARENA_BYTES:
        raise model_format.ModelFormatError(
            f"{where}: one {shape[0]}x{shape[1]}x{shape[2]} input needs {needed:,} bytes of working memory, more than "
            f"the limit of {model_format.MAX_ARENA_BYTES:,}"
        )
    return model
