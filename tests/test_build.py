"""setup.py's OpenMP probe: it must link the way the extension will, with CFLAGS and LDFLAGS."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def probe(monkeypatch):
    from setuptools._distutils import ccompiler, sysconfig

    monkeypatch.chdir(ROOT)  # setup.py lists the C sources relative to the checkout
    monkeypatch.delenv("XNORINFER_DISABLE_OPENMP", raising=False)
    spec = importlib.util.spec_from_file_location("xnorinfer_setup", ROOT / "setup.py")
    setup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(setup)  # defines openmp_flags; setup() runs only as __main__

    def run():
        compiler = ccompiler.new_compiler()
        sysconfig.customize_compiler(compiler)  # reads CC, CFLAGS, LDFLAGS as a real build does
        return setup.openmp_flags(compiler)

    return run


def test_probe_finds_openmp_here(probe, monkeypatch):
    monkeypatch.delenv("LDFLAGS", raising=False)
    if probe() is None:
        pytest.skip("this compiler has no OpenMP")
    assert probe()[0] == ["-fopenmp"]


def test_probe_links_with_ldflags(probe, monkeypatch):
    if probe() is None:
        pytest.skip("this compiler has no OpenMP")
    # A linker flag that no linker accepts: if the probe honours LDFLAGS it must now fail, as the
    # extension's own link would.
    monkeypatch.setenv("LDFLAGS", "-Wl,--xnorinfer-no-such-linker-flag")
    assert probe() is None
    monkeypatch.setenv("LDFLAGS", f"-L{ROOT}")  # harmless flags change nothing
    assert probe() is not None


def test_probe_honours_the_disable_switch(probe, monkeypatch):
    monkeypatch.setenv("XNORINFER_DISABLE_OPENMP", "1")
    assert probe() is None
