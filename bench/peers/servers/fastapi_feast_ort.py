"""B3's one-process peer: FastAPI + the Feast SDK (``get_online_features`` on the stack's own
feature store) + in-process ONNX Runtime, the way a team would glue them by hand. Runs in the
main environment: the store's configuration names Shipyard's SQLite online-store class.

POST /predict {"instances": [{customer_id, merchant_id, amount, ...}]} -> {"predictions": [p]}

    python fastapi_feast_ort.py --port P --model-dir <repository>/<model>/<version>
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel


class Transaction(BaseModel):
    customer_id: int
    merchant_id: int
    amount: float
    merchant_category: str
    channel: str
    device_type: str


class PredictRequest(BaseModel):
    instances: list[Transaction]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    args = parser.parse_args()

    from shipyard.features.encoding import encode_rows
    from shipyard.features.store import open_store
    from shipyard.settings import load_settings

    metadata = json.loads((args.model_dir / "serving.json").read_text())
    service_name = metadata["feature_service"]
    store = open_store(load_settings())  # a plain feast.FeatureStore
    service = store.get_feature_service(service_name)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(args.model_dir / "model.onnx"), options, providers=["CPUExecutionProvider"]
    )
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: PredictRequest) -> dict:
        rows = [i.model_dump() for i in request.instances]
        online = store.get_online_features(
            features=service,
            # entity keys + the request data the on-demand views need
            entity_rows=[
                {
                    "customer_id": r["customer_id"],
                    "merchant_id": r["merchant_id"],
                    "amount": r["amount"],
                }
                for r in rows
            ],
        ).to_dict()
        features = [{k: v[i] for k, v in online.items()} for i in range(len(rows))]
        x = encode_rows(features, rows, datetime.now(UTC), service_name)
        scores = session.run(["probability"], {"input": x})[0][:, 0]
        return {"predictions": np.asarray(scores).tolist()}

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
