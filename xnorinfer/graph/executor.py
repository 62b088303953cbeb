"""Runs a graph: nodes compiled once (weights laid out for the kernels), then executed in order
with each intermediate released after its last reader and its buffer reused by a later layer of
the same shape."""

from __future__ import annotations

import numpy as np

from ..ops import _validate
from .ir import Graph, GraphError
from .opset import OPS, infer_shapes


class Executor:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.infos = infer_shapes(graph)
        self._shape_cache = {graph.input_shape: self.infos}
        self._steps = [(node, OPS[node.op].compile(node), OPS[node.op].writes_into) for node in graph.nodes]
        last_read = {}
        for i, node in enumerate(graph.nodes):
            for name in node.inputs:
                last_read[name] = i
        # After step i, these tensors are dead; the graph input and output never are.
        self._release = [[] for _ in graph.nodes]
        for name, i in last_read.items():
            if name not in (graph.input, graph.output):
                self._release[i].append(name)

    def shapes_for(self, input_shape: tuple[int, ...]):
        """Tensor infos for another input size (global pooling nets accept any)."""
        infos = self._shape_cache.get(input_shape)
        if infos is None:
            infos = infer_shapes(self.graph, input_shape)
            self._shape_cache[input_shape] = infos
        return infos

    def run(self, x: np.ndarray, overrides: dict | None = None, capture=()) -> np.ndarray:
        """x: float32 NHWC (N, H, W, C), already validated. Returns the output tensor.

        For layer-by-layer checks: `overrides` maps tensor names to arrays that replace what the
        graph computed for them (downstream layers read the given values), and the values computed
        for the names in `capture` are stored in the dict `self.captured`."""
        try:
            infos = self.shapes_for(tuple(x.shape[1:]))
        except GraphError as exc:
            raise ValueError(f"input of shape {x.shape[1:]} (H, W, C) does not fit this model: {exc}") from None
        batch = x.shape[0]
        self.captured = {}
        values = {self.graph.input: x}
        pool: dict[tuple, list[np.ndarray]] = {}
        reusable: set[str] = set()  # tensors whose buffers the executor allocated itself
        with _validate.trusted():
            for (node, run, writes_into), dead in zip(self._steps, self._release):
                out = None
                if writes_into:
                    key = ((batch,) + infos[node.output].shape, np.dtype(writes_into[0]))
                    out = pool[key].pop() if pool.get(key) else None
                values[node.output] = run(*(values[name] for name in node.inputs), out=out)
                if writes_into:
                    reusable.add(node.output)
                if node.output in capture:
                    self.captured[node.output] = values[node.output].copy()
                if overrides and node.output in overrides:
                    values[node.output] = overrides[node.output]
                    reusable.discard(node.output)
                for name in dead:
                    array = values.pop(name)
                    if name in reusable:
                        pool.setdefault((array.shape, array.dtype), []).append(array)
        return values[self.graph.output]
