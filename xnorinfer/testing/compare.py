"""compare(model, reference, x): the engine against PyTorch, the float64 interpreter or any
callable, end to end and layer by layer, with sign flips at near ties told apart from real
differences.

A binary network is chaotic: one float32 rounding before a sign can flip it and change everything
after it. So the check has two parts:

- Layer by layer, every engine node runs on the reference's own inputs (Model.trace with
  overrides), so a 1-ulp difference upstream cannot hide or fake a difference downstream. A float
  layer must agree within layer_rtol of its largest value; a sign layer must agree exactly except
  at near ties: positions whose float64 value v = x + bias lies within (K+1)·2⁻²⁴·(|x| + |bias|)
  of the threshold, K being the summed terms (x and the bias).
- End to end, predict's outputs must agree within rtol of the largest reference output. An image
  beyond that is excused only if predict's own sign decisions left the reference's somewhere and
  every first such flip (no flip upstream of it in that image) is a near tie by the same rule,
  here with K and Σ|terms| taken over the whole float computation that led to the value (the
  interpreter's magnitude pass): never a fixed epsilon."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import numpy as np

from .. import _runtime
from ..graph import infer_shapes
from . import _torch
from .reference import REFERENCE_OPS, pre_sign, run_graph, to_nhwc

ULP = 2.0**-24  # float32's unit roundoff


def near_tie(value, terms_abs, k) -> np.ndarray:
    """Where a float64 value before a sign lies within float32 rounding of its threshold (0):
    |value| <= (k + 1) * 2^-24 * sum|terms| for a sum of k terms."""
    return np.abs(value) <= (k + 1) * ULP * terms_abs


@dataclass
class LayerResult:
    """One compared node: the engine fed the reference's inputs."""

    name: str
    op: str
    module: str | None  # the reference's layer it is compared with (torch), else None
    shape: tuple
    max_abs: float
    scale: float  # max |reference|
    flips_explained: int = 0  # sign layers only
    flips_unexplained: int = 0
    status: str = "ok"  # "ok" or "MISMATCH"

    @property
    def max_rel(self) -> float:
        return self.max_abs / self.scale if self.scale else self.max_abs


@dataclass
class SignFlip:
    """A first flip end to end: predict's sign differs from the reference's with no flip upstream
    in that image."""

    layer: str
    image: int
    index: tuple  # position in the layer's NHWC output (image excluded)
    value: float  # the float64 value before the sign
    bound: float  # (K+1)·2⁻²⁴·Σ|terms|: a near tie when |value| <= bound
    explained: bool


MAX_LISTED = 50


@dataclass
class Report:
    reference: str
    images: int
    isa: str
    threads: int
    rtol: float
    layer_rtol: float
    max_abs: float = 0.0
    max_rel: float = 0.0
    argmax_agree: int = 0
    images_off: list = field(default_factory=list)  # beyond rtol
    images_excused: list = field(default_factory=list)  # of those, explained by near-tie flips
    flips_explained: int = 0  # end to end, first flips of an image (see module docstring)
    flips_unexplained: int = 0
    flips_downstream: int = 0  # after a first flip: consequences, not judged
    first_flips: list = field(default_factory=list)  # the first MAX_LISTED: SignFlip each
    layerwise: bool = False
    layers: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    runs: list = field(default_factory=list)  # one Report per (isa, threads) when compare ran several
    # per image: max |diff| and whether all its first flips are near ties (only images with flips)
    image_diff: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    image_verdict: dict = field(default_factory=dict, repr=False)
    scale: float = 0.0  # max |reference output|

    @property
    def failures(self) -> list[str]:
        if self.runs:
            return [f"[{r.isa}, {r.threads} threads] {f}" for r in self.runs for f in r.failures]
        out = []
        unexcused = sorted(set(self.images_off) - set(self.images_excused))
        if unexcused:
            out.append(f"images {unexcused} differ end to end beyond rtol={self.rtol:g} with no near-tie explanation")
        if self.flips_unexplained:
            out.append(f"{self.flips_unexplained} end-to-end sign flips are not near ties")
        for row in self.layers:
            if row.status != "ok":
                out.append(
                    f"layer {row.module or row.name}: max rel diff {row.max_rel:.2e} > {self.layer_rtol:g}"
                    + (f", {row.flips_unexplained} sign flips not near ties" if row.flips_unexplained else "")
                )
        return out

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["image_diff"] = [float(v) for v in self.image_diff]
        for row, layer in zip(d["layers"], self.layers):
            row["max_rel"] = layer.max_rel
        d["passed"], d["failures"] = self.passed, self.failures
        d["runs"] = [r.to_dict() for r in self.runs]
        return d

    def __str__(self) -> str:
        if self.runs:
            lines = [
                f"compare against {self.reference}: {'PASSED' if self.passed else 'FAILED'} "
                f"on {len(self.runs)} kernel configurations"
            ]
            lines += [
                f"  {r.isa:8s} {r.threads} threads: {'passed' if r.passed else 'FAILED'}, max rel diff {r.max_rel:.2e}"
                for r in self.runs
            ]
            worst = next((r for r in self.runs if not r.passed), self.runs[0])
            return "\n".join(lines + ["", str(worst)])
        lines = [
            f"compare against {self.reference} ({self.images} images, isa {self.isa}, {self.threads} threads): "
            + ("PASSED" if self.passed else "FAILED"),
            f"end to end: max |diff| {self.max_abs:.3g}, max rel {self.max_rel:.3g} (rtol {self.rtol:g}), "
            f"argmax agrees {self.argmax_agree}/{self.images}, images beyond rtol {len(self.images_off)} "
            f"({len(self.images_excused)} explained by near ties)",
            f"sign flips end to end: {self.flips_explained} near ties, {self.flips_unexplained} unexplained, "
            f"{self.flips_downstream} downstream of a first flip",
        ]
        lines += [
            f"  {'near tie' if f.explained else 'NOT A NEAR TIE'}: {f.layer} image {f.image} at "
            f"{f.index}: value {f.value:.3g}, bound {f.bound:.3g}"
            for f in self.first_flips[:10]
        ]
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"FAIL: {f}" for f in self.failures]
        if self.layers:
            lines += ["", _table(self.layers, self.layer_rtol)]
        return "\n".join(lines)


MAX_ROWS = 60


def _table(rows: list[LayerResult], layer_rtol: float) -> str:
    shown = rows
    if len(rows) > MAX_ROWS:  # the failures and the closest calls; the rest passed
        bad = [r for r in rows if r.status != "ok"]
        closest = sorted((r for r in rows if r.status == "ok"), key=lambda r: -r.max_rel)[: max(0, 20 - len(bad))]
        keep = {id(r) for r in bad + closest}
        shown = [r for r in rows if id(r) in keep]
    cells = [("layer", "op", "shape", "max abs", "max rel", "flips near-tie/other", "status")]
    for r in shown:
        flips = f"{r.flips_explained}/{r.flips_unexplained}" if r.op in _SIGN_OPS else ""
        cells.append(
            (
                r.module or r.name,
                r.op,
                "x".join(map(str, r.shape)),
                f"{r.max_abs:.2e}",
                f"{r.max_rel:.2e}",
                flips,
                r.status,
            )
        )
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "-" * len(lines[0]))
    if shown is not rows:
        lines.append(f"({len(rows) - len(shown)} more layers within layer_rtol {layer_rtol:g} not shown)")
    return "\n".join(lines)


_SIGN_OPS = {name for name, op in REFERENCE_OPS.items() if op.sign_point}


# ---- the reference side -------------------------------------------------------------------------


@dataclass
class _Reference:
    name: str
    output: np.ndarray  # float64 (N, outputs)
    values: dict = field(default_factory=dict)  # {node name: float64 NHWC} known reference outputs
    modules: dict = field(default_factory=dict)  # {node name: the reference layer's name}
    layerwise: bool = True
    interpreted: dict = field(default_factory=dict)  # {tensor: float64} the interpreter's own values


def _reference(model, reference, x_nhwc, x) -> _Reference:
    graph = model.graph
    if isinstance(reference, str):
        if reference != "float":
            raise ValueError(f"reference must be a torch module, a callable or 'float', got {reference!r}")
        values = run_graph(graph, x_nhwc)
        return _Reference(
            "the float64 reference interpreter",
            values[graph.output],
            {n.name: values[n.output] for n in graph.nodes},
            interpreted=values,
        )
    if _torch.is_module(reference):
        output, outputs = _torch.module_outputs(reference, x_nhwc.transpose(0, 3, 1, 2))
        values, modules = _match_modules(graph, x_nhwc, outputs, model.metadata.get("layers"))
        return _Reference(f"torch module {type(reference).__name__}", output, values, modules)
    if callable(reference):
        return _Reference(
            f"callable {getattr(reference, '__name__', type(reference).__name__)}",
            np.asarray(reference(x), np.float64),
            layerwise=False,
        )
    raise TypeError(f"reference must be a torch module, a callable or 'float', got {type(reference).__name__}")


def _match_modules(graph, x_nhwc, outputs, layers=None):
    """Node <- module. `layers` ({module name: node name}, the metadata from_module writes) says
    exactly which node computes each module's output; without it, a module's output is the last
    node named after it ("name" or "name/...", the dedicated converters' naming)."""
    infos = infer_shapes(graph, x_nhwc.shape[1:])
    by_name = {node.name: node for node in graph.nodes}
    if layers is not None:
        last = {module: by_name[node] for module, node in layers.items() if node in by_name}
    else:
        last = {}
        for node in graph.nodes:
            last[node.name.split("/")[0]] = node
    values, modules = {}, {}
    for name, out in outputs.items():
        node = last.get(name)
        if node is None:
            continue
        info = infos[node.output]
        want = info.shape[:-1] + (info.channels,)
        value = out.transpose(0, 2, 3, 1) if out.ndim == 4 else out
        if out.ndim == 4 and len(want) == 1 and out.shape[2:] == (1, 1):  # adaptive pooling to 1x1
            value = out.reshape(len(out), -1)
        if value.shape[1:] == want:
            values[node.name], modules[node.name] = value, name
    return values, modules


def _derived_signs(graph, ref: _Reference):
    """Sign nodes whose input the reference gives but whose output it does not (a torch sign is
    no module): their reference signs follow from that input, with the node's own semantics."""
    producer = {n.output: n.name for n in graph.nodes}
    for node in graph.nodes:
        source = producer.get(node.inputs[0])
        if node.name not in ref.values and node.op in _SIGN_OPS and source in ref.values:
            ref.values[node.name] = REFERENCE_OPS[node.op].run(node, [ref.values[source]], False)


# ---- comparing ----------------------------------------------------------------------------------


def compare(
    model,
    reference,
    x,
    *,
    layerwise: bool = True,
    isas=None,
    rtol: float = 1e-5,
    layer_rtol: float = 1e-4,
    layout: str = "NCHW",
) -> Report:
    """Compare `model` (an xnorinfer Model) with `reference` on the float batch x.

    reference: a torch module (layers matched by qualified name: a node named like a module, or
    the last of its "module/..." nodes, computes that module's output), a callable returning the
    outputs (compared end to end only), or "float" (reference_predict, every node compared).
    isas: None (the current kernels), "all" (every ISA this CPU has, each at 1 thread and at
    os.cpu_count()) or a list of ISA names. Returns a Report; see the module docstring for the rules."""
    x_nhwc = np.ascontiguousarray(to_nhwc(np.asarray(x, np.float32), layout))
    chunks = []
    step = _chunk(model.graph, x_nhwc.shape[1:])
    for start in range(0, max(len(x_nhwc), 1), step):
        part = x_nhwc[start : start + step]
        user_part = np.asarray(x)[start : start + step]
        ref = _reference(model, reference, part, user_part)
        if ref.layerwise:
            _derived_signs(model.graph, ref)
            if not ref.interpreted:  # the near-tie rule judges the float64 interpreter's values
                ref.interpreted = run_graph(model.graph, part)
            magnitudes = _Lazy(lambda part=part: _magnitudes(model.graph, part))
        else:
            magnitudes = None
        chunks.append([])
        for isa, threads in _configs(isas):
            with _kernels(isa, threads):
                chunks[-1].append(
                    _compare_once(model, ref, part, layerwise and ref.layerwise, rtol, layer_rtol, magnitudes)
                )
    reports = [_merge([c[i] for c in chunks]) for i in range(len(chunks[0]))]
    if len(reports) == 1:
        return reports[0]
    first = reports[0]
    return Report(
        first.reference,
        first.images,
        "all",
        0,
        rtol,
        layer_rtol,
        max(r.max_abs for r in reports),
        max(r.max_rel for r in reports),
        min(r.argmax_agree for r in reports),
        runs=reports,
    )


CHUNK_BYTES = 256 << 20  # the float64 values of every layer of a chunk of images are kept at once


def _chunk(graph, image_shape) -> int:
    """Images compared at once: up to 16, fewer where one image's layers take many bytes."""
    infos = infer_shapes(graph, image_shape)
    per_image = 8 * sum(int(np.prod(i.shape[:-1])) * i.channels for i in infos.values())
    return max(1, min(16, CHUNK_BYTES // max(per_image, 1)))


def _merge(parts: list[Report]) -> Report:
    """One report for the whole batch from its chunks' (images renumbered, layers combined); the
    tolerances are relative to the largest reference value of the whole batch."""
    total = parts[0]
    for part in parts[1:]:
        total.image_verdict.update({i + total.images: v for i, v in part.image_verdict.items()})
        total.first_flips += [dataclasses.replace(f, image=f.image + total.images) for f in part.first_flips]
        del total.first_flips[MAX_LISTED:]
        total.image_diff = np.concatenate([total.image_diff, part.image_diff])
        total.scale = max(total.scale, part.scale)
        for key in ("images", "argmax_agree", "flips_explained", "flips_unexplained", "flips_downstream"):
            setattr(total, key, getattr(total, key) + getattr(part, key))
        for row, other in zip(total.layers, part.layers):
            row.max_abs, row.scale = max(row.max_abs, other.max_abs), max(row.scale, other.scale)
            row.flips_explained += other.flips_explained
            row.flips_unexplained += other.flips_unexplained
    diff = total.image_diff
    total.max_abs = float(diff.max()) if diff.size else 0.0
    total.max_rel = total.max_abs / total.scale if total.scale else total.max_abs
    total.images_off = [int(i) for i in np.flatnonzero(diff > total.rtol * total.scale)]
    total.images_excused = [i for i in total.images_off if total.image_verdict.get(i) is True]
    for row in total.layers:
        unexplained = row.op in _SIGN_OPS and row.flips_unexplained
        row.status = "MISMATCH" if unexplained or (row.op not in _SIGN_OPS and row.max_rel > total.layer_rtol) else "ok"
    return total


def _configs(isas):
    current = [(_runtime.get_isa(), _runtime.get_num_threads())]
    if isas is None:
        return current
    names = _runtime.available_isas() if isas == "all" else list(isas)
    threads = sorted({1, os.cpu_count() or 1})
    return [(isa, t) for isa in names for t in threads]


class _kernels:
    """Run a block with one ISA and thread count, then restore the previous ones."""

    def __init__(self, isa, threads):
        self.isa, self.threads = isa, threads

    def __enter__(self):
        self.old = _runtime.get_isa(), _runtime._thread_setting()
        _runtime.set_isa(self.isa)
        _runtime.set_num_threads(self.threads)

    def __exit__(self, *exc):
        _runtime.set_isa(self.old[0])
        _runtime.set_num_threads(self.old[1])


class _Lazy:
    """A value computed on first use: the magnitude pass costs a run of the interpreter, and only
    chunks whose signs flipped need it."""

    def __init__(self, compute):
        self.compute, self.value = compute, None

    def __call__(self):
        if self.value is None:
            self.value = self.compute()
        return self.value


def _magnitudes(graph, x_nhwc):
    """{tensor: (sum of |terms| bound, rounding count K)} over the whole float computation; signs
    restart both (their +-1 is exact while no sign upstream has flipped)."""
    bounds = run_graph(graph, np.abs(x_nhwc.astype(np.float64)), magnitude=True)
    shapes = {graph.input: x_nhwc.shape}
    counts = {graph.input: 0}
    for node in graph.nodes:
        op = REFERENCE_OPS[node.op]
        shapes[node.output] = bounds[node.output].shape
        if op.sign_point:
            counts[node.output] = 0
        else:
            counts[node.output] = max(counts[i] for i in node.inputs) + op.terms(node, [shapes[i] for i in node.inputs])
    return {name: (bounds[name], counts[name]) for name in bounds}


def _compare_once(model, ref: _Reference, x_nhwc, layerwise, rtol, layer_rtol, magnitudes) -> Report:
    """The report of one chunk; _merge decides what is off."""
    report = Report(
        ref.name, len(x_nhwc), _runtime.get_isa(), _runtime.get_num_threads(), rtol, layer_rtol, layerwise=layerwise
    )
    got = model.predict(x_nhwc, layout="NHWC").astype(np.float64)
    want = ref.output
    if got.shape != want.shape:
        raise ValueError(f"the model's output {got.shape} and the reference's {want.shape} differ in shape")
    report.image_diff = np.abs(got - want).reshape(len(got), -1).max(axis=1, initial=0.0)
    report.scale = float(np.abs(want).max(initial=0.0))
    report.argmax_agree = int((got.reshape(len(got), -1).argmax(1) == want.reshape(len(want), -1).argmax(1)).sum())
    if not ref.layerwise:
        report.notes.append("a plain callable: compared end to end only, no layers and no sign analysis")
        return report
    report.image_verdict = _end_to_end_flips(model, ref, x_nhwc, magnitudes, report)
    if layerwise:
        report.layers = _layer_by_layer(model, ref, x_nhwc)
    else:
        report.notes.append("layer by layer skipped (layerwise=False)")
    return report


def _end_to_end_flips(model, ref: _Reference, x_nhwc, magnitudes, report) -> dict[int, bool]:
    """Counts predict's sign decisions that left the reference's; returns {image: all of its first
    flips explained} for the images with flips."""
    graph = model.graph
    engine = model._optimised_signs(x_nhwc)
    upstream = _sign_ancestors(graph)
    producer_input = {n.name: n.inputs[0] for n in graph.nodes}
    flipped = {}  # sign node -> bool (N,) images where it flipped
    verdict: dict[int, bool] = {}
    for node in graph.nodes:
        if node.name not in engine or node.name not in ref.values:
            continue
        mismatch = engine[node.name] != ref.values[node.name]
        per_image = mismatch.reshape(len(mismatch), -1).any(axis=1)
        flipped[node.name] = per_image
        if not per_image.any():
            continue
        earlier = np.zeros(len(per_image), bool)
        for name in upstream[node.name]:
            earlier |= flipped.get(name, earlier)
        first = mismatch & ~earlier.reshape((-1,) + (1,) * (mismatch.ndim - 1))
        report.flips_downstream += int(mismatch.sum() - first.sum())
        m, k = magnitudes()[producer_input[node.name]]
        bias = node.params.get("bias")
        terms = m + (0.0 if bias is None else np.abs(bias.astype(np.float64)))
        v = pre_sign(node, ref.interpreted[producer_input[node.name]])
        k += REFERENCE_OPS[node.op].terms(node, [])
        explained = near_tie(v, terms, k)
        for where in np.argwhere(first)[: MAX_LISTED - len(report.first_flips)]:
            at = tuple(int(i) for i in where)
            report.first_flips.append(
                SignFlip(node.name, at[0], at[1:], float(v[at]), float((k + 1) * ULP * terms[at]), bool(explained[at]))
            )
        report.flips_explained += int((first & explained).sum())
        report.flips_unexplained += int((first & ~explained).sum())
        for i in np.flatnonzero(first.reshape(len(first), -1).any(axis=1)):
            ok = bool(explained[i][first[i]].all())
            verdict[int(i)] = verdict.get(int(i), True) and ok
        for i in np.flatnonzero(per_image):
            verdict.setdefault(int(i), True)  # flipped only downstream of a first flip
    return verdict


def _sign_ancestors(graph) -> dict[str, set]:
    """{node name: the sign nodes upstream of it (not itself)}."""
    producer = {n.output: n for n in graph.nodes}
    above: dict[str, set] = {}
    for node in graph.nodes:
        found = set()
        for t in node.inputs:
            p = producer.get(t)
            if p is not None:
                found |= above[p.name] | ({p.name} if p.op in _SIGN_OPS else set())
        above[node.name] = found
    return above


def _layer_by_layer(model, ref: _Reference, x_nhwc) -> list[LayerResult]:
    graph = model.graph
    fed = {name: value.astype(np.float32) for name, value in ref.values.items()}
    engine = model.trace(x_nhwc, layout="NHWC", overrides=fed)
    producer = {n.output: n.name for n in graph.nodes}
    rows = []
    for node in graph.nodes:
        if node.name not in ref.values:
            continue
        want, got = ref.values[node.name], engine[node.name].astype(np.float64)
        diff = np.abs(got - want)
        row = LayerResult(
            node.name,
            node.op,
            ref.modules.get(node.name),
            tuple(want.shape[1:]),
            float(diff.max(initial=0.0)),
            float(np.abs(want).max(initial=0.0)),
        )
        if node.op in _SIGN_OPS:
            source = producer.get(node.inputs[0])
            x_in = ref.values[source] if source in ref.values else x_nhwc.astype(np.float64)
            bias = node.params.get("bias")
            terms = np.abs(x_in) + (0.0 if bias is None else np.abs(bias.astype(np.float64)))
            explained = near_tie(pre_sign(node, x_in), terms, REFERENCE_OPS[node.op].terms(node, []))
            flips = got != want
            row.flips_explained = int((flips & explained).sum())
            row.flips_unexplained = int((flips & ~explained).sum())
        rows.append(row)
    return rows


# ---- assertions ---------------------------------------------------------------------------------


def assert_matches_torch(
    model, module, x, *, rtol: float = 1e-5, layer_rtol: float = 1e-4, isas=None, layout: str = "NCHW"
) -> Report:
    """Raise AssertionError (with the report's table) unless `model` computes what the torch
    `module` does on x: end to end within rtol of the largest output, layer by layer within
    layer_rtol, every sign flip a near tie. Returns the report when it passes."""
    return _assert(compare(model, module, x, rtol=rtol, layer_rtol=layer_rtol, isas=isas, layout=layout))


def assert_matches_reference(
    model, x, *, rtol: float = 1e-5, layer_rtol: float = 1e-4, isas=None, layout: str = "NCHW"
) -> Report:
    """As assert_matches_torch, against the float64 interpreter of the model's own stored graph:
    checks the engine's kernels and fusions, not the conversion."""
    return _assert(compare(model, "float", x, rtol=rtol, layer_rtol=layer_rtol, isas=isas, layout=layout))


def _assert(report: Report) -> Report:
    if not report.passed:
        raise AssertionError("\n" + str(report))
    return report
