"""Secrets the embedded stack creates for itself when none is configured (PII key, admin key).

Each lives in ``<state dir>/secrets/`` as a 0600 file, created once and then reused.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from shipyard.errors import ShipyardError


def read_or_create(path: Path, min_length: int = 32) -> str:
    """The secret in ``path``, created with a fresh random value the first time."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fresh = secrets.token_hex(32)
        # Write to a private temporary name, then link: two first runs racing still end up
        # with one complete key, and no reader ever sees a half-written file.
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(fresh)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink(missing_ok=True)
    value = path.read_text().strip()
    if len(value) < min_length:
        raise ShipyardError(f"{path} holds no usable key: delete it to create a new one")
    return value
