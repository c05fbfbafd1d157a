"""MLflow from pipeline steps at the cost of what they use.

Every pipeline step runs in a fresh process, where ``import mlflow`` costs seconds, and MLflow's
first REST call costs seconds more (it loads every installed request-header plugin, Feast's among
them, which imports all of Feast). So:

* ``MlflowRest`` speaks the tracking server's REST API (``/api/2.0/mlflow``) and its artifact
  proxy (``mlflow-artifacts``) directly, for the steps that only set tags and aliases, log metrics
  and upload files, and for registration (evaluate, gate, register, export, mark challenger).
  It sends what ``MlflowClient`` sends for the same calls, so the run, the logged model and the
  registry end up the same.
* ``import_mlflow()`` is ``import mlflow`` for the step that needs MLflow itself (train logs the
  model with its flavour), without Feast's inert plugin.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from shipyard.errors import ShipyardError

# The registry's aliases.
CHAMPION = "champion"
CHALLENGER = "challenger"
# Set on versions trained on data an erasure removed since (its value: the erasure ids).
RETRAIN_REQUIRED = "retrain_required"

ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"


class MlflowRest:
    """Minimal client of the MLflow tracking server's REST API (``/api/2.0/mlflow``)."""

    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        self.root = base_url.rstrip("/")
        self.base = self.root + "/api/2.0/mlflow"
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        return self._send(method, self.base + path, data, "application/json", self.timeout_s)

    def _send(
        self, method: str, url: str, data: bytes | None, content_type: str, timeout_s: float
    ) -> dict:
        request = urllib.request.Request(
            url, data=data, method=method, headers={"Content-Type": content_type}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            # A missing alias is a 400 INVALID_PARAMETER_VALUE "… not found", not a 404.
            if exc.code == 404 or "RESOURCE_DOES_NOT_EXIST" in detail or "not found" in detail:
                raise KeyError(detail) from None
            path = url.removeprefix(self.root)
            raise ShipyardError(f"MLflow {method} {path} failed ({exc.code}): {detail}") from None
        except OSError as exc:
            raise ShipyardError(f"MLflow at {self.base} is not reachable: {exc}") from None

    # --- runs ------------------------------------------------------------------------------

    def get_run(self, run_id: str) -> dict:
        """The run as the REST API returns it: ``info``, ``data``, ``inputs``, ``outputs``."""
        return self._call("GET", "/runs/get?" + urllib.parse.urlencode({"run_id": run_id}))["run"]

    def set_run_tags(self, run_id: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self._call("POST", "/runs/set-tag", {"run_id": run_id, "key": key, "value": value})

    def update_run(self, run_id: str, status: str, end_time: int | None) -> None:
        body = {"run_id": run_id, "run_uuid": run_id, "status": status}
        if end_time is not None:
            body["end_time"] = end_time
        self._call("POST", "/runs/update", body)

    def log_metrics(self, run: dict, metrics: dict[str, float]) -> None:
        """``mlflow.log_metrics`` at step 0 into ``run`` (from :meth:`get_run`): like MLflow, each
        metric is also attributed to the models the run logged at step 0."""
        outputs = (run.get("outputs") or {}).get("model_outputs", [])
        model_ids = [o["model_id"] for o in outputs if int(o.get("step", 0)) == 0] or [None]
        run_id = run["info"]["run_id"]
        now = int(time.time() * 1000)
        batch = []
        for key, value in metrics.items():
            for model_id in model_ids:
                metric = {"key": key, "value": value, "timestamp": now, "step": 0, "run_id": run_id}
                if model_id is not None:
                    metric["model_id"] = model_id
                batch.append(metric)
        self._call("POST", "/runs/log-batch", {"run_id": run_id, "metrics": batch})

    def resumed(self, run_id: str) -> _ResumedRun:
        """``with mlflow.start_run(run_id=…)``: RUNNING inside, FINISHED (FAILED) after."""
        return _ResumedRun(self, run_id)

    # --- artifacts -------------------------------------------------------------------------

    def log_artifact(self, run: dict | str, local: Path, artifact_path: str | None = None) -> None:
        """``MlflowClient.log_artifact`` for a run whose artifacts go through the server."""
        run = self.get_run(run) if isinstance(run, str) else run
        base = self._artifact_url(run["info"]["artifact_uri"])
        if base is None:  # not proxied by the server (a bucket, a path): MLflow's own client
            client = import_mlflow().MlflowClient(self.root)
            client.log_artifact(run["info"]["run_id"], str(local), artifact_path)
            return
        parts = [*(artifact_path.strip("/").split("/") if artifact_path else []), local.name]
        url = base + "/" + "/".join(urllib.parse.quote(part) for part in parts)
        # Uploads get MLflow's own default HTTP timeout (MLFLOW_HTTP_REQUEST_TIMEOUT, 120 s).
        self._send("PUT", url, local.read_bytes(), _mime_type(local.name), 120.0)

    def log_text(self, run: dict | str, text: str, artifact_file: str) -> None:
        """``MlflowClient.log_text``: ``text`` as the run artifact ``artifact_file``."""
        import tempfile

        folder, _, name = artifact_file.rpartition("/")
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / name
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
            self.log_artifact(run, path, folder or None)

    def log_dict(self, run: dict | str, dictionary: dict, artifact_file: str) -> None:
        """``MlflowClient.log_dict`` for a ``.json`` file (same serialization)."""
        self.log_text(run, json.dumps(dictionary, indent=2, default=str), artifact_file)

    def _artifact_url(self, artifact_uri: str) -> str | None:
        """The HTTP URL of ``mlflow-artifacts:`` URIs, resolved as MLflow does; else None."""
        parsed = urllib.parse.urlparse(artifact_uri)
        if parsed.scheme != "mlflow-artifacts":
            return None
        tracking = urllib.parse.urlparse(self.root)
        path = f"{tracking.path}/{ARTIFACTS_API}/{parsed.path}"
        while "//" in path:
            path = path.replace("//", "/")
        netloc = parsed.netloc or tracking.netloc
        return urllib.parse.urlunparse((tracking.scheme, netloc, path, "", "", "")).rstrip("/")

    # --- registry --------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: str) -> None:
        body = {"name": name, "alias": alias, "version": str(version)}
        self._call("POST", "/registered-models/alias", body)

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias``; removing an alias that is not set is not an error."""
        with contextlib.suppress(KeyError):
            self._call("DELETE", "/registered-models/alias", {"name": name, "alias": alias})

    def model_version_by_alias(self, name: str, alias: str) -> dict | None:
        """The version behind ``alias`` (``version``, ``run_id``, ``tags`` …), None if unset."""
        query = urllib.parse.urlencode({"name": name, "alias": alias})
        try:
            return self._call("GET", f"/registered-models/alias?{query}")["model_version"]
        except KeyError:
            return None

    def alias_version(self, name: str, alias: str) -> str | None:
        found = self.model_version_by_alias(name, alias)
        return None if found is None else found["version"]

    def get_model_version(self, name: str, version: str) -> dict:
        query = urllib.parse.urlencode({"name": name, "version": str(version)})
        return self._call("GET", f"/model-versions/get?{query}")["model_version"]

    def registered_models(self) -> list[dict]:
        """Every registered model (``name``, ``aliases`` …); the first thousand."""
        found = self._call("GET", "/registered-models/search?max_results=1000")
        return found.get("registered_models", [])

    def experiments(self) -> dict[str, str]:
        """Experiment id -> name, for the first thousand experiments."""
        found = self._call("POST", "/experiments/search", {"max_results": 1000})
        return {e["experiment_id"]: e["name"] for e in found.get("experiments", [])}

    def search_runs(self, experiment_ids: list[str], filter_: str) -> Iterator[dict]:
        """Runs matching ``filter_`` (MLflow search syntax), page by page."""
        token = None
        while experiment_ids:
            body = {"experiment_ids": experiment_ids, "filter": filter_, "max_results": 1000}
            page = self._call(
                "POST", "/runs/search", body | ({"page_token": token} if token else {})
            )
            yield from page.get("runs", [])
            token = page.get("next_page_token")
            if not token:
                return

    def model_versions(self, filter_: str = "") -> Iterator[dict]:
        """Versions matching ``filter_`` (MLflow search syntax; empty: every version of every
        registered model), page by page: ``name``, ``version``, ``tags`` …"""
        token = None
        while True:
            query = {"max_results": 1000}
            if filter_:
                query["filter"] = filter_
            if token:
                query["page_token"] = token
            page = self._call("GET", "/model-versions/search?" + urllib.parse.urlencode(query))
            yield from page.get("model_versions", [])
            token = page.get("next_page_token")
            if not token:
                return

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        body = {"name": name, "version": str(version), "key": key, "value": value}
        self._call("POST", "/model-versions/set-tag", body)

    def registered_model(self, name: str) -> dict | None:
        """The registered model ``name``, None when there is none."""
        query = urllib.parse.urlencode({"name": name})
        try:
            return self._call("GET", f"/registered-models/get?{query}")["registered_model"]
        except KeyError:
            return None

    def create_registered_model(self, name: str, tags: dict[str, str], description: str) -> None:
        body = {"name": name, "tags": _tag_list(tags), "description": description}
        self._call("POST", "/registered-models/create", body)

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str,
        tags: dict[str, str],
        description: str,
        model_id: str | None,
    ) -> dict:
        """A new version of ``name`` (``MlflowClient.create_model_version`` against a tracking
        server that is its own registry); returns it as the server does."""
        body = {"name": name, "source": source, "run_id": run_id, "tags": _tag_list(tags),
                "description": description}  # fmt: skip
        if model_id:
            body["model_id"] = model_id
        return self._call("POST", "/model-versions/create", body)["model_version"]

    def delete_model_version(self, name: str, version: str) -> None:
        self._call("DELETE", "/model-versions/delete", {"name": name, "version": str(version)})


def tags_of(entity: dict) -> dict[str, str]:
    """The tags of a run's ``data``, a model or a version as the REST API returns them (a list
    of key/value pairs), as a dict."""
    return {tag["key"]: tag.get("value", "") for tag in entity.get("tags", [])}


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": str(value)} for key, value in tags.items()]


class _ResumedRun:
    def __init__(self, rest: MlflowRest, run_id: str) -> None:
        self.rest = rest
        self.run_id = run_id

    def __enter__(self) -> dict:
        try:
            run = self.rest.get_run(self.run_id)
        except KeyError:
            run = {"info": {"lifecycle_stage": "missing"}}
        if run["info"].get("lifecycle_stage", "active") != "active":
            raise ShipyardError(f"MLflow run {self.run_id} is gone: re-run the train step")
        # As MLflow does on resuming: RUNNING, keeping the previous end time.
        self.rest.update_run(self.run_id, "RUNNING", _int(run["info"].get("end_time")))
        return self.rest.get_run(self.run_id)

    def __exit__(self, kind, *_) -> None:
        status = "FINISHED" if kind is None else "FAILED"
        self.rest.update_run(self.run_id, status, int(time.time() * 1000))


def _int(value: object) -> int | None:
    return None if value is None else int(value)


def _mime_type(name: str) -> str:
    # Informative only: the server stores the bytes whatever the type says.
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


# --- MLflow itself -------------------------------------------------------------------------

HEADER_PLUGINS = "mlflow.tracking.request_header.registry"
HEADER_PLUGIN_GROUP = "mlflow.request_header_provider"


def import_mlflow() -> ModuleType:
    """``import mlflow``; in a process that has not imported Feast, without Feast's plugin.

    MLflow loads every ``mlflow.request_header_provider`` entry point on its first REST call.
    Feast registers ``FeastMLflowHeaderProvider`` there, and loading it imports all of Feast
    (seconds). That provider adds a header only inside Feast's own ``mlflow_token_scope`` (a
    context variable Feast's MLflow data source sets), so in a process where Feast was never
    imported it can never add one: leave it out there. Where Feast is already imported (the
    plugin costs nothing), or MLflow has loaded its plugins, nothing changes.
    """
    import mlflow

    if "feast" in sys.modules or HEADER_PLUGINS in sys.modules:
        return mlflow
    from mlflow.utils import plugins

    entry_points = getattr(plugins, "_get_entry_points", None)
    if entry_points is None:  # MLflow changed its plugin loading: load them all, as it does
        return mlflow

    def without_feast(group: str) -> list:
        found = entry_points(group)
        if group != HEADER_PLUGIN_GROUP:
            return found
        return [point for point in found if not point.value.startswith("feast.")]

    plugins._get_entry_points = without_feast
    try:
        __import__(HEADER_PLUGINS)
    finally:
        plugins._get_entry_points = entry_points
    return mlflow
