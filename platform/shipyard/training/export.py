"""Export for serving: ONNX with a parity check, and a Triton model-repository entry.

The entry carries three configurations of the same ``model.onnx``:

* ``config.pbtxt`` — the embedded stack: Triton's Python backend running ONNX Runtime
  (``model.py``), on CPU; the Triton wheel used locally has no ONNX Runtime backend.
* ``configs/gpu.pbtxt`` — a cluster's GPU pool: ONNX Runtime backend, ``KIND_GPU``, dynamic
  batching. Selected with ``tritonserver --model-config-name=gpu``.
* ``configs/cpu.pbtxt`` — a cluster's CPU pool (and the GPU pool's fallback): ONNX Runtime
  backend, ``KIND_CPU``. Selected with ``--model-config-name=cpu``.

All take one FP32 input ``input`` of shape ``[-1, n_features]`` and return ``probability``
``[-1, 1]``, so a client never knows which one served it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np

INPUT = "input"
OUTPUT = "probability"
PARITY_TOLERANCE = 1e-5
MAX_BATCH = 256
# Written by `shipyard serve publish` once Triton has loaded a version (see serving.models).
PUBLISHED_MARKER = "serving.json"
# The LightGBM model beside the ONNX file: the gateway explains scores with it.
EXPLAINER_FILE = "model.lgb.txt"


class ParityError(Exception):
    """The ONNX export does not reproduce the native model's predictions."""


def to_onnx(booster: lgb.Booster, n_features: int) -> bytes:
    """The booster as an ONNX graph: ``input`` [-1, n] float32 -> ``probability`` [-1, 1]."""
    import onnx
    import onnxmltools
    from onnx import TensorProto, helper
    from onnxmltools.convert.common.data_types import FloatTensorType

    model = onnxmltools.convert_lightgbm(
        booster,
        initial_types=[(INPUT, FloatTensorType([None, n_features]))],
        target_opset=15,
        zipmap=False,
    )
    graph = model.graph
    # The converter outputs (label, probabilities[N, 2]); serving wants P(fraud) as [N, 1].
    probabilities = next(o.name for o in graph.output if o.name != "label")
    graph.node.extend(
        [
            helper.make_node(
                "Slice",
                [probabilities, "slice_start", "slice_end", "slice_axis"],
                [OUTPUT],
                name="fraud_probability",
            )
        ]
    )
    for name, value in (("slice_start", 1), ("slice_end", 2), ("slice_axis", 1)):
        graph.initializer.append(helper.make_tensor(name, TensorProto.INT64, [1], [value]))
    # Slice with tensor inputs needs opset >= 10 of the default domain; the converter only
    # declares what the tree ensemble itself uses.
    default = [o for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if default:
        default[0].version = max(default[0].version, 15)
    else:
        model.opset_import.append(helper.make_opsetid("", 15))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [None, 1]))
    onnx.checker.check_model(model)
    return model.SerializeToString()


def check_parity(onnx_model: bytes, native: np.ndarray, x: np.ndarray) -> float:
    """Max absolute difference between ONNX Runtime and native scores; raises over tolerance."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])
    exported = session.run([OUTPUT], {INPUT: x.astype(np.float32)})[0][:, 0]
    difference = float(np.max(np.abs(exported - native))) if len(x) else 0.0
    if difference > PARITY_TOLERANCE:
        raise ParityError(
            f"ONNX scores differ from the native model by {difference:.2e} "
            f"(tolerance {PARITY_TOLERANCE:.0e}): the export is not faithful"
        )
    return difference


@dataclass(frozen=True)
class TritonEntry:
    path: Path
    version: int


def write_triton_entry(
    repository: Path,
    name: str,
    version: int,
    onnx_model: bytes,
    n_features: int,
    extra_files: dict[str, bytes] | None = None,
) -> TritonEntry:
    """Write ``<repository>/<name>/{config.pbtxt, configs/*.pbtxt, <version>/model.*}``.

    The version folder is written beside the entry and renamed into place, so Triton never sees
    a half-written version. A version already published for serving (``serving.json`` present)
    is immutable and left as it is.
    """
    width = _input_width(onnx_model)
    if width != n_features:
        raise ValueError(f"the ONNX model takes {width} inputs, not {n_features}")
    entry = repository / name
    (entry / "configs").mkdir(parents=True, exist_ok=True)
    target = entry / str(version)
    if (target / PUBLISHED_MARKER).is_file():
        return TritonEntry(entry, version)
    staging = entry / f".{version}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    (staging / "model.onnx").write_bytes(onnx_model)
    for file_name, content in (extra_files or {}).items():  # e.g. the drift reference
        (staging / file_name).write_bytes(content)
    shutil.copyfile(Path(__file__).with_name("triton_model.py"), staging / "model.py")
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    if not (entry / "config.pbtxt").is_file():
        # The first version of a model; later ones keep the published version policy.
        write_configs(entry, name, versions=None)
    return TritonEntry(entry, version)


def _input_width(onnx_model: bytes) -> int:
    import onnx

    graph = onnx.load_from_string(onnx_model).graph
    return graph.input[0].type.tensor_type.shape.dim[1].dim_value


CONFIG_KINDS = {"config.pbtxt": "python", "configs/gpu.pbtxt": "gpu", "configs/cpu.pbtxt": "cpu"}


def write_configs(entry: Path, name: str, versions: list[int] | None) -> None:
    """(Re)write the entry's three configurations; ``versions`` is the set Triton serves
    (``None``: Triton's default, the newest only). Each file is replaced atomically.

    The input width is left open (``-1``): versions trained on different feature services
    have different widths and share one configuration.
    """
    (entry / "configs").mkdir(parents=True, exist_ok=True)
    for relative, kind in CONFIG_KINDS.items():
        target = entry / relative
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(_config(name, kind, versions))
        partial.replace(target)


def _config(name: str, kind: str, versions: list[int] | None = None) -> str:
    header = "# Generated by shipyard.training.export — do not edit.\n"
    io = (
        f"max_batch_size: {MAX_BATCH}\n"
        f'input [{{ name: "{INPUT}" data_type: TYPE_FP32 dims: [ -1 ] }}]\n'
        f'output [{{ name: "{OUTPUT}" data_type: TYPE_FP32 dims: [ 1 ] }}]\n'
    )
    if kind == "python":
        backend = 'backend: "python"\n'
        placement = "instance_group [{ kind: KIND_CPU count: 1 }]\n"
        # No queue delay: requests that queue while the instance is busy are still scored
        # together, and a lone request is not held back waiting for company. On the embedded
        # stack, holding each one 200 µs cost more than the wait (p50 +0.3 ms at 500 req/s).
        batching = "dynamic_batching { }\n"
    elif kind == "gpu":
        backend = 'backend: "onnxruntime"\ndefault_model_filename: "model.onnx"\n'
        placement = "instance_group [{ kind: KIND_GPU count: 1 }]\n"
        batching = (
            "dynamic_batching {\n  preferred_batch_size: [ 32, 64, 128 ]\n"
            "  max_queue_delay_microseconds: 500\n}\n"
        )
    else:
        backend = 'backend: "onnxruntime"\ndefault_model_filename: "model.onnx"\n'
        placement = "instance_group [{ kind: KIND_CPU count: 2 }]\n"
        batching = "dynamic_batching { max_queue_delay_microseconds: 200 }\n"
    policy = ""
    if versions:
        listed = ", ".join(str(v) for v in sorted(versions))
        policy = f"version_policy {{ specific {{ versions: [ {listed} ] }} }}\n"
    return f'{header}name: "{name}"\n{backend}{io}{placement}{batching}{policy}'
