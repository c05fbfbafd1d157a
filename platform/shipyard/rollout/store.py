"""Where the rollout loop reads and writes desired state: one thin adapter per target.

* ``FileStore`` (embedded): the routing file the gateway hot-reloads, ``rollouts.json`` and the
  history file, changed under one lock in the state directory.
* ``ConfigMapStore`` (cluster): the routing ConfigMap the gateway pods mount, holding the
  routing table, the rollouts and the history as three keys, changed by one patch guarded by
  the ConfigMap's ``resourceVersion`` (a concurrent writer makes the patch fail and the change
  is re-applied to what that writer left).

All decisions live in ``shipyard.rollout.controller``; a store only applies a change function
``(routing table, rollouts) -> (routing table, rollouts, history records)`` atomically.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from shipyard import routing
from shipyard.errors import ConfigError, ShipyardError
from shipyard.rollout.history import HistoryFile, HistoryRecord, parse_lines
from shipyard.rollout.state import Rollouts
from shipyard.routing import RoutingTable
from shipyard.settings import Settings
from shipyard.stack.layout import StateLayout

log = logging.getLogger(__name__)

Change = Callable[[RoutingTable, Rollouts], tuple[RoutingTable, Rollouts, list[HistoryRecord]]]

ROUTING_KEY = "routing.yaml"  # the key the chart renders and the gateway reads
ROLLOUTS_KEY = "rollouts.json"
HISTORY_KEY = "history.jsonl"
# A ConfigMap holds at most 1 MiB; say so well before the API server refuses a patch.
CONFIGMAP_HISTORY_WARN_BYTES = 768 * 1024


class Store(Protocol):
    description: str

    def read(self) -> tuple[RoutingTable, Rollouts]: ...

    def update(self, change: Change) -> tuple[RoutingTable, Rollouts]: ...

    def history(self) -> list[HistoryRecord]: ...


def open_store(settings: Settings) -> Store:
    """The routing ConfigMap when one is configured (a cluster), else the routing file."""
    if settings.rollout.routing_configmap:
        return ConfigMapStore(settings.rollout.namespace, settings.rollout.routing_configmap)
    layout = StateLayout(settings.state_dir)
    return FileStore(
        settings.serving.routing_file or layout.routing_file,
        layout.rollouts,
        layout.deployment_history,
    )


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _parse_rollouts(text: str | None, source: str) -> Rollouts:
    if not text:
        return Rollouts()
    try:
        return Rollouts.model_validate_json(text)
    except ValueError as exc:
        raise ConfigError(f"{source} is damaged ({exc.errors()[0]['msg']})") from None  # type: ignore[attr-defined]


class FileStore:
    """Routing file + rollouts file + history file in the embedded stack's state directory."""

    def __init__(self, routing_file: Path, rollouts_file: Path, history_file: Path) -> None:
        self.routing_file = routing_file
        self.rollouts_file = rollouts_file
        self.history_file = HistoryFile(history_file)
        self.description = f"routing file {routing_file}"

    @contextmanager
    def _locked(self):
        lock = self.rollouts_file.with_name(".lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        with open(lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def read(self) -> tuple[RoutingTable, Rollouts]:
        table = routing.load(self.routing_file)
        try:
            text = self.rollouts_file.read_text()
        except FileNotFoundError:
            text = None
        return table, _parse_rollouts(text, str(self.rollouts_file))

    def update(self, change: Change) -> tuple[RoutingTable, Rollouts]:
        with self._locked():
            table, rollouts = self.read()
            new_table, new_rollouts, records = change(table, rollouts)
            # History first: a crash after it leaves a record of an intended change, which the
            # loop's next pass completes (it re-applies the rollout's weight); never the reverse,
            # a routing change nobody can account for.
            self.history_file.append(records)
            if new_rollouts != rollouts:
                _write_atomically(self.rollouts_file, new_rollouts.model_dump_json(indent=2))
            if new_table != table:
                routing.save(self.routing_file, new_table)
            return new_table, new_rollouts

    def history(self) -> list[HistoryRecord]:
        return self.history_file.records()


class ConfigMapStore:
    """The routing ConfigMap on a cluster, through the Kubernetes API (get and patch only)."""

    def __init__(self, namespace: str, name: str, api: Any = None, attempts: int = 5) -> None:
        self.namespace = namespace
        self.name = name
        self.description = f"ConfigMap {namespace}/{name}"
        self._api = api
        self.attempts = attempts

    @property
    def api(self) -> Any:
        if self._api is None:
            from kubernetes import client, config

            try:
                config.load_incluster_config()  # the analysis pod's ServiceAccount
            except config.ConfigException:
                config.load_kube_config()  # a workstation's kubeconfig
            self._api = client.CoreV1Api()
        return self._api

    def _get(self) -> tuple[dict[str, str], str]:
        try:
            found = self.api.read_namespaced_config_map(self.name, self.namespace)
        except Exception as exc:  # kubernetes.client.ApiException and connection errors
            raise ShipyardError(f"cannot read {self.description}: {_reason(exc)}") from None
        return dict(found.data or {}), found.metadata.resource_version

    def _decode(self, data: dict[str, str]) -> tuple[RoutingTable, Rollouts]:
        table = routing.parse(data.get(ROUTING_KEY, ""), f"{self.description} {ROUTING_KEY}")
        rollouts = _parse_rollouts(data.get(ROLLOUTS_KEY), f"{self.description} {ROLLOUTS_KEY}")
        return table, rollouts

    def read(self) -> tuple[RoutingTable, Rollouts]:
        return self._decode(self._get()[0])

    def update(self, change: Change) -> tuple[RoutingTable, Rollouts]:
        for _ in range(self.attempts):
            data, version = self._get()
            table, rollouts = self._decode(data)
            new_table, new_rollouts, records = change(table, rollouts)
            history = data.get(HISTORY_KEY, "") + "".join(r.line() for r in records)
            if len(history) > CONFIGMAP_HISTORY_WARN_BYTES:
                log.warning(
                    "%s: the deployment history is %d KiB of the 1 MiB a ConfigMap holds; "
                    "archive %s and truncate it",
                    self.description,
                    len(history) // 1024,
                    HISTORY_KEY,
                )
            patch = {
                "metadata": {"resourceVersion": version},
                "data": {
                    ROUTING_KEY: routing.render(new_table),
                    ROLLOUTS_KEY: new_rollouts.model_dump_json(indent=2),
                    HISTORY_KEY: history,
                },
            }
            try:
                self.api.patch_namespaced_config_map(self.name, self.namespace, patch)
            except Exception as exc:
                if getattr(exc, "status", None) == 409:  # someone wrote in between: redo
                    continue
                raise ShipyardError(f"cannot patch {self.description}: {_reason(exc)}") from None
            return new_table, new_rollouts
        raise ShipyardError(f"{self.description} kept changing under the rollout loop; retry")

    def history(self) -> list[HistoryRecord]:
        data, _ = self._get()
        return parse_lines(data.get(HISTORY_KEY, ""), f"{self.description} {HISTORY_KEY}")


def _reason(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    body = getattr(exc, "body", None)
    if status is not None:
        try:
            message = json.loads(body or "{}").get("message", "")
        except (TypeError, ValueError):
            message = ""
        return f"HTTP {status} {message}".strip()
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
