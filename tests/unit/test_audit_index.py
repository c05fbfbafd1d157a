"""The audit index over real audit-log segments (written by the gateway's AuditLog)."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.audit import AuditLog
from shipyard.errors import ConfigError
from shipyard.governance.audit import AuditIndex, parse_time


def records(request: str, count: int) -> list[dict]:
    return [
        {"prediction_id": f"{request}-{i}", "request_id": request, "model": "m", "score": i / 10}
        for i in range(count)
    ]


@pytest.fixture
def audit(tmp_path: Path) -> tuple[AuditLog, AuditIndex]:
    log = AuditLog(tmp_path / "audit", sync_interval_s=0)
    log.open()
    yield log, AuditIndex(tmp_path / "audit", tmp_path / "index" / "index.sqlite")
    log.close()


def test_lookup_by_prediction_and_by_request(audit) -> None:
    log, index = audit
    log.append(records("r1", 3))
    log.append(records("r2", 1))
    assert [r["prediction_id"] for r in index.lookup("r1")] == ["r1-0", "r1-1", "r1-2"]
    assert index.lookup("r1-1") == [records("r1", 3)[1]]
    assert index.lookup("nope") == []


def test_catch_up_indexes_only_what_was_appended_since(audit) -> None:
    log, index = audit
    log.append(records("a", 5))
    assert index.catch_up().added == 5
    assert index.catch_up().added == 0
    log.append(records("b", 2))
    result = index.catch_up()
    assert (result.added, result.total) == (2, 7)
    assert index.lookup("b-1")[0]["score"] == 0.1


def test_a_line_being_written_waits_for_the_next_catch_up(audit, tmp_path: Path) -> None:
    log, index = audit
    log.append(records("a", 1))
    (segment,) = (tmp_path / "audit").glob("*/audit-*.jsonl")
    with open(segment, "ab") as handle:
        handle.write(b'{"prediction_id": "half')
    assert index.catch_up().added == 1
    with open(segment, "ab") as handle:
        handle.write(b'-0", "request_id": "half"}\n')
    assert index.catch_up().added == 1
    assert index.lookup("half-0") == [{"prediction_id": "half-0", "request_id": "half"}]


def test_a_rewritten_segment_is_indexed_afresh(audit, tmp_path: Path) -> None:
    log, index = audit
    log.append(records("a", 3))
    index.catch_up()
    (segment,) = (tmp_path / "audit").glob("*/audit-*.jsonl")
    lines = segment.read_bytes().splitlines(keepends=True)
    # An erasure rewrites the segment (same size here) and renames it into place.
    erased = lines[0].replace(b'"model":"m"', b'"model":"x"')
    rewritten = segment.with_name("rewritten")
    rewritten.write_bytes(b"".join([erased, *lines[1:]]))
    rewritten.replace(segment)
    index.catch_up()
    assert index.lookup("a-0")[0]["model"] == "x" and index.lookup("a-2")[0]["model"] == "m"


def test_the_index_is_derived_data(audit, tmp_path: Path) -> None:
    log, index = audit
    log.append(records("a", 2))
    index.catch_up()
    index.index_file.unlink()
    assert index.lookup("a-1")[0]["prediction_id"] == "a-1"


def test_times_are_iso_8601_or_now() -> None:
    assert parse_time("2026-12-01T10:00:00Z").isoformat() == "2026-12-01T10:00:00+00:00"
    assert parse_time("2026-12-01T10:00:00").tzinfo is not None
    with pytest.raises(ConfigError, match="is not a time"):
        parse_time("yesterday")
