"""Generated files checked against the code that generates them (rules, dashboards)."""

from __future__ import annotations

from pathlib import Path


def differences(directory: Path, files: dict[str, str], pattern: str) -> list[str]:
    """What in ``directory`` differs from ``files`` (name -> text): missing, changed, or
    matching ``pattern`` but no longer generated."""
    found = {p.name for p in directory.glob(pattern)} if directory.is_dir() else set()
    problems = [f"{directory / n}: missing" for n in sorted(set(files) - found)]
    problems += [f"{directory / n}: not generated any more" for n in sorted(found - set(files))]
    problems += [
        f"{directory / n}: differs"
        for n in sorted(set(files) & found)
        if (directory / n).read_text() != files[n]
    ]
    return problems
