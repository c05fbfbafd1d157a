"""The data-and-features flow through the `shipyard` command, as a data scientist runs it.

generate -> prepare (a stale-data failure first: one clear line, nothing written) -> build ->
apply (twice: idempotent) -> materialize -> get -> training-set -> push (bad payload refused)
-> scan (clean, features and training data free of raw PII; so is everything printed).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from shipyard.data import pii
from shipyard.stack.layout import StateLayout
from shipyard.stack.supervisor import inherited_env
from tests.conftest import isolated_settings
from tests.e2e.test_platform_cli import shipyard


def test_features_flow_through_the_cli(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path / "state")
    layout = StateLayout(settings.state_dir)
    env = {**inherited_env(), **settings.to_env()}
    printed: list[str] = []

    def run(*args: str, expect: int = 0) -> str:
        result = shipyard(env, *args)
        printed.extend([result.stdout, result.stderr])
        assert result.returncode == expect, f"{args}: {result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
        return result.stdout + result.stderr

    run("data", "generate", "--rows", "20000", "--start", "2026-03-01", "--days", "10")

    stale = run("data", "prepare", expect=1)  # the data ended months ago: freshness gate
    error_lines = [line for line in stale.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert "event_timestamp: fresh(" in error_lines[0] and "nothing was written" in error_lines[0]
    assert not layout.clean_data.exists()

    run("data", "prepare", "--as-of", "2026-03-11")
    assert "events/s" in run("features", "build")
    assert "created" in run("features", "apply")
    assert "nothing changed" in run("features", "apply")
    run("features", "materialize", "--start", "2026-02-01", "--end", "2026-03-11")

    transactions = pl.read_parquet(layout.clean_data / "transactions")
    busiest = transactions.group_by("customer_id").len().sort("len").row(-1)[0]
    got = run("features", "get", "--customer", str(busiest), "--merchant", "1", "--amount", "99")
    assert "customer_txn_count_7d" in got and "amount_to_customer_mean_7d" in got

    run("features", "training-set", "--service", "fraud_scoring_v1")
    training = layout.training_sets / "fraud_scoring_v1"
    manifest = json.loads((training / "manifest.json").read_text())
    assert manifest["rows"] == transactions.height
    assert pl.read_parquet(training / "data.parquet").height == transactions.height

    # User mistakes: one line, the right exit code, nothing changed.
    (tmp_path / "bad.jsonl").write_text('{"transaction_id": 1, "amount": -5}\n')
    assert "failed validation" in run("features", "push", str(tmp_path / "bad.jsonl"), expect=1)
    assert "--start must be before --end" in run(
        "features", "materialize", "--start", "2026-03-11", "--end", "2026-03-01", expect=2
    )
    assert "unknown feature service" in run(
        "features", "get", "--customer", "1", "--merchant", "1", "--service", "nope", expect=1
    )
    assert "is not a time" in run("data", "prepare", "--as-of", "yesterday", expect=2)

    downstream = [str(layout.clean_data), str(layout.feature_tables), str(layout.training_sets)]
    run("data", "scan", *downstream, "--known-from", str(layout.raw_data))
    assert "raw PII found" in run("data", "scan", str(layout.raw_data), expect=1)

    # Nothing the commands printed carries raw PII (the scan of raw data prints masked values).
    (tmp_path / "printed.log").write_text("\n".join(printed))
    assert pii.scan([tmp_path / "printed.log"], pii.known_pii_values(layout.raw_data)) == []
