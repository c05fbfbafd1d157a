"""The gateway's two Triton transports against a real Triton: HTTP with binary tensors (the
default) and gRPC answer the same rows with the same scores, and fail the same way.

A small Python-backend model with the exported models' tensor names scores a row as half its
sum; a row starting with a negative number makes it sleep, to hit the per-call deadline.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import urllib.request

import numpy as np
import pytest

from serving.backends import BackendError, TritonPool, triton_backend
from serving.models import ServedVersion
from shipyard.settings import Settings
from shipyard.stack.state import StackState
from shipyard.training.export import INPUT, OUTPUT
from tests.conftest import free_ports

NAME = "transport_check"
CONFIG = f"""
name: "{NAME}"
backend: "python"
max_batch_size: 8
input [ {{ name: "{INPUT}", data_type: TYPE_FP32, dims: [ 3 ] }} ]
output [ {{ name: "{OUTPUT}", data_type: TYPE_FP32, dims: [ 1 ] }} ]
instance_group [ {{ kind: KIND_CPU, count: 1 }} ]
"""
MODEL = textwrap.dedent(f"""
    import time

    import numpy as np
    import triton_python_backend_utils as pb_utils


    class TritonPythonModel:
        def execute(self, requests):
            responses = []
            for request in requests:
                x = pb_utils.get_input_tensor_by_name(request, "{INPUT}").as_numpy()
                if x[0, 0] < 0:
                    time.sleep(0.5)
                half = (x.sum(axis=1, keepdims=True) / 2).astype(np.float32)
                responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("{OUTPUT}", half)]))
            return responses
""")
TRANSPORTS = ("http", "grpc")


@pytest.fixture(scope="module")
def triton(stack: tuple[Settings, StackState]) -> dict[str, str]:
    """The stack's primary Triton serving the check model; its address per transport."""
    settings, _ = stack
    model_dir = settings.state_dir / "triton" / "models" / NAME
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    (model_dir / "config.pbtxt").write_text(CONFIG)
    (model_dir / "1" / "model.py").write_text(MODEL)
    load = urllib.request.Request(
        settings.url("triton_http", f"/v2/repository/models/{NAME}/load"),
        data=json.dumps({}).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(load, timeout=60).close()
    return {
        "http": f"127.0.0.1:{settings.ports.triton_http}",
        "grpc": f"127.0.0.1:{settings.ports.triton_grpc}",
    }


def served(version: str = "1") -> ServedVersion:
    return ServedVersion(NAME, version, "unused", ("a", "b", "c"))


def infer(pool: TritonPool, x: np.ndarray, version: str = "1", timeout_s: float = 5.0):
    async def run() -> list[np.ndarray | BackendError]:
        backend = triton_backend(pool, timeout_s)
        answers: list[np.ndarray | BackendError] = []
        try:
            for rows in (x, x):  # twice: the second call reuses the connection
                try:
                    answers.append(await backend.infer(served(version), rows))
                except BackendError as exc:
                    answers.append(exc)
        finally:
            await backend.close()
        return answers

    return asyncio.run(run())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_scores_come_back_in_row_order(triton: dict[str, str], transport: str) -> None:
    x = np.array([[1, 2, 3], [0.5, 0, 0], [-0.0, 4, 4]], dtype=np.float32)
    for scores in infer(TritonPool("t", transport, triton[transport]), x):
        assert isinstance(scores, np.ndarray), scores
        np.testing.assert_allclose(scores, [3.0, 0.25, 4.0], rtol=1e-6)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_missing_version_is_not_held_against_the_pool(
    triton: dict[str, str], transport: str
) -> None:
    x = np.ones((1, 3), dtype=np.float32)
    for error in infer(TritonPool("t", transport, triton[transport]), x, version="9"):
        assert isinstance(error, BackendError), error
        assert (error.reason, error.transport) == ("version_unavailable", False)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_pool_that_is_down_is_a_transport_failure(transport: str) -> None:
    (dead,) = free_ports(1)
    x = np.ones((1, 3), dtype=np.float32)
    for error in infer(TritonPool("t", transport, f"127.0.0.1:{dead}"), x, timeout_s=1.0):
        assert isinstance(error, BackendError), error
        assert error.transport and error.reason in ("unavailable", "timeout")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_late_answer_times_out_and_never_reaches_the_next_call(
    triton: dict[str, str], transport: str
) -> None:
    pool = TritonPool("t", transport, triton[transport])
    slow = np.array([[-1, 0, 0]], dtype=np.float32)
    fast = np.array([[2, 2, 2]], dtype=np.float32)

    async def run() -> tuple[BackendError | None, list[np.ndarray]]:
        backend = triton_backend(pool, 0.1)
        timed_out = None
        try:
            try:
                await backend.infer(served(), slow)
            except BackendError as exc:
                timed_out = exc
            await asyncio.sleep(0.6)  # the late answer has arrived on the old connection
            return timed_out, [await backend.infer(served(), fast) for _ in range(3)]
        finally:
            await backend.close()

    timed_out, answers = asyncio.run(run())
    assert timed_out is not None and (timed_out.reason, timed_out.transport) == ("timeout", True)
    for scores in answers:
        np.testing.assert_allclose(scores, [3.0])
