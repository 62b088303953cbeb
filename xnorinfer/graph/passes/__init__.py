"""The passes `optimize` runs at load: rewrites (graph in, graph out: float work folded into the
binary kernels' epilogues and packers, see .rewrites) until none applies, then the schedule passes
(which nodes run together, noted on the nodes for the executor, see .schedule)."""

from __future__ import annotations

from ..ir import Graph
from .rewrites import (
    distribute_through_concat,
    fold_into_binary,
    fold_into_next_bwn_conv,
    fold_into_next_conv,
    fold_into_pack,
    fuse_activation,
    fuse_bias_into_pack,
    fuse_relu_into_conv,
    fuse_residual,
    merge_duplicate_packs,
)
from .schedule import SCHEDULE, step_name, step_op, step_writes, steps

REWRITES = (
    distribute_through_concat,
    fold_into_binary,
    fuse_residual,
    fuse_activation,
    fuse_bias_into_pack,
    fold_into_pack,
    fold_into_next_conv,
    fold_into_next_bwn_conv,
    fuse_relu_into_conv,
    merge_duplicate_packs,
)

__all__ = ["REWRITES", "SCHEDULE", "apply", "optimize", "step_name", "step_op", "step_writes", "steps"]


def apply(rewrite, graph: Graph) -> Graph:
    """The graph with `rewrite` applied until it no longer matches."""
    nodes = graph.nodes
    while (result := rewrite(Graph(nodes, graph.input, graph.input_shape, graph.output))) is not None:
        nodes = result
    return Graph(nodes, graph.input, graph.input_shape, graph.output)


def optimize(graph: Graph) -> Graph:
    """The graph with every rewrite applied until none applies, then scheduled. Plans the input
    carries are dropped first: a rewrite would leave them stale."""
    nodes = [node.replace(plan={}) if node.plan else node for node in graph.nodes]
    changed = True
    while changed:
        changed = False
        for rewrite in REWRITES:
            rewritten = apply(rewrite, Graph(nodes, graph.input, graph.input_shape, graph.output))
            changed |= rewritten.nodes is not nodes
            nodes = rewritten.nodes
    scheduled = Graph(nodes, graph.input, graph.input_shape, graph.output)
    for plan in SCHEDULE:
        scheduled = plan(scheduled)
    return scheduled
