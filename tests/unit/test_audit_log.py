"""The audit log's append, group commit and crash recovery (real files, no server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from serving import audit
from serving.audit import (
    AuditBusy,
    AuditLog,
    AuditWriteError,
    closed_segments,
    count_records,
    iter_records,
    recover,
    rewrite_records,
)


def test_records_are_readable_at_once_and_synced_in_groups(tmp_path: Path) -> None:
    syncs: list[float] = []
    log = AuditLog(tmp_path, sync_interval_s=0.05, on_sync=syncs.append)
    log.open()
    for i in range(200):
        log.append([{"prediction_id": str(i)}])
    # Written to the kernel before append returns: visible to a reader without any sync.
    assert count_records(tmp_path) == 200
    log.close()
    assert [r["prediction_id"] for r in iter_records(tmp_path)] == [str(i) for i in range(200)]
    assert 1 <= len(syncs) < 200  # grouped, and at least the final one on close


def test_a_killed_writer_loses_nothing_it_returned_from(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        from serving.audit import AuditLog
        log = AuditLog(Path({str(tmp_path)!r}), sync_interval_s=10)
        log.open()
        for i in range(1000):
            log.append([{{"n": i}}])
        print("appended", flush=True)
        os.kill(os.getpid(), 9)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == -9 and "appended" in done.stdout
    assert count_records(tmp_path) == 1000
    log = AuditLog(tmp_path)
    log.open()  # recovery finds nothing torn
    log.close()
    assert [r["n"] for r in iter_records(tmp_path)] == list(range(1000))


def test_recovery_cuts_a_torn_tail_of_a_dead_segment_only(tmp_path: Path) -> None:
    dead = tmp_path / "20260101" / "audit-1-1.jsonl"
    dead.parent.mkdir()
    dead.write_bytes(b'{"n": 1}\n{"n": 2}\n{"n": 3, "sco')
    live = AuditLog(tmp_path)
    live.open()
    live.append([{"n": 4}])
    assert recover(tmp_path) == []  # already recovered by open(); the live one is locked
    assert dead.read_bytes() == b'{"n": 1}\n{"n": 2}\n'
    live.close()
    assert sorted(r["n"] for r in iter_records(tmp_path)) == [1, 2, 4]


def test_append_after_close_fails_loudly(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, sync_interval_s=0)
    log.open()
    log.append([{"a": 1}])
    log.close()
    with pytest.raises(AuditWriteError):
        log.append([{"a": 2}])


def test_segments_rotate_by_size(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, segment_bytes=1000)
    log.open()
    for i in range(100):
        log.append([{"n": i, "pad": "x" * 50}])
    log.close()
    assert len(list(tmp_path.glob("*/audit-*.jsonl"))) > 3
    assert count_records(tmp_path) == 100
    assert all(os.stat(p).st_mode & 0o777 == 0o640 for p in tmp_path.glob("*/*.jsonl"))


def test_a_new_utc_day_starts_a_segment_in_its_own_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    midnight = datetime(2026, 3, 2, tzinfo=UTC).timestamp()
    clock = [midnight - 0.5]
    monkeypatch.setattr(audit.time, "time", lambda: clock[0])
    log = AuditLog(tmp_path, sync_interval_s=0)
    log.open()
    log.append([{"n": 1}])
    clock[0] = midnight - 0.001
    log.append([{"n": 2}])
    clock[0] = midnight
    log.append([{"n": 3}])
    log.close()
    segments = sorted(tmp_path.glob("*/audit-*.jsonl"))
    by_day = {p.parent.name: [json.loads(line)["n"] for line in p.open()] for p in segments}
    assert by_day == {"20260301": [1, 2], "20260302": [3]}


def test_a_rotation_request_moves_live_writers_to_new_segments(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, sync_interval_s=0.05)
    log.open()
    try:
        log.append([{"prediction_id": "before", "customer_id": 7}])
        first = log.path
        with pytest.raises(AuditBusy, match="did not rotate"):
            closed_segments(tmp_path, wait_s=0)  # the writer has had no time to see it
        assert closed_segments(tmp_path, wait_s=5) == [first]
        assert log.path != first
        log.append([{"prediction_id": "after", "customer_id": 7}])
    finally:
        log.close()
    assert [r["prediction_id"] for r in iter_records(tmp_path)] == ["before", "after"]


def test_rewriting_a_segment_keeps_count_and_order_and_refuses_live_ones(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, sync_interval_s=0)
    log.open()
    log.append([{"prediction_id": str(i), "customer_id": i % 3} for i in range(9)])
    with pytest.raises(AuditBusy):
        rewrite_records(log.path, b"customer_id", lambda record, line: None)
    log.close()
    (segment,) = closed_segments(tmp_path)
    inode = segment.stat().st_ino

    def drop_customer(record: dict, line: bytes) -> dict | None:
        if record.get("customer_id") != 1:
            return None
        return {"prediction_id": record["prediction_id"], "erased": len(line)}

    assert rewrite_records(segment, b'"customer_id":1', drop_customer) == 3
    records = list(iter_records(tmp_path))
    assert [r["prediction_id"] for r in records] == [str(i) for i in range(9)]
    assert [r.get("customer_id") for r in records] == [0, None, 2] * 3
    assert segment.stat().st_ino != inode  # replaced by rename, never edited in place
    assert not list(tmp_path.glob("*/.audit-*"))
    assert rewrite_records(segment, b'"customer_id":1', drop_customer) == 0
