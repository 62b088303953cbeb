"""Runs a graph: nodes compiled once (weights laid out for the kernels), then executed in order
with each intermediate released after its last reader and its buffer reused by a later layer of
the same shape. A concat of binary convolutions costs nothing: each convolution writes its
channel slice of the concat's buffer directly."""

from __future__ import annotations

import time

import numpy as np

from .._runtime import blas_single_threaded
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
        self._slice_of, self._inplace = self._plan_concats()

    def _plan_concats(self):
        """{producer output: (concat output, first channel, last channel)} and the set of concats
        built in place: those whose inputs are distinct binary convs that nothing else reads."""
        graph, producer, readers = self.graph, self.graph.producer(), self.graph.consumers()
        slice_of, inplace = {}, set()
        for node in graph.nodes:
            if node.op != "concat" or len(set(node.inputs)) != len(node.inputs):
                continue
            parts = [producer.get(name) for name in node.inputs]
            if not all(p is not None and p.op == "bconv2d" and len(readers[p.output]) == 1
                       and p.output != graph.output for p in parts):
                continue
            start = 0
            for p in parts:
                width = p.params["weight_bits"].shape[0]
                slice_of[p.output] = (node.output, start, start + width)
                start += width
            inplace.add(node.output)
        return slice_of, inplace

    def shapes_for(self, input_shape: tuple[int, ...]):
        """Tensor infos for another input size (global pooling nets accept any)."""
        infos = self._shape_cache.get(input_shape)
        if infos is None:
            infos = infer_shapes(self.graph, input_shape)
            self._shape_cache[input_shape] = infos
        return infos

    def run(self, x: np.ndarray, overrides: dict | None = None, capture=(), timings: dict | None = None) -> np.ndarray:
        """x: float32 NHWC (N, H, W, C), already validated. Returns the output tensor.

        For layer-by-layer checks: `overrides` maps tensor names to arrays that replace what the
        graph computed for them (downstream layers read the given values), and the values computed
        for the names in `capture` are stored in the dict `self.captured`. For profiles: a
        `timings` dict receives each node's seconds under its name."""
        try:
            infos = self.shapes_for(tuple(x.shape[1:]))
        except GraphError as exc:
            raise ValueError(f"input of shape {x.shape[1:]} (H, W, C) does not fit this model: {exc}") from None
        batch = x.shape[0]
        self.captured = {}
        values = {self.graph.input: x}
        pool: dict[tuple, list[np.ndarray]] = {}
        reusable: set[str] = set()  # tensors whose buffers the executor allocated itself

        def buffer(name, dtype):
            key = ((batch,) + infos[name].shape, np.dtype(dtype))
            return pool[key].pop() if pool.get(key) else None

        with _validate.trusted(), blas_single_threaded():
            for (node, run, writes_into), dead in zip(self._steps, self._release):
                name = node.output
                began = time.perf_counter() if timings is not None else 0.0
                if name in self._slice_of:
                    concat, start, stop = self._slice_of[name]
                    if concat not in values:
                        values[concat] = buffer(concat, np.float32)
                        if values[concat] is None:
                            values[concat] = np.empty((batch,) + infos[concat].shape, np.float32)
                        reusable.add(concat)
                    values[name] = run(*(values[i] for i in node.inputs), out=values[concat][..., start:stop])
                elif name not in self._inplace:  # an in-place concat's buffer is already full
                    out = buffer(name, writes_into[0]) if writes_into else None
                    values[name] = run(*(values[i] for i in node.inputs), out=out)
                    if writes_into:
                        reusable.add(name)
                if timings is not None:
                    timings[node.name] = time.perf_counter() - began
                if name in capture:
                    self.captured[name] = values[name].copy()
                if overrides and name in overrides:
                    if name in self._slice_of:
                        concat, start, stop = self._slice_of[name]
                        values[concat][..., start:stop] = overrides[name]
                    else:
                        values[name] = overrides[name]
                        reusable.discard(name)
                for dead_name in dead:
                    array = values.pop(dead_name)
                    if dead_name in reusable:
                        pool.setdefault((array.shape, array.dtype), []).append(array)
        return values[self.graph.output]
