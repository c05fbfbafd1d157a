"""A data set's manifest (``manifest.json``: config, row counts, content digest) and the digest.

Kept apart from the Parquet code (``shipyard.data.offline_source``) and free of heavy imports:
pipeline steps that only read or check a manifest (ingest, register) run in fresh processes,
where importing Polars and pyarrow would cost more than their whole work.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from shipyard.errors import ShipyardError

MANIFEST = "manifest.json"


def content_digest(root: Path) -> str:
    """``sha256:…`` over every Parquet file's relative path and bytes under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.parquet")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return f"sha256:{digest.hexdigest()}"


def write_manifest(folder: Path, manifest: dict) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))


def read_manifest(out: Path) -> dict:
    """The manifest of a data set (written by ``offline_source.write_offline_source`` or a
    later stage)."""
    try:
        return json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise ShipyardError(f"{out} is not a Shipyard data set (no readable {MANIFEST})") from exc
