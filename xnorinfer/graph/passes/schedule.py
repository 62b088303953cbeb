"""Passes that decide how the executor runs the rewritten graph, without changing what it
computes: each notes its decision in the plan of the nodes concerned (Node.plan), and the executor
follows those notes and matches no patterns of its own. A graph without notes (the stored one,
which Model.trace runs) runs every node on its own; so does any run with overrides or captures.

- plan_inplace_concats: a concat whose inputs are distinct binary convs that nothing else reads
  -> each conv writes its channel slice of the concat's buffer (`writes_slice_of`: (concat output,
  first channel, end channel)); the concat has nothing left to do (`built_in_place`)
- plan_fused_packs: a sign packer (no groups) whose input comes from binary convs (one, or the
  parts of an in-place concat, in channel order) or from one float conv, none with groups -> they
  write its packed words from their epilogue (`packs_into`: (packer node, its first channel in the
  packer's input)), a lone binary conv no floats when only the packer reads them (`bits_only`); the
  packer has nothing left to do (`packed_by_producers`)
- plan_bconv_blocks: a binary conv (no groups, its signs packed by its fused packer) whose output
  that packer and 1 to 4 pointwise binary convs read, those as their signs and residual, the
  packer and the convs right after it -> one block run tile by tile, its output kept in cache
  (`block`: the convs, on the first; `in_block`: the first, on each of them)
- plan_conv_pools: a float conv (no groups, no fused packer) whose output only the max pooling
  right after it reads -> one call computing a few rows and pooling them (`block` and `in_block`
  as above; `output_unwritten`: the conv's own output is never written)

They run once, in this order (each reads the notes of the ones before), after the rewrites."""

from __future__ import annotations

from ..ir import Graph, Node
from ..opset import channel_counts

SKIPPED = ("in_block", "built_in_place", "packed_by_producers")  # notes of nodes with no call of their own


def _noted(graph: Graph, notes: dict[str, dict]) -> Graph:
    """The graph with notes[node name] added to those nodes' plans (copies: the input graph's
    nodes, which the stored graph may share, are left as they are)."""
    nodes = [
        node.replace(plan={**node.plan, **notes[node.name]}) if node.name in notes else node for node in graph.nodes
    ]
    return Graph(nodes, graph.input, graph.input_shape, graph.output)


def plan_inplace_concats(graph: Graph) -> Graph:
    producer, readers, channels = graph.producer(), graph.consumers(), channel_counts(graph)
    notes = {}
    for node in graph.nodes:
        if node.op != "concat" or len(set(node.inputs)) != len(node.inputs):
            continue
        parts = [producer.get(name) for name in node.inputs]
        if not all(
            p is not None and p.op == "bconv2d" and len(readers[p.output]) == 1 and p.output != graph.output
            for p in parts
        ):
            continue
        start = 0
        for p in parts:
            notes[p.name] = {"writes_slice_of": (node.output, start, start + channels[p.output])}
            start += channels[p.output]
        notes[node.name] = {"built_in_place": True}
    return _noted(graph, notes)


def plan_fused_packs(graph: Graph) -> Graph:
    producer, readers = graph.producer(), graph.consumers()
    order = {node.name: i for i, node in enumerate(graph.nodes)}
    notes: dict[str, dict] = {}
    for node in graph.nodes:
        source = node.inputs[0]
        if node.op != "pack_signs" or node.attrs.get("groups", 1) != 1 or source not in producer:
            continue
        made_by = producer[source]
        if made_by.plan.get("built_in_place"):
            parts = [producer[name] for name in made_by.inputs]  # channel order
            firsts = [p.plan["writes_slice_of"][1] for p in parts]
        elif "writes_slice_of" in made_by.plan:
            continue  # its floats go to a concat; the packer reads only some of that concat's
        else:
            parts, firsts = [made_by], [0]
        float_conv = len(parts) == 1 and parts[0].op == "conv2d"
        if (
            not (float_conv or all(p.op == "bconv2d" for p in parts))
            or any(p.attrs.get("groups", 1) != 1 or "packs_into" in notes.get(p.name, {}) for p in parts)
            or [order[p.name] for p in parts] != sorted(order[p.name] for p in parts)
        ):
            continue
        for p, first in zip(parts, firsts):
            notes.setdefault(p.name, {})["packs_into"] = (node.name, first)
        notes[node.name] = {"packed_by_producers": True}
        if (
            not float_conv
            and not made_by.plan.get("built_in_place")
            and source != graph.output
            and len(readers[source]) == 1
        ):
            notes[made_by.name]["bits_only"] = True
    return _noted(graph, notes)


def plan_bconv_blocks(graph: Graph) -> Graph:
    readers = graph.consumers()
    by_name = {node.name: node for node in graph.nodes}
    notes: dict[str, dict] = {}
    for i, node in enumerate(graph.nodes):
        if (
            node.op != "bconv2d"
            or node.attrs.get("groups", 1) != 1
            or "packs_into" not in node.plan
            or "writes_slice_of" in node.plan
            or node.output == graph.output
            or node.name in notes  # a block's member leads none
        ):
            continue
        pack = by_name[node.plan["packs_into"][0]]
        rest = [r for r in readers[node.output] if r is not pack]
        names = [r.name for r in rest]
        if not 1 <= len(rest) <= 4 or [n.name for n in graph.nodes[i + 1 : i + 2 + len(rest)]] != [pack.name] + names:
            continue
        if (
            all(
                r.op == "bconv2d"
                and r.inputs == [pack.output, node.output]
                and r.attrs.get("groups", 1) == 1
                and r.params["weight_bits"].shape[1:3] == (1, 1)
                and tuple(r.attrs["stride"]) == (1, 1)
                and not any(r.attrs["padding"])
                for r in rest
            )
            and [r.name for r in readers[pack.output]] == names
        ):
            notes[node.name] = {"block": tuple(names)}
            notes.update({name: {"in_block": node.name} for name in names})
    return _noted(graph, notes)


def plan_conv_pools(graph: Graph) -> Graph:
    readers = graph.consumers()
    notes = {}
    for node, nxt in zip(graph.nodes, graph.nodes[1:]):
        if (
            node.op == "conv2d"
            and node.attrs.get("groups", 1) == 1
            and "packs_into" not in node.plan
            and node.output != graph.output
            and nxt.op == "max_pool2d"
            and [r.name for r in readers[node.output]] == [nxt.name]
        ):
            notes[node.name] = {"block": (nxt.name,), "output_unwritten": True}
            notes[nxt.name] = {"in_block": node.name}
    return _noted(graph, notes)


SCHEDULE = (plan_inplace_concats, plan_fused_packs, plan_bconv_blocks, plan_conv_pools)


def steps(graph: Graph) -> list[tuple[Node, ...]]:
    """The calls a run makes, in order, as the plans say: each a node and the nodes of its block.
    A block's members, an in-place concat and a fused packer make none (others write their output)."""
    by_name = {node.name: node for node in graph.nodes}
    return [
        (node, *(by_name[name] for name in node.plan.get("block", ())))
        for node in graph.nodes
        if not any(node.plan.get(key) for key in SKIPPED)
    ]


def step_name(members) -> str:
    """A step's layer: its node, then its block's members by the last part of their names."""
    first, rest = members[0], members[1:]
    return first.name + (f" + {', '.join(n.name.rsplit('.', 1)[-1] for n in rest)}" if rest else "")


def step_op(members) -> str:
    """A step's op: "bconv2d block" for a block of one op, "conv2d+max_pool2d" for another."""
    ops = [node.op for node in members]
    if len(ops) == 1:
        return ops[0]
    return f"{ops[0]} block" if len(set(ops)) == 1 else "+".join(ops)


def step_writes(members, graph: Graph) -> list[str]:
    """What a step's kernels write besides their outputs, as the plans say: concat slices
    ("cat[0:16] (in place)") and packed signs ("signs s" and " (no floats)" for bits_only)."""
    pack_output = {node.name: node.output for node in graph.nodes if node.op == "pack_signs"}
    writes = []
    for node in members:
        if "writes_slice_of" in node.plan:
            concat, start, end = node.plan["writes_slice_of"]
            writes.append(f"{concat}[{start}:{end}] (in place)")
        if "packs_into" in node.plan:
            only = " (no floats)" if node.plan.get("bits_only") else ""
            writes.append(f"signs {pack_output[node.plan['packs_into'][0]]}{only}")
    return writes
