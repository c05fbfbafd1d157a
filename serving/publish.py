"""Publishing a registered model version for serving (``shipyard serve publish``).

1. Read the version from the MLflow registry (it must be complete: owner, lineage).
2. Make sure its Triton entry is in the model repository (the pipeline's export step writes it;
   otherwise the ONNX file is fetched from the version's run).
3. Check the ONNX file loads here, with the width its feature service encodes.
4. Ask every Triton pool to serve the published versions plus this one (explicit model
   control; the version policy lives in the entry's configurations) and wait until the new
   version is ready on each reachable pool.
5. Only then write ``serving.json``: from that moment the gateway may route to the version.

If any pool fails to load it, the version policy is put back and the pools reloaded with the
versions they served before: a version that does not load leaves serving untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving.backends import TritonPool
from serving.gateway import Paths, triton_pools
from serving.models import METADATA_FILE, ModelCatalog, write_metadata
from shipyard.errors import ShipyardError
from shipyard.features.encoding import input_names
from shipyard.settings import Settings
from shipyard.training.export import INPUT, write_configs, write_triton_entry
from shipyard.training.tracking import MlflowRest

LINEAGE_TAGS = (
    "owner",
    "team",
    "on_call",
    "dataset_digest",
    "feature_service",
    "pipeline_run_id",
    "code_version",
)
READY_TIMEOUT_S = 60.0
PROBE_TIMEOUT_S = 2.0  # is a pool up, is a version ready


class PublishError(ShipyardError):
    """The version could not be published; whatever served before still does."""


@dataclass
class PublishResult:
    model: str
    version: str
    pools: dict[str, str] = field(default_factory=dict)  # pool -> loaded | unreachable
    already: bool = False


def registry_record(settings: Settings, model: str, version: str) -> dict[str, Any]:
    """The registry's record of ``model`` v``version``; refuses incomplete versions."""
    try:
        record = MlflowRest(settings.url("mlflow")).get_model_version(model, version)
    except KeyError:
        raise PublishError(
            f"{model} v{version} is not in the MLflow registry: `shipyard models` lists versions"
        ) from None
    record["tags"] = {t["key"]: t.get("value", "") for t in record.get("tags", [])}
    if record["tags"].get("shipyard.complete") != "true":
        raise PublishError(f"{model} v{version} is not completely registered; re-run the pipeline")
    if "feature_service" not in record["tags"]:
        raise PublishError(f"{model} v{version} has no feature_service tag; it cannot be served")
    return record


def resolve_alias(settings: Settings, model: str, alias: str) -> str:
    version = MlflowRest(settings.url("mlflow")).alias_version(model, alias)
    if version is None:
        raise PublishError(f"{model} has no {alias!r} alias: give --version")
    return version


def publish(
    settings: Settings,
    model: str,
    version: str,
    progress: Callable[[str], None] = lambda line: None,
) -> PublishResult:
    paths = Paths.of(settings)
    entry = paths.model_repository / model
    folder = entry / version
    record = registry_record(settings, model, version)
    tags = record["tags"]
    service = tags["feature_service"]
    width = len(input_names(service))
    result = PublishResult(model, version)
    if not (folder / "model.onnx").is_file():
        progress(f"fetching the ONNX file of {model} v{version} from its MLflow run")
        write_triton_entry(
            paths.model_repository, model, int(version), _fetch_onnx(settings, record), width
        )
    _check_loads(folder, width)
    catalog = ModelCatalog(paths.model_repository)
    before = [int(v) for v in catalog.published(model) if v != version]
    if (folder / METADATA_FILE).is_file():
        states = {pool.name: _ready(pool, model, version) for pool in triton_pools(settings)}
        if "not loaded" not in states.values():
            result.pools, result.already = states, True
            return result  # published and served everywhere reachable: nothing to do
    wanted = sorted({*before, int(version)})
    write_configs(entry, model, wanted)
    try:
        for pool in triton_pools(settings):
            progress(f"loading {model} versions {wanted} on {pool.name} ({pool.url})")
            result.pools[pool.name] = _load(pool, model, version, warm_width=width)
    except PublishError:
        progress("load failed: restoring the versions served before")
        write_configs(entry, model, before or None)
        for pool in triton_pools(settings):
            if before and result.pools.get(pool.name) == "loaded":
                _load(pool, model, str(before[-1]), quiet=True)
        raise
    lineage = {k: tags[k] for k in LINEAGE_TAGS if k in tags}
    lineage["run_id"] = record.get("run_id")
    write_metadata(
        folder,
        {
            "model": model,
            "version": version,
            "feature_service": service,
            "inputs": input_names(service),
            "lineage": lineage,
            "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
    return result


def _check_loads(folder: Path, width: int) -> None:
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(
            str(folder / "model.onnx"), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime's errors are untyped
        raise PublishError(
            f"{folder / 'model.onnx'} does not load in ONNX Runtime: {exc}"
        ) from None
    shape = session.get_inputs()[0].shape
    if len(shape) != 2 or shape[1] != width:
        raise PublishError(
            f"{folder / 'model.onnx'} takes input {shape}, but its feature service has {width}"
        )


class _Control:
    """Model control on one Triton pool, in the pool's transport (tritonclient's sync clients)."""

    def __init__(self, pool: TritonPool) -> None:
        from tritonclient.utils import InferenceServerException

        # What "the pool did not answer" raises: gRPC wraps it, HTTP raises socket errors.
        self.failures: tuple[type[Exception], ...] = (InferenceServerException, OSError)
        if pool.transport == "http":
            import tritonclient.http as triton

            # Each HTTP call's deadline is the client's: a short connect, a long load.
            self._client: Any = triton.InferenceServerClient(
                pool.address, connection_timeout=PROBE_TIMEOUT_S, network_timeout=READY_TIMEOUT_S
            )
            self._deadline: Callable[[float], dict[str, float]] = lambda seconds: {}
        else:
            import tritonclient.grpc as triton  # type: ignore[no-redef]

            self._client = triton.InferenceServerClient(pool.address)
            self._deadline = lambda seconds: {"client_timeout": seconds}
        self._triton = triton

    def live(self) -> bool:
        return bool(self._client.is_server_live(**self._deadline(PROBE_TIMEOUT_S)))

    def ready(self, model: str, version: str) -> bool:
        return bool(self._client.is_model_ready(model, version, **self._deadline(PROBE_TIMEOUT_S)))

    def load(self, model: str) -> None:
        self._client.load_model(model, **self._deadline(READY_TIMEOUT_S))

    def score_zeros(self, model: str, version: str, width: int) -> None:
        import numpy as np

        request = self._triton.InferInput(INPUT, [1, width], "FP32")
        request.set_data_from_numpy(np.zeros((1, width), dtype=np.float32))
        self._client.infer(model, [request], model_version=version, **self._deadline(30.0))

    def close(self) -> None:
        self._client.close()


def _message(exc: Exception) -> str:
    message = getattr(exc, "message", None)
    return str(message() if callable(message) else exc)


def _ready(pool: TritonPool, model: str, version: str) -> str:
    """'loaded', 'not loaded' or 'unreachable' (a pool that is down loads it when it starts)."""
    control = _Control(pool)
    try:
        return "loaded" if control.ready(model, version) else "not loaded"
    except control.failures:
        return "unreachable"
    finally:
        control.close()


def _load(
    pool: TritonPool,
    model: str,
    version: str,
    quiet: bool = False,
    warm_width: int | None = None,
) -> str:
    """Load the entry on one pool; 'loaded' or 'unreachable'. Raises PublishError.

    With ``warm_width``, one inference on the new version follows: a version that loads but
    cannot score fails here, and its first real requests (a canary's) do not pay the backend's
    first-call start-up, which the rollout analysis would read as a slow canary.
    """
    control = _Control(pool)
    url = pool.url
    try:
        try:
            control.live()
        except control.failures:
            # A pool that is down loads the repository's policy when it starts.
            return "unreachable"
        try:
            control.load(model)
        except control.failures as exc:
            if quiet:
                return "failed"
            raise PublishError(
                f"Triton at {url} could not load {model} v{version}: {_message(exc)}"
            ) from None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not control.ready(model, version):
            if time.monotonic() > deadline:
                raise PublishError(f"{model} v{version} not ready on {url} in {READY_TIMEOUT_S}s")
            time.sleep(0.1)
        if warm_width is not None:
            try:
                control.score_zeros(model, version, warm_width)
            except control.failures as exc:
                raise PublishError(
                    f"{model} v{version} loaded on {url} but does not score: {_message(exc)}"
                ) from None
        return "loaded"
    finally:
        control.close()


def _fetch_onnx(settings: Settings, record: dict[str, Any]) -> bytes:
    import tempfile

    import mlflow

    mlflow.set_tracking_uri(settings.url("mlflow"))
    with tempfile.TemporaryDirectory() as scratch:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=record["run_id"], artifact_path="onnx/model.onnx", dst_path=scratch
            )
        except Exception as exc:  # MLflow raises several types for a missing artifact
            raise PublishError(
                f"run {record['run_id']} has no onnx/model.onnx ({exc}): re-run the export step"
            ) from None
        return Path(path).read_bytes()
