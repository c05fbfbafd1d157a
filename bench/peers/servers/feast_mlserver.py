"""B3's two-hop peer: Feast's feature server (``feast serve``) and MLServer, glued by a small
FastAPI front the way an application team would call them: features over HTTP from the feature
server, then the model over HTTP from MLServer (Open Inference Protocol).

Runs in the main environment (Feast and the store's SQLite online-store class live there) and
starts its two servers as children, so the harness counts their CPU as this contender's:

* ``feast serve`` on a copy of the feature repository whose configuration points at the stack's
  registry and online store (the placeholders filled from the settings); one worker and
  Feast's defaults, except that a worker is not recycled after ``--max-requests`` requests
  (a restart in the middle of a measurement would be measured as an outage);
* MLServer from its own environment (``--mlserver-python``), with ``mlserver_ort.py``'s
  runtime and defaults.

POST /predict {"instances": [{customer_id, merchant_id, amount, ...}]} -> {"predictions": [p]}

    python feast_mlserver.py --port P --model-dir <repository>/<model>/<version> \\
        --mlserver-python <bench-envs>/mlserver/bin/python --work-dir DIR
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import uvicorn
from fastapi import FastAPI

# The one-process peer's request model: both B3 peers accept exactly the same body. (This
# folder is on sys.path: the script runs from it.)
from fastapi_feast_ort import PredictRequest

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def feature_repo_copy(work: Path) -> Path:
    """The feature repository with its ``${…}`` placeholders filled, for Feast's own CLI."""
    from shipyard.features.store import config_file, feature_repo_path, placeholders
    from shipyard.settings import load_settings

    settings = load_settings()
    source = feature_repo_path()
    repo = work / "feature_repo"
    shutil.copytree(source, repo, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.yaml"))
    values = placeholders(settings)
    text = config_file(settings, source).read_text()
    filled = re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: values[m.group(1)], text)
    (repo / "feature_store.yaml").write_text(filled)
    return repo


def wait_ready(url: str, process: subprocess.Popen, what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} not ready within {timeout_s:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--mlserver-python", type=Path, required=True)
    parser.add_argument("--work-dir", type=Path, required=True)
    args = parser.parse_args()

    from shipyard.features.encoding import encode_rows

    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    service = json.loads((args.model_dir / "serving.json").read_text())["feature_service"]
    feast_port, mlserver_port = free_port(), free_port()
    feast = subprocess.Popen(
        [str(Path(sys.executable).with_name("feast")), "-c", str(feature_repo_copy(work)),
         "serve", "-h", "127.0.0.1", "-p", str(feast_port), "--no-access-log",
         "--max-requests", "0"],
    )  # fmt: skip
    mlserver = subprocess.Popen(
        [str(args.mlserver_python), str(HERE / "mlserver_ort.py"), "--port", str(mlserver_port),
         "--model", str(args.model_dir / "model.onnx"), "--work-dir", str(work / "mlserver")],
    )  # fmt: skip
    try:
        wait_ready(f"http://127.0.0.1:{feast_port}/health", feast, "feast serve")
        wait_ready(f"http://127.0.0.1:{mlserver_port}/v2/health/ready", mlserver, "MLServer")
        app = FastAPI()
        client = httpx.AsyncClient(timeout=10)
        features_url = f"http://127.0.0.1:{feast_port}/get-online-features"
        infer_url = f"http://127.0.0.1:{mlserver_port}/v2/models/model/infer"

        @app.post("/predict")
        async def predict(request: PredictRequest) -> dict:
            rows = [i.model_dump() for i in request.instances]
            # Hop 1: the feature server (entity keys + the request data on-demand views need).
            entities = {k: [r[k] for r in rows] for k in ("customer_id", "merchant_id", "amount")}
            answer = await client.post(
                features_url, json={"feature_service": service, "entities": entities}
            )
            answer.raise_for_status()
            online = answer.json()
            names = online["metadata"]["feature_names"]
            columns = [result["values"] for result in online["results"]]
            features = [
                {name: column[i] for name, column in zip(names, columns, strict=True)}
                for i in range(len(rows))
            ]
            x = encode_rows(features, rows, datetime.now(UTC), service)
            # Hop 2: the model server.
            inference = await client.post(
                infer_url,
                json={
                    "inputs": [
                        {
                            "name": "input",
                            "shape": list(x.shape),
                            "datatype": "FP32",
                            "data": x.astype(np.float32).ravel().tolist(),
                        }
                    ]
                },
            )
            inference.raise_for_status()
            output = inference.json()["outputs"][0]
            scores = np.asarray(output["data"]).reshape(output["shape"])[:, 0]
            return {"predictions": scores.tolist()}

        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    finally:
        for process in (feast, mlserver):
            process.terminate()
        for process in (feast, mlserver):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
