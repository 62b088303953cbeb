"""Runs a graph: nodes compiled once (weights laid out for the kernels); then, per input shape, a
plan: every intermediate gets a buffer once (a buffer is reused by a later layer of the same shape
once its tensor's last reader has run) and every layer is bound to its buffers with its arguments
checked once, so that a run is a loop of kernel calls. A concat of binary convolutions costs
nothing: each convolution writes its channel slice of the concat's buffer directly."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

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
        self._node_output = {node.name: node.output for node in graph.nodes}
        self._local = threading.local()  # plans hold buffers: one set per thread

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

    def plan(self, input_shape: tuple[int, ...]) -> "_Plan":
        """The plan for an (N, H, W, C) input in this thread (the last few are kept)."""
        plans = getattr(self._local, "plans", None)
        if plans is None:
            plans = self._local.plans = OrderedDict()
        plan = plans.get(input_shape)
        if plan is None:
            try:
                infos = self.shapes_for(input_shape[1:])
            except GraphError as exc:
                raise ValueError(f"input of shape {input_shape[1:]} (H, W, C) does not fit this model: {exc}") from None
            with _validate.trusted():  # the buffers hold no values yet; the shapes are checked
                plan = plans[input_shape] = _Plan(self, infos, input_shape[0])
            while len(plans) > MAX_PLANS:
                plans.popitem(last=False)
        plans.move_to_end(input_shape)
        return plan

    def run(self, x: np.ndarray, overrides: dict | None = None, capture=(), timings: dict | None = None) -> np.ndarray:
        """x: float32 NHWC (N, H, W, C), already validated. Returns a new array holding the output.

        For layer-by-layer checks: `overrides` maps tensor names to arrays that replace what the
        graph computed for them (downstream layers read the given values), and the values computed
        for the names in `capture` are stored in the dict `self.captured`. For profiles: a
        `timings` dict receives each node's seconds under its name."""
        plan = self.plan(tuple(x.shape))
        self.captured = {}
        if x.shape[0] == 0:
            return np.zeros(plan.output.shape, np.float32)
        np.copyto(plan.input, x)
        with _validate.trusted(), blas_single_threaded():
            if not (overrides or capture or timings is not None):
                for _, call in plan.steps:
                    call()
            else:
                for name, call in plan.steps:
                    began = time.perf_counter()
                    call()
                    if timings is not None:
                        timings[name] = time.perf_counter() - began
                    output = plan.buffers[self._node_output[name]]
                    if self._node_output[name] in capture:
                        self.captured[self._node_output[name]] = output.copy()
                    if overrides and self._node_output[name] in overrides:
                        np.copyto(output, overrides[self._node_output[name]])
        return plan.output.copy()


MAX_PLANS = 2  # per thread: e.g. full batches and a last, shorter one


class _Plan:
    """One input shape's buffers and bound layers: `steps` is [(node name, call)]."""

    def __init__(self, executor: Executor, infos, batch: int):
        graph = executor.graph
        self.input = np.empty((batch,) + infos[graph.input].shape, np.float32)
        buffers = {graph.input: self.input}
        free: dict[tuple, list[np.ndarray]] = {}  # buffers whose tensors are dead, by (shape, dtype)
        owned: set[str] = set()  # tensors whose buffers the plan allocated (views and the input are not)

        def allocate(name, dtype):
            key = ((batch,) + infos[name].shape, np.dtype(dtype))
            owned.add(name)
            return free[key].pop() if free.get(key) else np.empty(key[0], key[1])

        self.steps = []
        for (node, run, writes_into), dead in zip(executor._steps, executor._release):
            name = node.output
            dtype = np.uint64 if infos[name].packed else np.float32
            if name in executor._slice_of:
                concat, start, stop = executor._slice_of[name]
                if concat not in buffers:
                    buffers[concat] = allocate(concat, np.float32)
                buffers[name] = buffers[concat][..., start:stop]
            elif name not in buffers:
                buffers[name] = allocate(name, dtype)
            if name in executor._inplace:  # its buffer is full already; the step stays for overrides
                call = _nothing
            else:
                call = _bind(run, writes_into, [buffers[i] for i in node.inputs], buffers[name])
            self.steps.append((node.name, call))
            for dead_name in dead:
                if dead_name in owned:
                    array = buffers[dead_name]
                    free.setdefault((array.shape, array.dtype), []).append(array)
        self.buffers = buffers
        self.output = buffers[graph.output]


def _nothing():
    pass


def _bind(run, writes_into, inputs, out):
    """A no-argument call computing the layer into out."""
    if hasattr(run, "bind"):
        return run.bind(inputs, out)
    if writes_into:
        return lambda: run(*inputs, out=out)
    return lambda: np.copyto(out, run(*inputs))
