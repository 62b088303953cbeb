"""The README is a user's README: the two set-up commands first, and short."""

import re
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
    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if "://" not in target:
            assert (root / target).exists(), target


def test_every_section_is_short_and_links_to_its_docs():
    # The detail lives in docs/: each section of the README says what a user needs and links there.
    sections = re.split(r"^(?=##+ )", README, flags=re.M)[1:]
    assert len(sections) >= 8
    for section in sections:
        heading, body = section.split("\n", 1)
        assert len(body.rstrip("\n").splitlines()) <= 20, heading
        assert "](docs/" in body, heading
