"""Training building blocks: hyper-parameters, the gate, ownership, ONNX export, encoding."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from shipyard.features.encoding import REQUEST_INPUTS, encode_frame, encode_rows, input_names
from shipyard.training.evaluation import Evaluation, SliceMetrics, evaluate
from shipyard.training.export import (
    ParityError,
    check_parity,
    to_onnx,
    write_configs,
    write_triton_entry,
)
from shipyard.training.gate import GatePolicy, judge
from shipyard.training.model import HyperParameters, predict, time_split, train
from shipyard.training.registry import OwnerRequiredError, Ownership, fingerprint

SERVICE = "fraud_scoring_v1"


def frame(rows: int = 4000, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    names = [n for n in input_names(SERVICE) if n not in REQUEST_INPUTS]
    data = {n: rng.gamma(2.0, 10.0, rows) for n in names}
    signal = data["amount_to_customer_mean_7d"] + rng.normal(0, 5, rows)
    data["is_fraud"] = (signal > np.quantile(signal, 0.95)).astype(np.int8)
    data["merchant_category"] = rng.choice(["grocery", "crypto", "unknown-kind"], rows)
    data["channel"] = rng.choice(["pos", "online"], rows)
    data["device_type"] = rng.choice(["chip", "app"], rows)
    start = int(datetime(2026, 4, 1, tzinfo=UTC).timestamp() * 1e6)
    data["event_timestamp"] = pl.Series(
        np.sort(start + rng.integers(0, 86_400_000_000 * 10, rows))
    ).cast(pl.Datetime("us", "UTC"))
    return pl.DataFrame(data)


def test_hyper_parameters_are_validated() -> None:
    with pytest.raises(ValueError, match="learning_rate"):
        HyperParameters(learning_rate=0)
    with pytest.raises(ValueError, match="num_leaves"):
        HyperParameters(num_leaves=1)


def test_time_split_holds_out_the_latest_rows() -> None:
    data = frame()
    train_rows, holdout = time_split(data, 0.2)
    assert train_rows.height + holdout.height == data.height
    assert (
        train_rows.get_column("event_timestamp").max() < holdout.get_column("event_timestamp").min()
    )


def test_online_and_offline_encoding_agree() -> None:
    data = frame(50)
    offline = encode_frame(data, SERVICE)
    names = [n for n in input_names(SERVICE) if n not in REQUEST_INPUTS]
    for i, row in enumerate(data.rows(named=True)):
        online = encode_rows([{n: row[n] for n in names}], [row], row["event_timestamp"], SERVICE)
        np.testing.assert_array_equal(online[0], offline[i])
    assert (offline[:, input_names(SERVICE).index("merchant_category_code")] == -1).any()


def evaluation(auc: float, slice_auc: float = 0.9) -> Evaluation:
    return Evaluation(
        rows=1000,
        positives=50,
        roc_auc=auc,
        pr_auc=0.5,
        brier=0.05,
        expected_calibration_error=0.01,
        slices={"channel": {"online": SliceMetrics(400, 30, slice_auc)}},
    )


def test_gate_refuses_a_worse_model_and_says_why() -> None:
    decision = judge(evaluation(0.85), evaluation(0.90), GatePolicy(max_auc_drop=0.01))
    assert not decision.passed
    assert "0.0500 below the champion's 0.9000" in decision.summary()
    assert judge(evaluation(0.895), evaluation(0.90), GatePolicy(max_auc_drop=0.01)).passed
    assert judge(evaluation(0.80), None).passed  # no champion yet: only the slice floors


def test_gate_checks_slices() -> None:
    floor = judge(evaluation(0.9, slice_auc=0.55), None, GatePolicy(min_slice_auc=0.6))
    assert not floor.passed and "slice channel=online" in floor.reasons[0]
    dropped = judge(
        evaluation(0.9, 0.80), evaluation(0.9, 0.90), GatePolicy(max_slice_auc_drop=0.05)
    )
    assert not dropped.passed and "dropped 0.1000" in dropped.reasons[0]


@pytest.mark.parametrize(("owner", "team"), [("", "fraud"), ("alice", " "), ("", "")])
def test_a_model_needs_an_owner_and_a_team(owner: str, team: str) -> None:
    with pytest.raises(OwnerRequiredError, match="--owner and --team") as refused:
        Ownership(owner, team)
    assert refused.value.exit_code == 2


def test_fingerprint_names_what_determines_the_model() -> None:
    base = fingerprint("sha256:a", SERVICE, {"n": 1}, "0.1.0")
    assert base == fingerprint("sha256:a", SERVICE, {"n": 1}, "0.1.0")
    assert base != fingerprint("sha256:b", SERVICE, {"n": 1}, "0.1.0")
    assert base != fingerprint("sha256:a", SERVICE, {"n": 2}, "0.1.0")
    assert base != fingerprint("sha256:a", SERVICE, {"n": 1}, "0.2.0")


@pytest.fixture(scope="module")
def trained() -> tuple:
    data = frame()
    x = encode_frame(data, SERVICE)
    y = data.get_column("is_fraud").to_numpy()
    booster = train(x, y, input_names(SERVICE), HyperParameters(n_estimators=30))
    return booster, x, y


def test_evaluation_and_plots(trained: tuple, tmp_path: Path) -> None:
    from shipyard.training.evaluation import plot

    booster, x, y = trained
    scores = predict(booster, x)
    result = evaluate(y, scores, {"half": np.where(np.arange(len(y)) % 2, "odd", "even")})
    assert 0.5 < result.roc_auc <= 1 and 0 < result.pr_auc <= 1
    assert set(result.slices["half"]) == {"odd", "even"}
    paths = plot(y, scores, tmp_path)
    assert [p.name for p in paths] == ["roc.png", "precision_recall.png", "calibration.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)


def test_onnx_export_matches_native_and_parity_is_enforced(trained: tuple) -> None:
    booster, x, _ = trained
    model = to_onnx(booster, x.shape[1])
    native = predict(booster, x)
    assert check_parity(model, native, x) <= 1e-5
    with pytest.raises(ParityError, match="differ from the native model"):
        check_parity(model, native + 1e-3, x)


def test_triton_entry_has_python_gpu_and_cpu_configs(trained: tuple, tmp_path: Path) -> None:
    booster, x, _ = trained
    entry = write_triton_entry(tmp_path, "fraud", 3, to_onnx(booster, x.shape[1]), x.shape[1])
    assert sorted(p.name for p in (entry.path / "3").iterdir()) == ["model.onnx", "model.py"]
    local = (entry.path / "config.pbtxt").read_text()
    gpu = (entry.path / "configs" / "gpu.pbtxt").read_text()
    cpu = (entry.path / "configs" / "cpu.pbtxt").read_text()
    assert 'backend: "python"' in local and "KIND_CPU" in local
    assert 'backend: "onnxruntime"' in gpu and "KIND_GPU" in gpu and "dynamic_batching" in gpu
    assert 'backend: "onnxruntime"' in cpu and "KIND_CPU" in cpu
    for config in (local, gpu, cpu):
        # Width open: versions on different feature services share the configuration.
        assert "dims: [ -1 ]" in config and 'name: "fraud"' in config
        assert "version_policy" not in config  # until `serve publish` lists versions
    assert not list(entry.path.glob(".*partial"))
    with pytest.raises(ValueError, match="takes 15 inputs, not 14"):
        write_triton_entry(tmp_path, "fraud", 4, to_onnx(booster, x.shape[1]), x.shape[1] - 1)


def test_published_versions_are_immutable_and_listed_in_the_policy(
    trained: tuple, tmp_path: Path
) -> None:
    booster, x, _ = trained
    model = to_onnx(booster, x.shape[1])
    entry = write_triton_entry(tmp_path, "fraud", 1, model, x.shape[1])
    (entry.path / "1" / "serving.json").write_text("{}")
    before = (entry.path / "1" / "model.onnx").stat().st_mtime_ns
    write_triton_entry(tmp_path, "fraud", 1, model, x.shape[1])  # a pipeline re-run
    assert (entry.path / "1" / "serving.json").is_file()
    assert (entry.path / "1" / "model.onnx").stat().st_mtime_ns == before
    write_configs(entry.path, "fraud", [3, 1])
    for path in [entry.path / "config.pbtxt", *(entry.path / "configs").iterdir()]:
        assert "version_policy { specific { versions: [ 1, 3 ] } }" in path.read_text()


def test_triton_configs_parse_as_model_configs(trained: tuple, tmp_path: Path) -> None:
    """Every generated config is a valid Triton ModelConfig (the protobuf Triton itself parses)."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    booster, x, _ = trained
    entry = write_triton_entry(tmp_path, "fraud", 1, to_onnx(booster, x.shape[1]), x.shape[1])
    kinds = {}
    for path in [entry.path / "config.pbtxt", *sorted((entry.path / "configs").iterdir())]:
        config = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
        kinds[path.stem] = (
            config.backend,
            model_config_pb2.ModelInstanceGroup.Kind.Name(config.instance_group[0].kind),
        )
        assert config.input[0].dims == [-1] and config.output[0].dims == [1]
    assert kinds == {
        "config": ("python", "KIND_CPU"),
        "cpu": ("onnxruntime", "KIND_CPU"),
        "gpu": ("onnxruntime", "KIND_GPU"),
    }


def test_float32_thresholds_make_onnx_exact_without_changing_the_model() -> None:
    """Plain LightGBM thresholds sit between float32 values and ONNX rounds them: scores move.
    Rounding them down keeps every native score and makes the export exact."""
    import lightgbm as lgb

    rng = np.random.default_rng(5)
    # Values one float32 step apart, as dense real features have: a split between two of them
    # lies between adjacent float32 numbers, so rounding the threshold lands on one of them.
    ladder = np.float32(3.7) + np.arange(8, dtype=np.float32) * np.spacing(np.float32(3.7))
    x = rng.choice(ladder, (20_000, 6)).astype(np.float32)
    y = ((x[:, 0] > ladder[3]) ^ (rng.random(len(x)) < 0.1)).astype(int)
    params = HyperParameters(n_estimators=20)
    plain = lgb.train(params.lightgbm(), lgb.Dataset(x, label=y), num_boost_round=20)
    ours = train(x, y, [f"f{i}" for i in range(6)], params)
    np.testing.assert_array_equal(predict(plain, x), predict(ours, x))
    with pytest.raises(ParityError):
        check_parity(to_onnx(plain, 6), predict(plain, x), x)
    assert check_parity(to_onnx(ours, 6), predict(ours, x), x) <= 1e-5
