"""Runs a graph: nodes compiled once (weights laid out for the kernels); then, per input shape, a
plan: every intermediate gets its bytes of one arena once (tensors alive at different times share
bytes) and every layer is bound to its buffers with its arguments checked once, so that a run is a
loop of kernel calls.

The nodes' plans (Node.plan, written by graph.passes.schedule) say which layers run together, and
the executor follows them: a concat built in place by the binary convs writing its channel slices,
a sign packer whose words its input convs write from their epilogue (and no floats where
`bits_only`), a block of layers run as one call (a binary conv and its pointwise convs tile by
tile, ops.binary.bind_bconv2d_block; a float conv and its max pooling a few rows at a time,
ops.float_ops.bind_conv2d_max_pool). A graph without plans runs node by node."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

import numpy as np

from ..ops import _validate
from .ir import Graph, GraphError
from .opset import OPS, Bound, infer_shapes, pack_zero_to


class Executor:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.infos = infer_shapes(graph)
        self._shape_cache = _LRU(MAX_CACHED_SHAPES)  # input shape -> tensor infos
        self._shape_cache[graph.input_shape] = self.infos
        self._steps = [(node, OPS[node.op].compile(node)) for node in graph.nodes]
        last_read = {}
        for i, node in enumerate(graph.nodes):
            for name in node.inputs:
                last_read[name] = i
        # After step i, these tensors are dead; the graph input and output never are.
        self._release = [[] for _ in graph.nodes]
        for name, i in last_read.items():
            if name not in (graph.input, graph.output):
                self._release[i].append(name)
        # The plans, indexed for binding: {conv output: (concat output, first channel, end channel)}
        # and the concats those build, {conv output: (packer node, its first channel)}, the outputs
        # of convs writing only packed signs, {first layer: ([the layers run with it], binder of
        # their bound calls)} and the outputs a block never writes (a conv's, pooled as computed).
        by_name = {node.name: node for node in graph.nodes}
        planned = [(node, node.plan) for node in graph.nodes if node.plan]
        self._slice_of = {node.output: plan["writes_slice_of"] for node, plan in planned if "writes_slice_of" in plan}
        self._inplace = {node.output for node, plan in planned if plan.get("built_in_place")}
        self._packs_of = {
            node.output: (by_name[plan["packs_into"][0]], plan["packs_into"][1])
            for node, plan in planned
            if "packs_into" in plan
        }
        self._bits_only = {node.output for node, plan in planned if plan.get("bits_only")}
        self._blocks = {
            node.name: (list(plan["block"]), OPS[node.op].bind_block) for node, plan in planned if "block" in plan
        }
        self._unwritten = {node.output for node, plan in planned if plan.get("output_unwritten")}
        self._local = threading.local()  # plans hold buffers: one set per thread
        self._image_bytes = _LRU(MAX_CACHED_SHAPES)  # input shape -> bytes_per_image

    def shapes_for(self, input_shape: tuple[int, ...]):
        """Tensor infos for another input size (global pooling nets accept any)."""
        infos = self._shape_cache.get(input_shape)
        if infos is None:
            infos = self._shape_cache[input_shape] = infer_shapes(self.graph, input_shape)
        return infos

    def bytes_per_image(self, input_shape: tuple[int, ...]) -> int:
        """Bytes of a plan's arena per image of (H, W, C): the intermediates' working set."""
        size = self._image_bytes.get(input_shape)
        if size is None:
            infos = self._infos(input_shape)
            size = self._image_bytes[input_shape] = _arena_layout(_lifetimes(self, infos, 1, *_fusions(self, 1, True)))[
                1
            ]
        return size

    def _infos(self, input_shape: tuple[int, ...]):
        try:
            return self.shapes_for(input_shape)
        except GraphError as exc:
            raise ValueError(f"input of shape {input_shape} (H, W, C) does not fit this model: {exc}") from None

    def plan(self, input_shape: tuple[int, ...], fuse_packs: bool = True) -> _Plan:
        """The plan for an (N, H, W, C) input in this thread (the last few are kept). Without
        fuse_packs every packer runs on its own, reading the float tensor (for overrides)."""
        plans = getattr(self._local, "plans", None)
        if plans is None:
            plans = self._local.plans = _LRU(MAX_PLANS)
        key = (input_shape, fuse_packs)
        plan = plans.get(key)
        if plan is None:
            infos = self._infos(input_shape[1:])
            with _validate.trusted():  # the buffers hold no values yet; the shapes are checked
                plan = plans[key] = _Plan(self, infos, input_shape[0], fuse_packs)
        return plan

    def run(self, x: np.ndarray, overrides: dict | None = None, capture=(), timings: dict | None = None) -> np.ndarray:
        """x: float32 NHWC (N, H, W, C), already validated. Returns a new array holding the output.

        For layer-by-layer checks: `overrides` maps tensor names to arrays that replace what the
        graph computed for them (downstream layers read the given values), and the values computed
        for the names in `capture` are stored in the dict `self.captured`. For profiles: a
        `timings` dict receives each node's seconds under its name."""
        plan = self.plan(tuple(x.shape), fuse_packs=not (overrides or capture))
        self.captured = {}
        if x.shape[0] == 0:
            return np.zeros(plan.output.shape, np.float32)
        np.copyto(plan.input, x)
        with _validate.trusted():
            if not (overrides or capture or timings is not None):
                for _, _, call in plan.steps:
                    call()
            else:
                for name, output, call in plan.steps:
                    began = time.perf_counter()
                    call()
                    if timings is not None:
                        timings[name] = time.perf_counter() - began
                    if output in capture:
                        self.captured[output] = plan.buffers[output].copy()
                    if overrides and output in overrides:
                        np.copyto(plan.buffers[output], overrides[output])
        return plan.output.copy()

    def first_non_finite(self, x: np.ndarray):
        """The first node whose float output has a NaN or infinity for input x (or that refuses
        one, as a sign does), running every layer on its own; None if all stay finite. Slow: run
        once, after a run's output was not finite."""
        plan = self.plan(tuple(x.shape), fuse_packs=False)
        np.copyto(plan.input, x)
        nodes = {node.name: node for node in self.graph.nodes}
        with _validate.trusted():
            for name, output, call in plan.steps:
                try:
                    call()
                except ValueError:  # a sign of NaN, met by a kernel
                    return nodes[name]
                value = plan.buffers[output]
                if value is not None and value.dtype.kind == "f" and not np.isfinite(value).all():
                    return nodes[name]
        return None


MAX_PLANS = 2  # per thread: e.g. full batches and a last, shorter one
# Input shapes whose tensor infos and arena sizes are kept: a service fed images of many sizes
# (global pooling nets take any) would otherwise grow them without end (4,096 sizes: +34 MB).
MAX_CACHED_SHAPES = 64


class _LRU(OrderedDict):
    """A dict that keeps its `maxsize` most recently used entries; `get` and setting an item
    are atomic, so threads sharing an executor may share it."""

    def __init__(self, maxsize: int):
        super().__init__()
        self.maxsize = maxsize
        self._lock = threading.Lock()

    def get(self, key, default=None):
        with self._lock:
            if key not in self:
                return default
            self.move_to_end(key)
            return self[key]

    def __setitem__(self, key, value):
        with self._lock:
            super().__setitem__(key, value)
            self.move_to_end(key)
            while len(self) > self.maxsize:
                self.popitem(last=False)


class _Plan:
    """One input shape's buffers and bound layers: `steps` is [(node name, output name, call)].

    The intermediates live in one arena: each gets a byte range for the steps from its first
    writer to its last reader, and tensors alive at the same time never share bytes. Packing them
    tightly (largest first, each at the lowest offset free for its lifetime, as TensorFlow Lite's
    greedy planner does) keeps a run's working set small, so that the layers find their inputs,
    outputs and weights in cache rather than in memory."""

    def __init__(self, executor: Executor, infos, batch: int, fuse_packs: bool):
        graph = executor.graph
        packs_of, blocks = _fusions(executor, batch, fuse_packs)
        fused_packs = {pack.output for pack, _ in packs_of.values()}
        lifetimes = _lifetimes(executor, infos, batch, packs_of, blocks)
        offsets, size = _arena_layout(lifetimes)
        arena = _aligned_bytes(size)
        buffers = {graph.input: np.empty((batch,) + infos[graph.input].shape, np.float32)}
        for name, offset in offsets.items():
            dtype = np.uint64 if infos[name].packed else np.float32
            raw = arena[offset : offset + lifetimes[name][0]]
            buffers[name] = raw.view(dtype).reshape((batch,) + infos[name].shape)
        if blocks:  # never touched, so their pages are never backed by memory
            buffers.update({name: np.empty((batch,) + infos[name].shape, np.float32) for name in executor._unwritten})

        self.steps = []
        bound = {}  # the bound calls of blocks' convolutions, by node name
        in_block = {name for rest, _ in blocks.values() for name in rest} | set(blocks)
        for node, run in executor._steps:
            name = node.output
            fused = {}
            if name in packs_of:  # this conv writes (its words of) the packer's output too
                pack, first = packs_of[name]
                bias = pack.params.get("bias")
                if bias is not None:  # this conv's channels of the packer's bias
                    bias = bias.reshape(-1)[first : first + infos[name].shape[-1]]
                fused = dict(packed=buffers[pack.output], pack_bias=bias, pack_zero_to=pack_zero_to(pack))
                if node.op == "bconv2d":
                    fused.update(first_channel=first, float_out=name not in executor._bits_only)
            if name in executor._slice_of:
                concat, start, stop = executor._slice_of[name]
                buffers[name] = buffers[concat][..., start:stop]
            buffers.setdefault(name, None)  # a convolution that writes only packed signs
            if name in executor._inplace or name in fused_packs:
                call = _nothing  # its output is written already; the step stays for timings
            else:
                call = _bind(run, [buffers[i] for i in node.inputs], buffers[name], fused)
            if node.name in in_block:
                bound[node.name] = call
            self.steps.append((node.name, name, call))
        for i, (node_name, name, call) in enumerate(self.steps):
            if node_name in blocks:  # the block runs at its first layer; the others are done then
                rest, binder = blocks[node_name]
                self.steps[i] = (node_name, name, binder(call, [bound[r] for r in rest]))
                for j, (other, other_output, _) in enumerate(self.steps):
                    if other in rest:
                        self.steps[j] = (other, other_output, _nothing)
        self.input = buffers[graph.input]
        self.buffers = buffers
        self.output = buffers[graph.output]
        self.arena_bytes = size


def _fusions(executor: Executor, batch: int, fuse_packs: bool):
    """(fused packers, blocks) of a plan: none without fuse_packs (every layer runs on its own, for
    overrides and captures), and no blocks for an empty batch (it binds no-ops)."""
    return (executor._packs_of if fuse_packs else {}), (executor._blocks if fuse_packs and batch > 0 else {})


def _lifetimes(executor: Executor, infos, batch: int, packs_of, blocks) -> dict[str, list[int]]:
    """{tensor: [bytes, first step, last step]} for the tensors a plan places in its arena."""
    graph = executor.graph
    release = _release_steps(graph, executor._release, blocks)
    unwritten = executor._unwritten if blocks else set()

    def owns(node):
        """The tensors a step writes first (the packer's words, the concat, its output)."""
        name = node.output
        if name in packs_of:
            yield packs_of[name][0].output
        if name in executor._slice_of:
            yield executor._slice_of[name][0]
        elif not (name in packs_of and node.op == "bconv2d" and name in executor._bits_only) and name not in unwritten:
            yield name

    lifetimes = {}
    for i, node in enumerate(graph.nodes):
        for name in owns(node):
            nbytes = batch * math.prod(infos[name].shape) * (8 if infos[name].packed else 4)  # no int64 wrap
            lifetimes.setdefault(name, [nbytes, i, len(graph.nodes)])
        for name in release[i]:
            if name in lifetimes:
                lifetimes[name][2] = i
    return lifetimes


def _release_steps(graph, release, blocks):
    """For each step, the tensors dead after it. A block's outputs are written while its first
    layer runs, so what dies inside the block lives on to its last layer (the buffers the block
    reads must not serve its outputs)."""
    release = [list(dead) for dead in release]
    for i, node in enumerate(graph.nodes):
        if node.name in blocks:
            rest = blocks[node.name][0]
            last = next(j for j in range(len(graph.nodes) - 1, i, -1) if graph.nodes[j].name in rest)
            release[last] += [name for j in range(i, last) for name in release[j]]
            for j in range(i, last):
                release[j] = []
    return release


ALIGN = 64  # bytes: every tensor starts on a cache line


def _arena_layout(lifetimes):
    """({tensor: byte offset}, arena bytes) for {tensor: (bytes, first step, last step)}: the
    largest tensors placed first, each at the lowest aligned offset that no tensor placed before
    it and alive during any of its steps occupies."""
    offsets, placed, size = {}, [], 0  # placed: (offset, end, first, last)
    for name, (nbytes, first, last) in sorted(lifetimes.items(), key=lambda kv: (-kv[1][0], kv[1][1])):
        offset = 0
        for start, end, _, _ in sorted(p for p in placed if p[2] <= last and first <= p[3]):
            if offset + nbytes <= start:
                break
            offset = max(offset, end)
        offsets[name] = offset
        placed.append((offset, offset + -(-nbytes // ALIGN) * ALIGN, first, last))
        size = max(size, placed[-1][1])
    return offsets, size


def _aligned_bytes(size: int) -> np.ndarray:
    """`size` bytes starting on a cache line."""
    raw = np.empty(size + ALIGN, np.uint8)
    skip = -raw.__array_interface__["data"][0] % ALIGN
    return raw[skip : skip + size]


def _nothing():
    pass


def _bind(run, inputs, out, fused):
    """A no-argument call computing the layer into out (and the fused packer's words)."""
    if isinstance(run, Bound):
        return run.bind(inputs, out, **fused)
    return lambda: np.copyto(out, run(*inputs))
