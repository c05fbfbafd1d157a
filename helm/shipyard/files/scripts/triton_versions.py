"""Keep the Triton server in this pod serving exactly the versions the chart asks for.

The chart renders ``{model: [stable, canary]}`` into a ConfigMap mounted here. Triton starts with
``--load-model=*`` and the repository's own version policy; this sidecar then reloads each
model with the same configuration Triton loaded (``configs/<pool>.pbtxt``) but a ``specific``
version policy listing those versions. A changed ConfigMap (a new stable or canary version)
reaches the file within the kubelet's sync period and is applied on the next pass, without a
pod restart. Triton keeps serving the previous versions if a reload fails.

Model control is restricted to requests carrying a key that only this pod knows (the Triton
container writes it to a shared in-memory volume), so nothing outside the pod can load models.

Readiness: the ready file appears after the first pass in which every model serves every wanted
version; later failures are logged and retried but keep the pod ready, because the versions it
serves are still the previous, working ones.

Standard library only: it runs on the Shipyard image next to any Triton release.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

log = logging.getLogger("triton-versions")


class Triton:
    """The few HTTP calls this needs, against Triton's KServe v2 API."""

    def __init__(self, url: str, key_file: Path, header: str, timeout_s: float) -> None:
        self.url = url.rstrip("/")
        self.key_file = key_file
        self.header = header
        self.timeout_s = timeout_s

    def call(self, method: str, path: str, body: object = None, control: bool = False):
        """(status, parsed JSON body or None)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if control:  # read each time: a restarted Triton container writes a new key
            headers[self.header] = self.key_file.read_text().strip()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            raw, status = error.read(), error.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, {"error": raw.decode(errors="replace")}

    def live(self) -> bool:
        try:
            return self.call("GET", "/v2/health/live")[0] == 200
        except OSError:
            return False

    def config(self, model: str) -> dict | None:
        status, body = self.call("GET", f"/v2/models/{quote(model)}/config")
        return body if status == 200 else None

    def ready(self, model: str, version: int) -> bool:
        status, _ = self.call("GET", f"/v2/models/{quote(model)}/versions/{version}/ready")
        return status == 200

    def load(self, model: str, config: dict | None) -> str | None:
        """Load (or reload) ``model``; an error message, or None."""
        body = {"parameters": {"config": json.dumps(config)}} if config is not None else {}
        status, answer = self.call(
            "POST", f"/v2/repository/models/{quote(model)}/load", body, control=True
        )
        if status == 200:
            return None
        return (answer or {}).get("error") or f"HTTP {status}"


def quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def policy_versions(config: dict) -> list[int] | None:
    """The versions of a ``specific`` policy (Triton may print int64 values as strings)."""
    specific = (config.get("version_policy") or {}).get("specific")
    if specific is None:
        return None
    return sorted(int(v) for v in specific.get("versions", []))


def sync_model(triton: Triton, model: str, versions: list[int]) -> str | None:
    """Make ``model`` serve exactly ``versions``; an error message, or None when it does."""
    wanted = sorted(set(versions))
    config = triton.config(model)
    if config is None:  # not loaded yet (a new model, or the start-up load failed): try once
        error = triton.load(model, None)
        config = triton.config(model)
        if config is None:
            return f"{model} is not loaded: {error or 'no configuration'}"
    if policy_versions(config) == wanted and all(triton.ready(model, v) for v in wanted):
        return None
    # The loaded configuration already is configs/<pool>.pbtxt, completed by Triton: only the
    # policy changes, so the pool keeps its backend, instance groups and batching.
    config["version_policy"] = {"specific": {"versions": wanted}}
    error = triton.load(model, config)
    if error is not None:
        return f"{model} versions {wanted}: {error}"
    missing = [v for v in wanted if not triton.ready(model, v)]
    if missing:
        return f"{model}: versions {missing} are not ready after the reload"
    log.info("%s serves versions %s", model, wanted)
    return None


def sync(triton: Triton, versions_file: Path) -> list[str]:
    """One pass over every model; the errors (empty when everything serves as wanted)."""
    try:
        wanted = json.loads(versions_file.read_text())
    except (OSError, ValueError) as exc:
        return [f"cannot read {versions_file}: {exc}"]
    errors = (sync_model(triton, model, versions) for model, versions in sorted(wanted.items()))
    return [error for error in errors if error is not None]


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    env = os.environ
    triton = Triton(
        env.get("TRITON_URL", "http://127.0.0.1:8000"),
        Path(env["CONTROL_KEY_FILE"]),
        env.get("CONTROL_HEADER", "shipyard-control"),
        float(env.get("TIMEOUT_SECONDS", "120")),  # a reload waits for the versions to load
    )
    versions_file = Path(env["VERSIONS_FILE"])
    ready_file = Path(env["READY_FILE"])
    interval_s = float(env.get("INTERVAL_SECONDS", "10"))
    once = "--once" in sys.argv[1:]
    while True:
        if triton.live() and triton.key_file.is_file():
            try:
                errors = sync(triton, versions_file)
            except OSError as exc:  # Triton restarted mid-pass: the next pass starts over
                errors = [f"Triton at {triton.url}: {exc}"]
            for error in errors:
                log.error("%s", error)
            if not errors and not ready_file.exists():
                ready_file.write_text("synced\n")
            if once:
                return 1 if errors else 0
        elif once:
            log.error("Triton at %s is not live", triton.url)
            return 1
        time.sleep(interval_s)


if __name__ == "__main__":
    sys.exit(main())
