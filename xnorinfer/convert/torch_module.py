"""Import any binarized PyTorch module: `from_module(module, example_input)`.

The module is captured with torch.export (non-strict, functionalised), then walked node by node
while the example input runs through it in PyTorch:

- every node that depends only on parameters and buffers is constant-folded with torch's own
  arithmetic (alpha * sign(W), W - W.mean(), straight-through tricks on weights), so a folded
  weight is bit for bit what the module multiplies with;
- every other node becomes a lazy `Value`: engine nodes are emitted only for what the output
  needs, so dropout, dead branches and the backward-only halves of straight-through estimators
  cost nothing and need no support;
- binarization is recognised by values, never by module names: a conv or linear whose folded
  weight is exactly +-alpha[o] per output channel is binary; if it reads signs it is XNOR
  (pack_signs + bconv2d / bdense), otherwise BWN (bwn_conv2d / bwn_dense).

Where PyTorch's sign differs from +-1 the import is exact, not approximate: sign() of a tensor
that is provably >= 0 (a ReLU, hardtanh(0, .) or clamp(min=0) output) is {0, 1} = (1 + S) / 2 with
S = -1 iff x <= 0, run as pack_signs(zero_to="minus_one") and a binary conv with
pad_value="minus_one" whose epilogue adds alpha/2 * sum(sign(W)). Elsewhere sign(0) = 0 has no
1-bit form: exact zeros are counted on the example input and reported.

Engine nodes are named by the module whose output they compute (`layer1.0.conv1`); helper nodes
add a suffix (`layer1.0.conv1/sign`). Functional code in a module's forward gets the torch.export
node name under that module (`layer1.0/add`)."""

from __future__ import annotations

import hashlib
import inspect
import os
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .._version import __version__
from ..graph import GraphBuilder
from ..model import Model
from ._checkpoint import ConversionError


class UnsupportedModuleError(ConversionError):
    """The module uses operations the engine cannot run; the message lists every one."""


@dataclass
class SignInfo:
    """A tensor of signs of `source` (a Value): S = -1 iff source < 0 (zero_to "one") or
    source <= 0 (zero_to "minus_one"). levels "pm1": the values are S; "01": they are (1 + S) / 2.
    exact False: PyTorch's sign(0) = 0 was approximated by +1 (zeros counted in `zeros`).
    pad: (top, bottom, left, right, value) of an F.pad applied to the signs themselves."""

    source: Value
    zero_to: str = "one"
    levels: str = "pm1"
    exact: bool = True
    materialize: tuple = ("sign", "zero")  # (op, zero_to) that computes the float values exactly
    pad: tuple | None = None


@dataclass
class Value:
    """What the importer knows of one dynamic tensor: its value on the example input, facts that
    decide how consumers lower (provably >= 0, signs of another tensor, a pending reshape), and how
    to emit it in the engine graph (`build`, run once on demand)."""

    example: object  # torch.Tensor
    build: Callable[[], str] | None = None
    nonneg: bool = False
    sign: SignInfo | None = None
    vector: bool = False  # a torch (N, C, 1, 1) that the engine holds as (C,)
    pending: tuple | None = None  # a partial pattern: ("shuffle", groups, stage) or ("ste", s, p)
    _tensor: str | None = field(default=None, repr=False)

    @property
    def tensor(self) -> str:
        if self._tensor is None:
            if self.build is None:
                raise _Unsupported("this value has no engine form")
            self._tensor = self.build()
        return self._tensor


class _Unsupported(Exception):
    pass


UNSUPPORTED = "<unsupported>"  # the tensor name an unsupported node leaves behind while errors are collected


def _torch():
    from .._optional import require_torch

    return require_torch("from_module (xnorinfer import)")


# ---------------------------------------------------------------------------------------------------


def from_module(
    module,
    example_input,
    *,
    mean=None,
    std=None,
    classes=None,
    name=None,
    check: bool = True,
    source: dict | None = None,
) -> Model:
    """Import a binarized PyTorch `nn.Module` (in eval mode, with its weights as its own test code
    uses them) as a Model whose predict equals the module's output.

    example_input: a float tensor (N, C, H, W); H, W and C fix the model's input size, the batch
    stays free. mean/std: per input channel, for `classify`'s preprocessing. classes: names of the
    outputs. name: the model's arch name (default: the module's class name). check: run the
    example through both (xnorinfer.testing.compare: end to end and layer by layer, keyed by the
    module's layer names) and raise ConversionError if they disagree beyond float rounding; the
    report is kept as `model.import_report`.
    source: more provenance for the metadata (the command line adds the weights' sha256)."""
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(example_input, torch.Tensor) or example_input.ndim != 4 or not example_input.is_floating_point():
        raise ValueError("example_input must be a float torch.Tensor (N, C, H, W)")
    example_input = example_input.detach().to(torch.float32).cpu()
    module.eval()
    with torch.no_grad():
        module(example_input)  # in-place updates in forward (e.g. clamped BN weights) take effect
        expected = module(example_input)
    if not isinstance(expected, torch.Tensor) or expected.ndim != 2:
        raise ConversionError(
            "the module must return one tensor of logits (N, outputs); got "
            f"{type(expected).__name__}{'' if not hasattr(expected, 'shape') else tuple(expected.shape)}"
        )
    program = _capture(module, example_input)
    graph, notes, layers = _Importer(program, example_input).run()
    n, c, h, w = example_input.shape
    outputs = expected.shape[1]
    classes = [f"class_{i}" for i in range(outputs)] if classes is None else [str(x) for x in classes]
    if len(classes) != outputs:
        raise ConversionError(f"{len(classes)} class names given, the module has {outputs} outputs")
    for key, value in (("mean", mean), ("std", std)):
        if value is not None and len(value) != c:
            raise ConversionError(f"{key} needs {c} values (one per input channel), got {len(value)}")
    metadata = {
        "arch": name or type(module).__name__,
        "description": f"imported from {type(module).__module__}.{type(module).__qualname__}",
        "num_classes": outputs,
        "classes": classes,
        "input_size": [c, h, w],
        "mean": None if mean is None else [float(m) for m in mean],
        "std": None if std is None else [float(s) for s in std],
        "preprocess": {"resize": min(h, w), "crop": min(h, w)} if h == w else None,
        "source": {
            "module": f"{type(module).__module__}.{type(module).__qualname__}",
            "module_file_sha256": _source_sha256(type(module)),
            **(source or {}),
        },
        "converter": f"xnorinfer {__version__} from_module",
        "layers": layers,  # which node computes each module's output, for xnorinfer.testing.compare
    }
    if metadata["preprocess"] is None:
        del metadata["preprocess"]
    model = Model(graph, metadata)
    for note in notes:
        warnings.warn(note, stacklevel=2)
    model.import_report = _self_check(model, module, example_input) if check else None
    return model


def _source_sha256(cls) -> str | None:
    try:
        path = inspect.getsourcefile(cls)
    except TypeError:
        return None
    if not path or not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _capture(module, example_input):
    torch = _torch()
    failures = []
    # Non-strict export runs forward as Python; strict export (TorchDynamo) also copes with code
    # that stores tensors on parameters in forward (BinaryNet's `self.weight.org = ...`).
    for strict in (False, True):
        try:
            program = torch.export.export(module, (example_input,), strict=strict)
            break
        except Exception as exc:  # torch raises many kinds; both are reported if both fail
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            failures.append(f"{'strict' if strict else 'non-strict'}: {type(exc).__name__}: {first}")
    else:
        raise ConversionError(f"torch.export could not capture {type(module).__name__} (" + "; ".join(failures) + ")")
    # No run_decompositions: in-place ops are followed by the walk itself (_Importer._call), and a
    # retrace would double the import time (and crashes torch 2.13 on some strict programs).
    return program


def _self_check(model, module, example_input):
    """The example through both, compared end to end and layer by layer (xnorinfer.testing):
    raises with the report's table if anything differs beyond float rounding that a near tie
    does not explain. Returns the report."""
    from ..testing import compare

    report = compare(model, module, example_input.numpy())
    if not report.passed:
        raise ConversionError("the imported model differs from the module on the example input:\n" + str(report))
    if report.flips_explained:
        warnings.warn(
            f"{report.flips_explained} sign(s) flipped on the example input where the value before the "
            "sign is within float rounding of its threshold (near ties; see model.import_report)",
            stacklevel=3,
        )
    return report


# ---------------------------------------------------------------------------------------------------


class _Importer:
    """Walks one exported program and emits the engine graph."""

    def __init__(self, program, example_input):
        self.torch = _torch()
        self.program = program
        self.graph = program.graph
        self.example_input = example_input
        n, c, h, w = example_input.shape
        self.b = GraphBuilder((h, w, c))
        self.errors: list[str] = []
        self.notes: list[str] = []
        self.env: dict = {}
        self.names = _LayerNames(self.graph)
        self._taken = {self.b.input}
        self._origin = {}  # engine node name -> the torch node it was emitted for
        self._parent = {}  # a node of an inlined submodule -> the main-graph node that called it
        self.computed = {}  # node -> its value when it ran (env is rebound by in-place ops after)

    # ---- the walk ----------------------------------------------------------------------------

    def run(self):
        sig = self.program.graph_signature
        consts = {}
        consts.update({k: self.program.state_dict[v] for k, v in sig.inputs_to_parameters.items()})
        consts.update(
            {
                k: (self.program.state_dict[v] if v in self.program.state_dict else self.program.constants[v])
                for k, v in sig.inputs_to_buffers.items()
            }
        )
        consts.update(
            {k: self.program.constants[v] for k, v in getattr(sig, "inputs_to_lifted_tensor_constants", {}).items()}
        )
        user_inputs = [n for n in self.graph.nodes if n.op == "placeholder" and n.name not in consts]
        if len(user_inputs) != 1:
            raise ConversionError(f"the module must take one input tensor, it takes {len(user_inputs)}")
        output = None
        for node in self.graph.nodes:
            if node.op == "placeholder":
                if node.name in consts:
                    self.env[node] = consts[node.name].detach()
                else:
                    self.env[node] = Value(self.example_input, build=lambda: self.b.input)
            elif node.op == "get_attr":
                self.env[node] = _fetch(self.program.graph_module, node.target)
            elif node.op == "call_function":
                self.env[node] = self.computed[node] = self._call(node)
            elif node.op == "output":
                output = node.args[0]
            else:
                self._error(node, f"unsupported node kind {node.op}")
                self.env[node] = None
        if isinstance(output, (tuple, list)):
            if len(output) != 1:
                raise ConversionError("the module must return one tensor")
            output = output[0]
        result = self.env.get(output)
        if not isinstance(result, Value):
            raise ConversionError("the module's output does not depend on its input")
        out_name = self._emit(result, output)
        if self.errors:
            listing = "\n".join(f"  - {e}" for e in self.errors)
            raise UnsupportedModuleError(f"{len(self.errors)} operation(s) cannot be imported:\n{listing}")
        # Nodes were emitted as the output demanded them; in the module's own order the graph reads
        # like its source (and still runs: each node reads only nodes of earlier torch nodes).
        position = {node: i for i, node in enumerate(self.graph.nodes)}
        origin = lambda n: self._origin[n.name]  # noqa: E731
        self.b.nodes.sort(key=lambda n: position[self._parent.get(origin(n), origin(n))])
        return self.b.build(out_name), self.notes, self._layers()

    def _layers(self) -> dict[str, str]:
        """{module: engine node computing its output} for the modules whose output the engine
        graph holds as a float tensor (a sign fed only to binary convs exists only as bits)."""
        layers = {}
        for module, node in self.names.module_outputs.items():
            value = self.computed.get(node)
            value = value.first if isinstance(value, _Multi) else value
            if isinstance(value, Value) and value._tensor not in (None, UNSUPPORTED, self.b.input):
                layers[module] = value._tensor
        return dict(sorted(layers.items()))

    def _emit(self, value: Value, node) -> str:
        try:
            return value.tensor
        except _Unsupported as exc:
            self._error(node, str(exc))
            return UNSUPPORTED

    def _error(self, node, message: str):
        where = _location(node)
        entry = f"{node.name} ({node.target if node.op == 'call_function' else node.op}): {message}{where}"
        if entry not in self.errors:
            self.errors.append(entry)

    def _call(self, node):
        args = self._map(node.args)
        kwargs = self._map(node.kwargs)
        dynamic = [v for v in _flatten((args, kwargs)) if isinstance(v, (Value, _Multi))]
        name = _op_name(node.target)
        if name in _WRAPPERS:  # strict export's wrappers around autograd.Function / no_grad code
            return self._inline(node, args[1], args[2:])
        mutated = _mutated_argument(node)
        if mutated is not None:
            # relu_(x), out += y: the op's functional form, and from here on readers of x see the
            # result (nodes run in program order, so that is exactly when the mutation happened)
            name = name.rstrip("_")
            if self._is_view_of_dynamic(mutated):
                result = self._unsupported(node, None, "an in-place update of a view of an activation", dynamic)
                self.env[mutated] = result
                return result
        if not dynamic:
            forward = self._ste_forward(node)
            if forward is not None:
                return forward
            with self.torch.no_grad():
                if mutated is not None:  # never write into the module's own parameters
                    args = (args[0].clone(),) + tuple(args[1:])
                result = node.target(*args, **kwargs)  # a constant: folded with torch's arithmetic
        else:
            result = self._dynamic(node, name, args, kwargs, dynamic)
        if mutated is not None:
            self.env[mutated] = result
        return result

    def _inline(self, parent, submodule, inputs):
        """Walks a wrapped submodule's graph in place, its inputs bound to the call's arguments."""
        outputs = None
        placeholders = iter(inputs)
        for node in submodule.graph.nodes:
            self._parent[node] = self._parent.get(parent, parent)
            if node.op == "placeholder":
                self.env[node] = next(placeholders)
            elif node.op == "get_attr":
                self.env[node] = _fetch(submodule, node.target)
            elif node.op == "call_function":
                self.env[node] = self._call(node)
            elif node.op == "output":
                outputs = self._map(node.args[0])
        return tuple(outputs) if isinstance(outputs, (list, tuple)) else outputs

    def _ste_forward(self, node):
        """a.detach() - b.detach() + b on parameters (a straight-through estimator: Bi-Real's
        weights) is a in the forward pass. Evaluated as written it can differ from a by a rounding
        step, which would hide that the weights are binary: fold it to a."""
        if _op_name(node.target) != "add" or len(node.args) != 2:
            return None
        for diff, b in (node.args, node.args[::-1]):
            if (
                isinstance(diff, self.torch.fx.Node)
                and _op_name(diff.target) == "sub"
                and len(diff.args) == 2
                and _strip(diff.args[1]) is _strip(b)
            ):
                return self.env[_strip(diff.args[0])]
        return None

    def _is_view_of_dynamic(self, fx_node) -> bool:
        return (
            isinstance(fx_node, self.torch.fx.Node)
            and fx_node.op == "call_function"
            and _op_name(fx_node.target) in _VIEWS
            and isinstance(self.env.get(fx_node.args[0]), Value)
        )

    def _dynamic(self, node, name, args, kwargs, dynamic):
        example = self._run_example(node, args, kwargs)
        handler = _HANDLERS.get(name)
        if handler is None:
            return self._unsupported(node, example, f"no engine equivalent for {name}", dynamic)
        try:
            result = handler(self, node, example, *args, **kwargs)
        except _Unsupported as exc:
            return self._unsupported(node, example, str(exc), dynamic)
        new = result.first if isinstance(result, _Multi) else result
        if isinstance(new, Value) and new.build is not None and not any(new is v for v in dynamic):
            new.build = self._guarded(node, new.build)
        return result

    def _guarded(self, node, build):
        """build, with what it cannot emit reported against `node` (the rest of the graph goes on)."""

        def run():
            try:
                return build()
            except _Unsupported as exc:
                self._error(node, str(exc))
                return UNSUPPORTED

        return run

    def _unsupported(self, node, example, message, inputs) -> Value:
        """A value whose engine form is an error, reported only if the output needs it; its inputs
        are visited too, so one import lists every unsupported node on the way."""

        def build():
            self._error(node, message)
            for value in inputs:
                if isinstance(value, Value):
                    self._emit(value, node)
            return UNSUPPORTED

        return Value(example, build=build)

    def reapply(self, node, first):
        """The node's op on another example value for its first argument (a layout op moved onto
        the source of the signs it was applied to)."""
        args = self._examples(self._map(node.args))
        kwargs = self._examples(self._map(node.kwargs))
        with self.torch.no_grad():
            return node.target(first, *args[1:], **kwargs)

    def _run_example(self, node, args, kwargs):
        ex_args = self._examples(args)
        ex_kwargs = self._examples(kwargs)
        if _mutated_argument(node) is not None and isinstance(ex_args[0], self.torch.Tensor):
            ex_args = (ex_args[0].clone(),) + tuple(ex_args[1:])  # earlier examples stay as they were
        with self.torch.no_grad():
            return node.target(*ex_args, **ex_kwargs)

    def _map(self, obj):
        fx = self.torch.fx
        if isinstance(obj, fx.Node):
            return self.env[obj]
        if isinstance(obj, (list, tuple)):
            return type(obj)(self._map(o) for o in obj)
        if isinstance(obj, dict):
            return {k: self._map(v) for k, v in obj.items()}
        return obj

    def _examples(self, obj):
        if isinstance(obj, Value):
            # clone/contiguous map to the same Value, so a view after them needs this copy
            return obj.example.contiguous()
        if isinstance(obj, _Multi):
            return obj.example
        if isinstance(obj, (list, tuple)):
            return type(obj)(self._examples(o) for o in obj)
        if isinstance(obj, dict):
            return {k: self._examples(v) for k, v in obj.items()}
        return obj

    # ---- emitting engine nodes ---------------------------------------------------------------

    def add(self, fx_node, op, inputs, attrs=None, suffix=None, **params) -> str:
        """One engine node for `fx_node`; the node computing its module's output gets the module's
        name, helpers get `/suffix`."""
        base = self.names.of(fx_node)
        name = base if suffix is None else f"{base}/{suffix}"
        while name in self._taken:
            name += "_"
        self._taken.add(name)
        self._origin[name] = fx_node
        params = {k: None if v is None else np.ascontiguousarray(v, dtype=v.dtype) for k, v in params.items()}
        return self.b.add(op, inputs, name, attrs, **params)

    def value(self, example, build, **facts) -> Value:
        return Value(example, build=build, **facts)


class _Multi:
    """A node with several outputs (batch_norm's (out, mean, rstd)): getitem picks one."""

    def __init__(self, example, first: Value):
        self.example, self.first = example, first


class _LayerNames:
    """Engine node names from the module hierarchy: the last node run inside a module call (at
    any depth) computes its output and takes the module's qualified name; where it ends several
    nested calls, the innermost module's."""

    def __init__(self, graph):
        self.of_node = {}
        self.module_outputs = {}  # module call -> the torch node computing its output
        last_in_call: dict = {}
        calls: dict[str, list] = {}
        depth_of: dict[str, int] = {}
        for node in graph.nodes:
            stack = node.meta.get("nn_module_stack") or {}
            if node.op != "call_function" or not stack:
                continue
            for depth, (key, (path, _)) in enumerate(stack.items()):  # a call ends with its last node, at any depth
                last_in_call[key] = node
                depth_of[path] = depth
                if path and key not in calls.setdefault(path, []):
                    calls[path].append(key)
        owner = {}
        for path in sorted(calls, key=lambda p: -depth_of[p]):  # innermost calls first
            keys = calls[path]
            for i, key in enumerate(keys):
                last = last_in_call[key]
                while getattr(last.target, "__name__", "") == "getitem":  # batch_norm's (out, mean, rstd)[0]
                    last = last.args[0]
                # the innermost call wins: a block ending with its move23 names that node move23
                owner.setdefault(last, path if i == 0 else f"{path}@{i}")
                self.module_outputs[path if i == 0 else f"{path}@{i}"] = last
        for node in graph.nodes:
            stack = node.meta.get("nn_module_stack") or {}
            path = list(stack.values())[-1][0] if stack else ""
            self.of_node[node] = owner.get(node) or (f"{path}/{node.name}" if path else node.name)

    def of(self, node) -> str:
        return self.of_node.get(node) or node.name  # nodes of inlined submodules have no module path


_WRAPPERS = {"wrap_with_set_grad_enabled", "wrap_with_autocast"}


def _fetch(module, target: str):
    for part in target.split("."):
        module = getattr(module, part)
    return module


_VIEWS = {
    "slice",
    "select",
    "view",
    "reshape",
    "alias",
    "transpose",
    "permute",
    "expand",
    "narrow",
    "as_strided",
    "unsqueeze",
    "squeeze",
    "diagonal",
    "t",
}
_IDENTITIES = {"detach", "alias", "clone", "contiguous"}


def _mutated_argument(node):
    """The node an in-place op writes into (its first argument), or None."""
    schema = getattr(node.target, "_schema", None)
    if schema is None or not schema.is_mutable or not node.args:
        return None
    info = schema.arguments[0].alias_info if schema.arguments else None
    return node.args[0] if info is not None and info.is_write else None


def _strip(arg):
    """The node behind detach / alias / clone calls."""
    while getattr(arg, "op", None) == "call_function" and _op_name(arg.target) in _IDENTITIES:
        arg = arg.args[0]
    return arg


def _location(node) -> str:
    trace = node.meta.get("stack_trace")
    if not trace:
        return ""
    lines = [line.strip() for line in trace.strip().splitlines() if line.strip().startswith("File ")]
    # the innermost frame of the user's code, not of torch.nn's modules
    own = [line for line in lines if f"{os.sep}torch{os.sep}" not in line] or lines
    return f" at {own[-1][5:]}" if own else ""


def _flatten(obj):
    if isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _flatten(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _flatten(o)
    else:
        yield obj


def _op_name(target) -> str:
    name = getattr(target, "__name__", str(target))
    overload = getattr(target, "_overloadpacket", None)
    if overload is not None:
        return overload.__name__
    return name


from . import _torch_ops  # noqa: E402  (the handlers need the classes above)

_HANDLERS = _torch_ops.HANDLERS


# ---- the command line's form: a model file, a factory and a checkpoint ---------------------------------


def load_module(factory: str, weights=None, *, state_dict_key: str | None = None, prepare: str | None = None):
    """(module, source info) from 'path/to/file.py:factory' (called with no arguments), its
    weights from a checkpoint (read with weights_only=True, loaded strictly; a DataParallel
    'module.' prefix is removed) and an optional 'file.py:function' run on the module before import
    (e.g. XNOR-Net's BinOp binarizing weights in place). The files are imported as Python: they are
    the user's own model code."""
    torch = _torch()
    build = _attribute(factory, "factory")
    module = build()
    if not isinstance(module, torch.nn.Module):
        raise ConversionError(f"{factory} returned {type(module).__name__}, not a torch.nn.Module")
    source = {"module_file": factory.rsplit(":", 1)[0]}
    if weights is not None:
        with open(weights, "rb") as f:
            source["weights_sha256"] = hashlib.sha256(f.read()).hexdigest()
        source["weights"] = os.path.basename(os.fspath(weights))
        try:
            obj = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ConversionError(f"{weights}: cannot be read as a PyTorch checkpoint ({type(exc).__name__})") from None
        state = _state_dict(obj, state_dict_key)
        expected = module.state_dict().keys()
        if not set(expected) & set(state) and all(k.startswith("module.") for k in state):
            state = {k[len("module.") :]: v for k, v in state.items()}
        result = module.load_state_dict(state, strict=False)
        # 2017-era checkpoints have no num_batches_tracked; eval never reads it
        problems = [f"missing {k}" for k in result.missing_keys if not k.endswith("num_batches_tracked")] + [
            f"unexpected {k}" for k in result.unexpected_keys
        ]
        if problems:
            raise ConversionError(f"{weights} does not fit {factory}: " + ", ".join(problems))
    if prepare is not None:
        _attribute(prepare, "prepare function")(module)
    return module, source


def _state_dict(obj, key):
    from collections.abc import Mapping

    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            raise ConversionError(f"the checkpoint has no entry {key!r}")
        obj = obj[key]
    elif isinstance(obj, Mapping):
        for candidate in ("state_dict", "model"):
            if isinstance(obj.get(candidate), Mapping):
                obj = obj[candidate]
                break
    if not isinstance(obj, Mapping):
        raise ConversionError("the checkpoint holds no state_dict (use --state-dict-key)")
    return dict(obj)


def _attribute(spec: str, what: str):
    import importlib.util
    import sys

    path, sep, attr = spec.rpartition(":")
    if not sep or not path.endswith(".py") or not attr:
        raise ValueError(f"{what} must be given as path/to/file.py:name, got {spec!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no file {path!r}")
    name = f"xnorinfer_user_{hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:12]}"
    module = sys.modules.get(name)
    if module is None:
        spec_ = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec_)
        folder = os.path.dirname(os.path.abspath(path))
        sys.path.insert(0, folder)  # the model file may import its neighbours
        try:
            sys.modules[name] = module
            spec_.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        finally:
            sys.path.remove(folder)
    if not hasattr(module, attr):
        raise ValueError(f"{path} defines no {attr!r}")
    return getattr(module, attr)
