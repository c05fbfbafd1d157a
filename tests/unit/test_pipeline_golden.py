"""The compiled pipeline (what a cluster runs) is checked in and must match the code."""

from __future__ import annotations

from pathlib import Path

import yaml

from shipyard.commands.pipeline import compile_to_text

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "training_pipeline.yaml"


def test_golden_pipeline_matches_the_code() -> None:
    assert compile_to_text("training") == GOLDEN.read_text(), (
        "pipelines/ changed: run `make pipelines` and review the diff of tests/golden/"
    )


def test_pipeline_shape() -> None:
    spec = yaml.safe_load(GOLDEN.read_text())
    tasks = spec["root"]["dag"]["tasks"]
    assert {"ingest", "validate", "redact", "training-set", "train", "evaluate", "gate"} <= set(
        tasks
    )
    images = {
        e["container"]["image"]
        for e in spec["deploymentSpec"]["executors"].values()
        if "container" in e
    }
    assert images == {"ghcr.io/shipyard-mlops/shipyard:0.1.0"}
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert {"owner", "team", "n_estimators", "learning_rate", "max_auc_drop"} <= set(inputs)
