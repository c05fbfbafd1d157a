"""Published model versions, as the gateway sees them in the Triton model repository.

``shipyard serve publish`` writes ``<repository>/<model>/<version>/serving.json`` (feature
service, input order, lineage) beside ``model.onnx`` once Triton has loaded the version; a
version folder without it is not published. The gateway keeps an ONNX Runtime session per
version it routes to: the last hop of the backend chain.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.observability.drift import Reference
from shipyard.training.export import EXPLAINER_FILE, INPUT, OUTPUT, PUBLISHED_MARKER

METADATA_FILE = PUBLISHED_MARKER


class VersionNotPublished(Exception):
    """The version folder or its metadata is missing or unreadable."""


@dataclass(frozen=True)
class ServedVersion:
    model: str
    version: str
    feature_service: str
    input_names: tuple[str, ...]
    lineage: dict[str, Any] = field(default_factory=dict)
    session: Any = field(default=None, repr=False, compare=False)
    # The drift monitor's baseline, written by the export step (None for older exports).
    reference: Reference | None = field(default=None, repr=False, compare=False)

    # The version's LightGBM model, for explanations (None: exported without it).
    explainer_file: Path | None = field(default=None, repr=False, compare=False)

    def score(self, x: np.ndarray) -> np.ndarray:
        """In-process ONNX Runtime: P(fraud) per row."""
        return self.session.run([OUTPUT], {INPUT: x})[0][:, 0]

    @cached_property
    def _booster(self) -> Any:
        if self.explainer_file is None:
            raise VersionNotPublished(
                f"{self.model} v{self.version} was exported without its LightGBM model: "
                "explanations need a version exported by this release"
            )
        import lightgbm as lgb  # only explanations pay for the import

        return lgb.Booster(model_file=str(self.explainer_file))

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per row, each input's additive effect on the raw score, then the base value
        (LightGBM's TreeSHAP). Raises VersionNotPublished when the version has no explainer."""
        return self._booster.predict(x, pred_contrib=True)


def write_metadata(folder: Path, metadata: dict[str, Any]) -> None:
    """Write ``serving.json`` last and atomically: its presence means 'published'."""
    temporary = folder / f".{METADATA_FILE}.partial"
    temporary.write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    temporary.replace(folder / METADATA_FILE)


def read_metadata(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / METADATA_FILE).read_text())
    except FileNotFoundError:
        raise VersionNotPublished(f"{folder} is not published") from None
    except (OSError, ValueError) as exc:
        raise VersionNotPublished(f"{folder / METADATA_FILE} is unreadable: {exc}") from None


class ModelCatalog:
    """Versions in one model repository, loaded on first use and then kept."""

    def __init__(self, repository: Path) -> None:
        self.repository = repository
        self._loaded: dict[tuple[str, str], ServedVersion] = {}
        self._lock = threading.Lock()

    def published(self, model: str) -> list[str]:
        folder = self.repository / model
        if not folder.is_dir():
            return []
        versions = [
            p.name for p in folder.iterdir() if p.name.isdigit() and (p / METADATA_FILE).is_file()
        ]
        return sorted(versions, key=int)

    def get(self, model: str, version: str) -> ServedVersion:
        """The version, loading its session the first time. Raises VersionNotPublished."""
        key = (model, version)
        found = self._loaded.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self._loaded.get(key)
            if found is None:
                found = self._loaded[key] = self._load(model, version)
        return found

    def _load(self, model: str, version: str) -> ServedVersion:
        import onnxruntime as ort

        folder = self.repository / model / version
        metadata = read_metadata(folder)
        options = ort.SessionOptions()
        # One thread per call: the gateway's parallelism is its workers, not ORT's pool, and a
        # spinning pool would steal the cores the event loop needs.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(
                str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise VersionNotPublished(f"{folder / 'model.onnx'} does not load: {exc}") from None
        return ServedVersion(
            model=model,
            version=version,
            feature_service=metadata["feature_service"],
            input_names=tuple(metadata["inputs"]),
            lineage=metadata.get("lineage", {}),
            session=session,
            reference=Reference.read(folder),
            explainer_file=explainer if (explainer := folder / EXPLAINER_FILE).is_file() else None,
        )

    def forget(self, model: str, version: str) -> None:
        self._loaded.pop((model, version), None)
