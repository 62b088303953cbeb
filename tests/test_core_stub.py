"""xnorinfer/_core.pyi against the built extension: the same public names, and for every function
and BConvCall the same parameters (names, order, keyword-only, defaults), so the stub cannot drift
from the .pyx."""

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

import xnorinfer
from xnorinfer import _core

STUB = Path(xnorinfer.__file__).with_name("_core.pyi")


def _stub():
    tree = ast.parse(STUB.read_text())
    functions, classes, names = {}, {}, set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            functions[node.name] = node.args
        elif isinstance(node, ast.ClassDef):
            classes[node.name] = {n.name: n.args for n in node.body if isinstance(n, ast.FunctionDef)}
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
    return functions, classes, names


def _params(args: ast.arguments, skip_self=False):
    positional = [a.arg for a in args.posonlyargs + args.args][1 if skip_self else 0 :]
    defaults = [None] * (len(args.args) - len(args.defaults)) + [ast.literal_eval(d) for d in args.defaults]
    kwonly = [a.arg for a in args.kwonlyargs]
    return positional, defaults[1 if skip_self else 0 :], kwonly


def _signature(fn):
    params = inspect.signature(fn).parameters.values()
    positional = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    defaults = [None if p.default is p.empty else p.default for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    kwonly = [p.name for p in params if p.kind is p.KEYWORD_ONLY]
    return positional, defaults, kwonly


def test_the_stub_names_exactly_the_public_module():
    functions, classes, names = _stub()
    public = {n for n in dir(_core) if not n.startswith("_")}
    assert set(functions) | set(classes) | names - {"Array"} == public


def test_the_stub_gives_every_function_its_parameters():
    functions, _, _ = _stub()
    for name, args in functions.items():
        assert _params(args) == _signature(getattr(_core, name)), name


def _bconv_call_arguments(names):
    """A 1x1 convolution of one pixel, 64 input channels of +1 (bits 0), 8 outputs of weights +1."""
    geometry = dict.fromkeys(_core.BCONV_GEOMETRY, 0)
    geometry.update(n=1, h=1, w=1, c=64, groups=1, o=8, kh=1, kw=1, sh=1, sw=1, ho=1, wo=1)
    given = dict(
        geometry=geometry,
        x=np.zeros(1, np.uint64),
        blocked=np.zeros(_core.bconv_blocked_words(8, 1, 64, 1, 1), np.uint64),
        tap_popcount=np.zeros(8, np.int32),
        out=np.full((1, 1, 1, 8), np.nan, np.float32),
        out_stride=8,
        first_bit=0,
        pack_zero_to=0,
    )
    return {name: given.get(name) for name in names}


def test_the_bound_call_takes_exactly_the_stubs_keywords_and_runs():
    _, classes, _ = _stub()
    positional, _, keywords = _params(classes["BConvCall"]["__init__"], skip_self=True)
    assert positional == [] and "geometry" in keywords
    arguments = _bconv_call_arguments(keywords)
    call = _core.BConvCall(**arguments)
    call()
    np.testing.assert_array_equal(call.out, np.full((1, 1, 1, 8), 64, np.float32))  # 64 agreeing +1s
    assert call.geometry == arguments["geometry"] and call.out_stride == 8
    for name in keywords:  # every keyword is required
        with pytest.raises(TypeError):
            _core.BConvCall(**{k: v for k, v in arguments.items() if k != name})
    with pytest.raises(TypeError):
        _core.BConvCall(**arguments, dilation=1)
    with pytest.raises(TypeError):
        _core.BConvCall(*arguments.values())
    with pytest.raises(TypeError, match="geometry needs exactly"):
        _core.BConvCall(**dict(arguments, geometry=dict(arguments["geometry"], dilation=1)))


def test_constants_come_from_the_c_headers():
    assert _core.BLOCK_MAX_REST == 4
    assert _core.ZERO_TO == {"one": 0, "minus_one": 1}
    assert len(_core.BCONV_GEOMETRY) == len(set(_core.BCONV_GEOMETRY)) == 17
