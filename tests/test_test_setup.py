"""The test suite's own set-up: hypothesis profiles and the slow marker."""

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]


def test_hypothesis_profiles_dev_and_ci():
    assert settings.get_profile("ci").derandomize
    assert settings.get_profile("ci").database is None
    assert not settings.get_profile("dev").derandomize
    loaded = os.environ.get("HYPOTHESIS_PROFILE", "dev")
    assert settings.default.derandomize == settings.get_profile(loaded).derandomize


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_slow_marker_is_registered_and_a_plain_pytest_runs_it():
    import tomllib

    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert any(m.startswith("slow:") for m in options["markers"])
    assert "slow" not in options.get("addopts", "")  # the README's plain `pytest` deselects nothing


def test_the_imagenet_size_tests_are_marked_slow():
    import test_convert

    marked = {m.name for m in getattr(test_convert.test_reactnet_a_official_size_on_the_grid, "pytestmark", [])}
    assert "slow" in marked
    alexnet = [p for p in test_convert.XNOR_PARAMS if getattr(p, "values", None) == ("alexnet",)]
    assert alexnet and any(m.name == "slow" for m in alexnet[0].marks)


def test_ci_runs_the_ci_profile():
    assert "HYPOTHESIS_PROFILE=ci pytest" in (ROOT / ".ci" / "run").read_text()


def test_shared_test_code_is_the_helpers_package_and_benchmarks_do_not_patch_the_path():
    import helpers

    assert Path(helpers.__file__).parent == ROOT / "tests" / "helpers"
    loose = [p.name for p in (ROOT / "tests").glob("*.py") if not p.name.startswith("test_")]
    assert loose == ["conftest.py"]  # fixtures and hooks only; reusable code lives in helpers/
    for script in (ROOT / "benchmarks").glob("*.py"):
        assert '/ "tests"' not in script.read_text(), script.name
