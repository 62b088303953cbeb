"""The graph IR: a list of nodes in execution order, each one op with named inputs, one output,
JSON-able attributes and NumPy parameters. Tensors are named by strings.

Activations are NHWC float32 (shape (H, W, C), or (C,) after pooling/flatten) or bit-packed
(shape (H, W, words) with a channel count); the batch dimension is left out everywhere and comes
with the input at run time."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np


class GraphError(ValueError):
    """The graph is malformed: unknown op, dangling tensor, bad attribute or parameter shape."""


@dataclass(frozen=True)
class TensorInfo:
    """What shape inference knows about a tensor (batch dimension excluded)."""

    shape: tuple[int, ...]
    packed_channels: int | None = None  # set for bit-packed tensors: channels behind the words
    groups: int = 1  # channel groups of a packed tensor

    @property
    def packed(self) -> bool:
        return self.packed_channels is not None

    @property
    def channels(self) -> int:
        return self.packed_channels if self.packed else self.shape[-1]

    def __str__(self) -> str:
        dims = "x".join(str(d) for d in self.shape)
        return f"bits[{dims}, {self.packed_channels} ch]" if self.packed else f"f32[{dims}]"


@dataclass
class Node:
    op: str
    name: str
    inputs: list[str]
    output: str
    attrs: dict = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict)
    # How the executor runs the node, as graph.passes.schedule decided: never saved, never read
    # from a file, empty (every node runs on its own) until optimize() fills it.
    plan: dict = field(default_factory=dict)

    def replace(self, **changes) -> Node:
        return dataclasses.replace(self, **changes)


@dataclass
class Graph:
    nodes: list[Node]
    input: str
    input_shape: tuple[int, ...]  # (H, W, C) of one image, NHWC order
    output: str

    def consumers(self) -> dict[str, list[Node]]:
        """Tensor name -> nodes that read it."""
        users: dict[str, list[Node]] = {}
        for node in self.nodes:
            for name in node.inputs:
                users.setdefault(name, []).append(node)
        return users

    def producer(self) -> dict[str, Node]:
        return {node.output: node for node in self.nodes}


class GraphBuilder:
    """Appends nodes with unique names; used by the converters."""

    def __init__(self, input_shape: tuple[int, ...], input_name: str = "input"):
        self.nodes: list[Node] = []
        self.input = input_name
        self.input_shape = tuple(int(d) for d in input_shape)
        self._names: set[str] = {input_name}

    def add(self, op: str, inputs, name: str, attrs=None, **params) -> str:
        """Append `op` reading `inputs` (a name or list); returns the output tensor's name."""
        if name in self._names:
            raise GraphError(f"duplicate node name {name!r}")
        self._names.add(name)
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        clean = {k: np.ascontiguousarray(v) for k, v in params.items() if v is not None}
        self.nodes.append(Node(op, name, inputs, name, dict(attrs or {}), clean))
        return name

    def build(self, output: str) -> Graph:
        return Graph(self.nodes, self.input, self.input_shape, output)
