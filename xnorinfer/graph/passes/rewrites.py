"""Graph rewrites that fold float work into the binary kernels' epilogues and packers. Each takes
a graph and returns its nodes with one match rewritten, or None when nothing matches.

- fold_into_binary: affine / batch_norm after a binary conv or dense, a BWN conv or dense (into
  its alpha), or a float conv (the stem) -> its scale and bias
- fuse_residual: add(binary conv, r) -> the conv's fused residual input
- fold_into_next_conv: affine / batch_norm -> an unpadded float conv -> that conv's weights and bias
- fold_into_next_bwn_conv: affine / batch_norm -> BWN conv -> the conv's in_scale / in_shift
- fuse_relu_into_conv: relu after a float or BWN conv -> its `relu` attribute
- fuse_activation: [bias] -> prelu/relu -> [bias] after a binary conv -> its RPReLU epilogue
- fuse_bias_into_pack: affine(bias only) -> pack_signs -> the packer's bias (RSign)
- fold_into_pack: affine / batch_norm with positive scales -> pack_signs -> the packer's bias (a
  per-channel threshold: XNOR-Net's BatchNorm before the sign)
- distribute_through_concat: a per-channel op after concat -> one per concat input, so the ops
  above can absorb it (ReActNet's doubling blocks)
- merge_duplicate_packs: packers of one tensor with one bias and zero_to -> one packer (the two
  1x1 convs of a doubling block read the same signs)

The packer rewrites keep its zero_to (the sign of an exact zero, `<` or `<=`): each preserves the
sign of x + bias, zero included, up to the folding's rounding.

Each rewrite is exact except folding, which composes per-channel scales in float64 and rounds once."""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from ..opset import channel_counts

BINARY = ("bconv2d", "bdense")
BWN = ("bwn_conv2d", "bwn_dense")
PER_CHANNEL = ("affine", "batch_norm", "prelu", "rprelu", "relu")
RPRELU = ("rp_gamma", "rp_slope", "rp_zeta")


def _sole_consumer(graph: Graph, tensor: str, readers: dict) -> Node | None:
    """The one node reading `tensor` (once), or None. `readers` is graph.consumers(), computed
    once per rewrite: recomputing it per lookup made loading ReActNet-A quadratic."""
    if tensor == graph.output:
        return None
    users = readers.get(tensor, [])
    return users[0] if len(users) == 1 and users[0].inputs.count(tensor) == 1 else None


def _bias_only(node: Node | None) -> bool:
    return node is not None and node.op == "affine" and set(node.params) == {"bias"}


def _plain_epilogue(node: Node) -> bool:
    return node.op in BINARY and not any(k in node.params for k in RPRELU)


def _affine_output(node: Node) -> bool:
    """A layer whose output is scale * sums + bias, nothing after: a per-channel affine folds in
    (a BWN layer's scale is its alpha)."""
    return _plain_epilogue(node) or (node.op in ("conv2d", *BWN) and not node.attrs.get("relu", False))


def _replace(nodes: list[Node], drop: list[Node], at: Node, new: Node) -> list[Node]:
    """nodes without `drop`, with `new` in the place of `at`."""
    dropped = {id(n) for n in drop}
    return [new if n is at else n for n in nodes if id(n) not in dropped or n is at]


def fold_into_binary(graph: Graph):
    readers = graph.consumers()
    for node in graph.nodes:
        if not _affine_output(node) or len(node.inputs) != 1:
            continue
        nxt = _sole_consumer(graph, node.output, readers)
        if nxt is None or nxt.op not in ("affine", "batch_norm"):
            continue
        o = node.params["weight" if node.op == "conv2d" else "weight_bits"].shape[0]
        a, c = _as_affine(nxt)
        scale_key = "alpha" if node.op in BWN else "scale"
        scale = node.params.get(scale_key, np.ones(o, np.float32)).astype(np.float64)
        bias = node.params.get("bias", np.zeros(o, np.float32)).astype(np.float64)
        params = dict(node.params, bias=(bias * a + c).astype(np.float32))
        params[scale_key] = (scale * a).astype(np.float32)
        fused = node.replace(params=params, output=nxt.output)
        return _replace(graph.nodes, [node], nxt, fused)
    return None


def _as_affine(node: Node) -> tuple[np.ndarray, np.ndarray]:
    """(a, c) in float64 with node(x) = a * x + c per channel, for an affine or batch_norm node."""
    p = node.params
    channels = len(p["mean"] if node.op == "batch_norm" else next(iter(p.values())))
    if node.op == "affine":
        return (
            p.get("scale", np.ones(channels)).astype(np.float64),
            p.get("bias", np.zeros(channels)).astype(np.float64),
        )
    a = p.get("gamma", np.ones(channels)).astype(np.float64) / np.sqrt(
        p["var"].astype(np.float64) + node.attrs.get("eps", 1e-5)
    )
    return a, p.get("beta", np.zeros(channels)).astype(np.float64) - p["mean"].astype(np.float64) * a


def fold_into_pack(graph: Graph):
    """sign(a * x + c + b) = sign(x + (c + b) / a) where every a > 0: XNOR-Net's BatchNorm before
    the sign becomes the packer's per-channel threshold. Zero included (a * x + c + b = 0 exactly
    when x + (c + b) / a is), so the packer's zero_to carries over; the threshold is rounded once."""
    readers = graph.consumers()
    for node in graph.nodes:
        if node.op not in ("affine", "batch_norm"):
            continue
        nxt = _sole_consumer(graph, node.output, readers)
        if nxt is None or nxt.op != "pack_signs":
            continue
        a, c = _as_affine(node)
        if not np.all(a > 0):
            continue
        bias = nxt.params.get("bias", np.zeros(len(a), np.float32)).astype(np.float64)
        params = dict(nxt.params, bias=((c + bias) / a).astype(np.float32))
        fused = nxt.replace(inputs=[node.inputs[0]], params=params)
        return _replace(graph.nodes, [node], nxt, fused)
    return None


def fold_into_next_conv(graph: Graph):
    """conv(a * x + c) = conv'(x) for an unpadded float conv without groups: the per-channel
    affine scales the weights' input channels and adds conv(c) to the bias (NIN's last BN)."""
    readers = graph.consumers()
    for node in graph.nodes:
        if node.op not in ("affine", "batch_norm"):
            continue
        nxt = _sole_consumer(graph, node.output, readers)
        if nxt is None or nxt.op != "conv2d" or any(nxt.attrs["padding"]) or nxt.attrs.get("groups", 1) != 1:
            continue
        weight = nxt.params["weight"].astype(np.float64)
        a, c = _as_affine(node)
        o = weight.shape[0]
        scale = nxt.params.get("scale", np.ones(o)).astype(np.float64)
        bias = nxt.params.get("bias", np.zeros(o)).astype(np.float64) + scale * np.einsum("oikl,i->o", weight, c)
        params = dict(
            nxt.params, weight=(weight * a[None, :, None, None]).astype(np.float32), bias=bias.astype(np.float32)
        )
        fused = nxt.replace(inputs=[node.inputs[0]], params=params)
        return _replace(graph.nodes, [node], nxt, fused)
    return None


def fold_into_next_bwn_conv(graph: Graph):
    """affine / batch_norm -> bwn_conv2d: the conv applies a * x + c to its input itself, while
    gathering its receptive fields (padded taps stay 0, as for the separate op's output)."""
    readers = graph.consumers()
    for node in graph.nodes:
        if node.op not in ("affine", "batch_norm"):
            continue
        nxt = _sole_consumer(graph, node.output, readers)
        if nxt is None or nxt.op != "bwn_conv2d" or "in_scale" in nxt.params:
            continue
        a, c = _as_affine(node)
        params = dict(nxt.params, in_scale=a.astype(np.float32), in_shift=c.astype(np.float32))
        fused = nxt.replace(inputs=[node.inputs[0]], params=params)
        return _replace(graph.nodes, [node], nxt, fused)
    return None


def fuse_relu_into_conv(graph: Graph):
    readers = graph.consumers()
    for node in graph.nodes:
        if node.op not in ("conv2d", "bwn_conv2d") or node.attrs.get("relu", False):
            continue
        nxt = _sole_consumer(graph, node.output, readers)
        if nxt is None or nxt.op != "relu":
            continue
        fused = node.replace(attrs=dict(node.attrs, relu=True), output=nxt.output)
        return _replace(graph.nodes, [node], nxt, fused)
    return None


def fuse_residual(graph: Graph):
    readers = graph.consumers()
    for node in graph.nodes:
        if not _plain_epilogue(node) or len(node.inputs) != 1 or node.op != "bconv2d":
            continue
        nxt = _sole_consumer(graph, node.output, readers)
        if nxt is None or nxt.op != "add":
            continue
        other = nxt.inputs[1] if nxt.inputs[0] == node.output else nxt.inputs[0]
        fused = node.replace(inputs=node.inputs + [other], output=nxt.output)
        return _replace(graph.nodes, [node], nxt, fused)
    return None


def fuse_activation(graph: Graph):
    readers = graph.consumers()
    for node in graph.nodes:
        if not _plain_epilogue(node):
            continue
        o = node.params["weight_bits"].shape[0]
        chain, gamma, zeta = [], np.zeros(o, np.float32), np.zeros(o, np.float32)
        nxt = _sole_consumer(graph, node.output, readers)
        if _bias_only(nxt):
            chain.append(nxt)
            gamma = -nxt.params["bias"]  # PReLU(v + b) is PReLU(v - gamma) with gamma = -b exactly
            nxt = _sole_consumer(graph, nxt.output, readers)
        if nxt is None or nxt.op not in ("prelu", "relu", "rprelu") or (chain and nxt.op == "rprelu"):
            continue
        chain.append(nxt)
        if nxt.op == "rprelu":
            gamma, slope, zeta = (nxt.params[k] for k in RPRELU)
        else:
            slope = nxt.params["slope"] if nxt.op == "prelu" else np.zeros(o, np.float32)
            after = _sole_consumer(graph, nxt.output, readers)
            if _bias_only(after):
                chain.append(after)
                zeta = after.params["bias"]
        params = dict(
            node.params,
            rp_gamma=np.ascontiguousarray(gamma, np.float32),
            rp_slope=np.ascontiguousarray(slope, np.float32),
            rp_zeta=np.ascontiguousarray(zeta, np.float32),
        )
        fused = node.replace(params=params, output=chain[-1].output)
        return _replace(graph.nodes, [node] + chain[:-1], chain[-1], fused)
    return None


def fuse_bias_into_pack(graph: Graph):
    consumers = graph.consumers()
    for node in graph.nodes:
        if not _bias_only(node) or node.output == graph.output:
            continue
        users = consumers.get(node.output, [])
        if not users or any(u.op != "pack_signs" or "bias" in u.params for u in users):
            continue
        packs = {id(u): u.replace(inputs=node.inputs, params={"bias": node.params["bias"]}) for u in users}
        return [packs.get(id(n), n) for n in graph.nodes if n is not node]
    return None


def merge_duplicate_packs(graph: Graph):
    seen: dict[tuple, Node] = {}
    for node in graph.nodes:
        if node.op != "pack_signs" or node.output == graph.output:
            continue
        bias = node.params.get("bias")
        key = (
            node.inputs[0],
            node.attrs.get("groups", 1),
            node.attrs.get("zero_to", "one"),
            None if bias is None else bias.tobytes(),
        )
        first = seen.setdefault(key, node)
        if first is node:
            continue
        rename = {node.output: first.output}
        return [n.replace(inputs=[rename.get(i, i) for i in n.inputs]) for n in graph.nodes if n is not node]
    return None


def distribute_through_concat(graph: Graph):
    readers = graph.consumers()
    channels = None
    for node in graph.nodes:
        if node.op != "concat":
            continue
        nxt = _sole_consumer(graph, node.output, readers)
        if nxt is None or nxt.op not in PER_CHANNEL:
            continue
        if channels is None:
            channels = channel_counts(graph)
        widths = [channels[name] for name in node.inputs]
        if None in widths:
            continue
        bounds = np.cumsum([0] + widths)
        taken = {n.output for n in graph.nodes} | {n.name for n in graph.nodes} | {graph.input}
        parts = []
        for i, name in enumerate(node.inputs):
            sliced = {k: np.ascontiguousarray(v[bounds[i] : bounds[i + 1]]) for k, v in nxt.params.items()}
            part = f"{nxt.output}/part{i}"
            while part in taken:
                part += "_"
            taken.add(part)
            parts.append(nxt.replace(name=part, inputs=[name], output=part, params=sliced))
        concat = node.replace(inputs=[p.output for p in parts], output=nxt.output)
        at = graph.nodes.index(node)
        rest = [n for n in graph.nodes if n is not node and n is not nxt]
        return rest[:at] + parts + [concat] + rest[at:]
    return None
