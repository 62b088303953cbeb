"""The CLI's shared conventions: --json a flag everywhere, --output FILE for results, --jsonl,
--quiet, help on every option, usage lines naming the subcommand, the documented exit codes."""

import argparse
import json
import os
import subprocess
import sys

import pytest

import xnorinfer
from xnorinfer import _runtime
from xnorinfer.cli import ExitCode, build_parser, main

IMAGES = os.path.join(os.path.dirname(__file__), "..", "examples", "images")
SUBCOMMANDS = ["classify", "convert", "import", "info", "models", "bench"]


def subparsers():
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices


def test_every_subcommand_has_json_quiet_and_help_on_every_option():
    parsers = subparsers()
    assert sorted(parsers) == sorted(SUBCOMMANDS)
    for name, p in parsers.items():
        options = {opt: a for a in p._actions for opt in a.option_strings}
        assert isinstance(options["--json"], argparse._StoreTrueAction), name
        assert isinstance(options["--quiet"], argparse._StoreTrueAction), name
        for action in p._actions:
            if action.help != argparse.SUPPRESS:
                assert action.help, f"{name}: {action.option_strings or action.dest} has no help"
        # results go to --output FILE; convert and import keep -o/--output as the model they write
        assert options["--output"].dest == ("output" if name in ("convert", "import") else "results"), name
        assert ("-o" in options) == (name in ("convert", "import")), name


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_help_usage_line_names_the_subcommand(name, capsys):
    with pytest.raises(SystemExit) as exit:
        main([name, "--help"])
    assert exit.value.code == ExitCode.OK
    text = capsys.readouterr().out
    assert text.startswith(f"usage: xnorinfer {name} ")
    assert "exit codes:\n  0  ok\n  1  some inputs were bad" in text and "  2  usage error\n  3  internal error" in text


def test_usage_errors_exit_2(capsys):
    for argv in (
        ["classify", IMAGES, "--json", "--jsonl"],
        ["classify", IMAGES, "--top-k", "0"],
        ["models", "--bogus"],
        ["bench", "--json", "out.json"],
    ):  # --json takes no file any more
        with pytest.raises(SystemExit) as exit:
            main(argv)
        assert exit.value.code == ExitCode.USAGE, argv
    capsys.readouterr()


def test_internal_errors_exit_3_in_one_line(monkeypatch, capsys):
    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(xnorinfer.shipped, "describe", broken)
    assert main(["models"]) == ExitCode.INTERNAL
    err = capsys.readouterr().err.strip()
    assert err == "xnorinfer models: internal error: RuntimeError: boom (run with --debug for the traceback)"


def test_classify_jsonl_streams_one_record_per_image(tmp_path, capsys):
    missing = str(tmp_path / "missing.png")
    assert main(["classify", IMAGES, missing, "--jsonl", "--top-k", "2", "--batch-size", "3"]) == ExitCode.BAD_INPUT
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 11 and captured.err == ""
    assert [os.path.basename(r["image"]) for r in records[:10]] == sorted(
        n for n in os.listdir(IMAGES) if n.endswith(".png")
    )
    assert records[1]["predictions"][0]["label"] == "automobile" and len(records[1]["predictions"]) == 2
    assert records[10] == {"image": missing, "error": f"{missing}: no such file"}
    # the same records as --json's array, one per line
    main(["classify", IMAGES, missing, "--json", "--top-k", "2"])
    assert json.loads(capsys.readouterr().out) == records


def test_classify_output_file_gets_the_results_and_stdout_stays_empty(tmp_path, capsys):
    out = tmp_path / "labels.txt"
    assert main(["classify", IMAGES, "--top-k", "1", "--output", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    lines = out.read_text().splitlines()
    assert len(lines) == 10 and lines[3].endswith("cat.png: cat 0.957")
    assert main(["classify", IMAGES, "--jsonl", "--output", str(out)]) == 0
    assert len([json.loads(line) for line in out.read_text().splitlines()]) == 10


def test_info_json_output_file(tmp_path, capsys):
    out = tmp_path / "meta.json"
    assert main(["info", "cifar10_reactnet", "--json", "--output", str(out)]) == 0
    assert capsys.readouterr().out == ""
    assert json.loads(out.read_text())["arch"] == "reactnet-a"


def test_a_single_threaded_build_says_so_loudly(monkeypatch, capsys):
    monkeypatch.setattr(_runtime._core, "openmp_enabled", lambda: False)
    with pytest.raises(SystemExit):
        main(["--version"])
    version = capsys.readouterr().out
    assert version.startswith(f"xnorinfer {xnorinfer.__version__}\nWARNING:") and "ONE thread" in version
    xnorinfer.show_config()
    assert "WARNING: this xnorinfer was built without OpenMP" in capsys.readouterr().out


def test_an_openmp_build_prints_no_warning(capsys):
    if not _runtime._core.openmp_enabled():
        pytest.skip("this build is single-threaded")
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out == f"xnorinfer {xnorinfer.__version__}\n"


@pytest.mark.parametrize(
    "argv, extra",
    [
        (["convert", "ckpt.pth", "-o", "x.xnr", "--arch", "xnor-nin"], "torch"),
        (["import", "model.py:make", "--input-shape", "1,3,8,8", "-o", "x.xnr"], "torch"),
        (["bench", "--quick"], "bench"),
    ],
)
def test_without_torch_the_converters_say_what_to_install(argv, extra, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ckpt.pth").write_bytes(b"not read")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    assert main(argv) == ExitCode.BAD_INPUT
    (err,) = capsys.readouterr().err.splitlines()  # one line, naming the CPU index first, then the extra
    assert err.startswith(f"xnorinfer {argv[0]}: error: ") and "needs PyTorch (torch>=2.13,<3)" in err
    assert (
        f"pip install torch --index-url https://download.pytorch.org/whl/cpu && pip install 'xnorinfer[{extra}]'" in err
    )


def test_a_reader_that_stops_early_ends_classify_quietly():
    # `classify | head -0`: the pipe is closed before the first line (the interpreter and the model
    # take far longer to load than this takes), so every write fails; no error line, exit code 0.
    proc = subprocess.Popen(
        [sys.executable, "-m", "xnorinfer", "classify", IMAGES], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()
    _, stderr = proc.communicate(timeout=60)
    assert stderr == b""
    assert proc.returncode == ExitCode.OK
