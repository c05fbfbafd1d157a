"""Audit lookups on a large log: the SQLite index (``shipyard audit request``) against a scan.

Writes N records with the gateway's own AuditLog (several segments), then measures the index's
first catch-up, an incremental catch-up, and lookups by prediction id and by request id, side by
side with a linear scan of the same log for the same ids.

    .venv/bin/python bench/audit_lookup.py --records 2000000
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from serving.audit import AuditLog, iter_records
from shipyard.governance.audit import AuditIndex


def record(i: int) -> dict:
    request = f"req{i // 4:09d}"
    return {
        "prediction_id": f"{request}-{i % 4}",
        "request_id": request,
        "ts": "2026-12-01T10:00:00+00:00",
        "model": "fraud-scoring",
        "version": "3",
        "route": "stable",
        "backend": "triton-primary",
        "feature_service": "fraud_scoring_v2",
        "customer_id": i % 100_000,
        "merchant_id": i % 5_000,
        "features_sha256": f"{i:064x}",
        "score": (i % 1000) / 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--scans", type=int, default=3, help="linear scans timed (slow)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/audit_lookup.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "audit"
        log = AuditLog(folder, sync_interval_s=0.05, segment_bytes=64 * 1024 * 1024)
        log.open()
        began = time.perf_counter()
        for start in range(0, args.records, 1000):
            log.append([record(i) for i in range(start, min(start + 1000, args.records))])
        log.close()
        written_s = time.perf_counter() - began
        size = sum(p.stat().st_size for p in folder.glob("*/*.jsonl"))
        index = AuditIndex(folder, Path(scratch) / "index.sqlite")
        began = time.perf_counter()
        first = index.catch_up()
        build_s = time.perf_counter() - began
        began = time.perf_counter()
        index.catch_up()
        noop_s = time.perf_counter() - began

        rng = random.Random(1)
        ids = [record(rng.randrange(args.records))["prediction_id"] for _ in range(args.lookups)]
        by_prediction = []
        for identifier in ids:
            began = time.perf_counter()
            assert len(index.lookup(identifier)) == 1
            by_prediction.append(time.perf_counter() - began)
        by_request = []
        for identifier in ids:
            began = time.perf_counter()
            assert len(index.lookup(identifier.rsplit("-", 1)[0])) >= 1
            by_request.append(time.perf_counter() - began)
        scans = []
        for identifier in ids[: args.scans]:
            began = time.perf_counter()
            found = [r for r in iter_records(folder) if r["prediction_id"] == identifier]
            scans.append(time.perf_counter() - began)
            assert len(found) == 1

    def ms(values: list[float], q: float) -> float:
        return round(statistics.quantiles(values, n=100)[int(q) - 1] * 1000, 3)

    result = {
        "records": args.records,
        "log_mb": round(size / 1e6, 1),
        "write_s": round(written_s, 2),
        "index_build_s": round(build_s, 2),
        "index_build_records_per_s": round(first.added / build_s),
        "catch_up_noop_ms": round(noop_s * 1000, 2),
        "lookup_by_prediction_ms": {"p50": ms(by_prediction, 50), "p99": ms(by_prediction, 99)},
        "lookup_by_request_ms": {"p50": ms(by_request, 50), "p99": ms(by_request, 99)},
        "linear_scan_ms": {"median": round(statistics.median(scans) * 1000, 1)},
    }
    result["speedup_vs_scan"] = round(
        result["linear_scan_ms"]["median"] / result["lookup_by_prediction_ms"]["p50"]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
