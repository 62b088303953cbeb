"""The README is a user's README: the two set-up commands first, and short."""

from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_starts_with_the_two_setup_commands_and_stays_short():
    lines = README.splitlines()
    assert len(lines) <= 220, len(lines)
    commands = [line for line in lines[:20] if line.startswith("python3 -m venv")]
    assert len(commands) == 2
    assert "xnorinfer classify" in commands[0] and commands[1].endswith("pytest")


def test_readme_links_point_at_files_that_exist():
    root = Path(__file__).resolve().parents[1]
    import re

    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if "://" not in target:
            assert (root / target).exists(), target
