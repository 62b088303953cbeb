"""The speed tables in docs/performance.md and README.md are what benchmarks/tables.py makes of the
committed benchmarks/results/*.json: regenerating them changes nothing (no benchmark runs here)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("tables", ROOT / "benchmarks" / "tables.py")
tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tables)


@pytest.mark.parametrize("path", sorted(tables.TABLES))
def test_tables_match_the_committed_json(path):
    text = (ROOT / path).read_text()
    assert tables.render(text, tables.TABLES[path]) == text, f"run python benchmarks/tables.py to update {path}"


def test_every_marker_is_generated():
    for path, named in tables.TABLES.items():
        text = (ROOT / path).read_text()
        assert set(named) == set(tables.re.findall(r"<!-- tables:([\w-]+):begin -->", text)), path


def test_render_keeps_the_prose_and_replaces_only_between_markers():
    text = "before\n<!-- tables:t:begin -->\nold\n<!-- tables:t:end -->\nafter\n"
    new = tables.render(text, {"t": lambda: "| a |\n| --- |\n| 1 |"})
    assert new == "before\n<!-- tables:t:begin -->\n\n| a |\n| --- |\n| 1 |\n\n<!-- tables:t:end -->\nafter\n"
    with pytest.raises(ValueError, match="exactly one"):
        tables.render("no markers", {"t": lambda: ""})


def test_bench_table_from_json():
    # the ratios are of the medians, as xnorinfer bench prints them
    first = tables.bench().splitlines()[2]
    assert first.startswith("| ReActNet-A, 224x224 | 1 | 7.14 ms (6.38) | 138.2 ms (19.3x) |")
