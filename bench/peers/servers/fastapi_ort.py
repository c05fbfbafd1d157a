"""FastAPI + in-process ONNX Runtime on uvicorn: what a team writes by hand.

POST /predict {"instances": [[...]]} -> {"predictions": [p, ...]}
"""

from __future__ import annotations

import numpy as np
import uvicorn
from _common import INPUT, OUTPUT, arguments, session
from fastapi import FastAPI
from pydantic import BaseModel


class PredictRequest(BaseModel):
    instances: list[list[float]]


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    model = session(args.model)
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: PredictRequest) -> dict:
        x = np.asarray(request.instances, dtype=np.float32)
        return {"predictions": model.run([OUTPUT], {INPUT: x})[0][:, 0].tolist()}

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
