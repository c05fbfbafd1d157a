"""A few MLflow REST calls without importing MLflow.

Importing ``mlflow`` costs seconds; pipeline steps that only set a tag or an alias (gate, mark
challenger) run in fresh processes, so they talk to the tracking server's REST API directly.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from shipyard.errors import ShipyardError


class MlflowRest:
    """Minimal client of the MLflow tracking server's REST API (``/api/2.0/mlflow``)."""

    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        self.base = base_url.rstrip("/") + "/api/2.0/mlflow"
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            # A missing alias is a 400 INVALID_PARAMETER_VALUE "… not found", not a 404.
            if exc.code == 404 or "RESOURCE_DOES_NOT_EXIST" in detail or "not found" in detail:
                raise KeyError(detail) from None
            raise ShipyardError(f"MLflow {method} {path} failed ({exc.code}): {detail}") from None
        except OSError as exc:
            raise ShipyardError(f"MLflow at {self.base} is not reachable: {exc}") from None

    def set_run_tags(self, run_id: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self._call("POST", "/runs/set-tag", {"run_id": run_id, "key": key, "value": value})

    def set_alias(self, name: str, alias: str, version: str) -> None:
        body = {"name": name, "alias": alias, "version": str(version)}
        self._call("POST", "/registered-models/alias", body)

    def alias_version(self, name: str, alias: str) -> str | None:
        query = urllib.parse.urlencode({"name": name, "alias": alias})
        try:
            found = self._call("GET", f"/registered-models/alias?{query}")
        except KeyError:
            return None
        return found["model_version"]["version"]
