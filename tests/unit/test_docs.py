"""The README and `make help` stay true to the code."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from shipyard.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    for variable in Settings().to_env():
        assert f"`{variable}`" in readme, f"{variable} is missing from README's configuration table"


def test_readme_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make up", "make test"]


def test_ci_runs_the_readme_test_command() -> None:
    assert (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1] == "make test"


def test_make_help_lists_every_target_with_a_description() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-zA-Z0-9_-]+):", makefile, flags=re.MULTILINE))
    shown = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "help"], capture_output=True, text=True, check=True
    ).stdout
    listed = {line.split()[0] for line in shown.splitlines() if line.strip()}
    assert listed == targets


def test_every_package_is_installed() -> None:
    """A package missing from pyproject's list works in a checkout and breaks in the image."""
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(("shipyard", *p.parent.relative_to(ROOT / "platform" / "shipyard").parts)).rstrip(
            "."
        )
        for p in (ROOT / "platform" / "shipyard").rglob("__init__.py")
    }
    found |= {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert found == listed
