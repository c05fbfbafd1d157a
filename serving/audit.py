"""The audit log: one append-only JSON line per prediction, never lost.

Durability, in two steps:

* **Before the answer**: a request's records go to the kernel with one ``write()`` on an
  ``O_APPEND`` file before the response is sent. A gateway killed at any moment (even
  ``kill -9``) has therefore recorded every prediction it answered; the page cache survives the
  process.
* **Group commit**: a background thread calls ``fdatasync`` every ``sync_interval_s`` when
  something was written, so one disk flush covers every record of that interval, off the
  request's path. (``sync_interval_s=0`` syncs before each answer instead.)

Each worker process writes its own segment, ``<dir>/<YYYYMMDD>/audit-<start>-<pid>.jsonl``,
holding an exclusive ``flock`` on it while alive. On start, a writer recovers segments nobody
holds: it cuts a torn final line (a crash of the machine mid-write) and syncs them to disk.
If a record cannot be written the prediction is refused (503): records = predictions served.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("shipyard.gateway.audit")

SEGMENT_GLOB = "*/audit-*.jsonl"
SEGMENT_BYTES = 64 * 1024 * 1024
# Touched by an erasure: every writer moves to a fresh segment within a second, so the segments
# to rewrite are closed ones (a live writer appends through its descriptor, and would keep
# writing to a file renamed away under it).
ROTATE_REQUEST = "rotate.request"
ROTATE_CHECK_S = 0.5
# What a record says about the person behind a prediction; an erasure removes exactly these.
PERSONAL_FIELDS = ("customer_id", "merchant_id", "features", "score")


class AuditWriteError(Exception):
    """A record could not be handed to the kernel or synced."""


class AuditLog:
    """Append-only writer for one process.

    Args:
        directory: the audit folder (shared by every worker and restart).
        sync_interval_s: group-commit period; 0 syncs on every append.
        on_sync: receives each fdatasync's duration in seconds (metrics).
    """

    def __init__(
        self,
        directory: Path,
        sync_interval_s: float = 0.05,
        on_sync: Callable[[float], None] = lambda seconds: None,
        segment_bytes: int = SEGMENT_BYTES,
    ) -> None:
        self.directory = directory
        self.sync_interval_s = sync_interval_s
        self.segment_bytes = segment_bytes
        self._on_sync = on_sync
        self._fd: int | None = None
        self._size = 0
        self._day = ""
        self._day_ends = 0.0  # epoch seconds: the first append opens a segment
        self._opened_ns = 0
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # appends vs rotation and sync
        self._thread: threading.Thread | None = None
        self.sync_error: str | None = None

    # lifecycle

    def open(self) -> list[Path]:
        """Recover segments of dead writers, start a segment and the group-commit thread.

        Returns the segments that were recovered.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        recovered = recover(self.directory)
        with self._lock:
            self._rotate()
        self._thread = threading.Thread(target=self._sync_loop, name="audit-sync", daemon=True)
        self._thread.start()
        return recovered

    def close(self) -> None:
        """Flush and sync everything written; called before shutdown completes."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            if self._fd is not None:
                self._sync_now()
                empty = os.fstat(self._fd).st_size == 0
                os.close(self._fd)  # closing releases the flock
                self._fd = None
                if empty:  # a process that served nothing leaves no file behind
                    self.path.unlink(missing_ok=True)

    # writing

    def append(self, records: list[dict[str, Any]]) -> None:
        """Hand ``records`` to the kernel in one write. Raises AuditWriteError."""
        data = b"".join(orjson.dumps(r) + b"\n" for r in records)
        with self._lock:
            if self._fd is None:
                raise AuditWriteError("the audit log is closed")
            if self.sync_error is not None:
                raise AuditWriteError(f"audit sync failed: {self.sync_error}")
            if self._size + len(data) > self.segment_bytes or time.time() >= self._day_ends:
                self._rotate()
            try:
                view = memoryview(data)
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
            except OSError as exc:
                raise AuditWriteError(f"audit write failed: {exc.strerror}") from None
            self._size += len(data)
            if self.sync_interval_s <= 0:
                self._sync_now()
            else:
                self._dirty.set()

    def _rotate(self) -> None:
        """Close the current segment (removed when empty) and start a new one; under the lock."""
        self._opened_ns = time.time_ns()
        if self._fd is not None:
            self._sync_now()
            empty = os.fstat(self._fd).st_size == 0
            os.close(self._fd)
            if empty:
                self.path.unlink(missing_ok=True)
        self._day, self._day_ends = _utc_day(time.time())
        folder = self.directory / self._day
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = folder / f"audit-{stamp}-{os.getpid()}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _sync_directory(folder)  # the new file's name is durable too
        self._fd = fd
        self._size = 0
        self.path = path

    def _sync_now(self, fd: int | None = None) -> None:
        fd = self._fd if fd is None else fd
        if fd is None:
            return
        started = time.perf_counter()
        try:
            os.fdatasync(fd)
        except OSError as exc:
            # Refuse further predictions rather than answer ones that may not be durable.
            self.sync_error = exc.strerror or str(exc)
            log.error("audit fdatasync failed: %s", self.sync_error)
            raise AuditWriteError(f"audit sync failed: {self.sync_error}") from None
        self._on_sync(time.perf_counter() - started)

    def _rotation_requested(self) -> bool:
        try:
            return os.stat(self.directory / ROTATE_REQUEST).st_mtime_ns >= self._opened_ns
        except OSError:
            return False

    def _sync_loop(self) -> None:
        while not self._stop.is_set():
            if self._rotation_requested():
                with self._lock:
                    if self._fd is not None:
                        with contextlib.suppress(AuditWriteError):
                            self._rotate()
            if not self._dirty.wait(timeout=ROTATE_CHECK_S):
                continue
            self._stop.wait(self.sync_interval_s)  # gather an interval's worth of records
            self._dirty.clear()
            # Sync a duplicate descriptor outside the lock: appends never wait for the disk,
            # and a rotation closing the original cannot pull the file from under the sync.
            with self._lock:
                if self._fd is None:
                    continue
                fd = os.dup(self._fd)
            try:
                # A failure is kept in sync_error: appends then fail loudly.
                with contextlib.suppress(AuditWriteError):
                    self._sync_now(fd)
            finally:
                os.close(fd)


def recover(directory: Path) -> list[Path]:
    """Cut torn tails off segments no live writer holds, and sync them to disk."""
    recovered = []
    for path in sorted(directory.glob(SEGMENT_GLOB)):
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live worker's segment
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                keep = _last_newline(fd, size)
                os.ftruncate(fd, keep)
                log.warning("audit segment %s: cut a torn record (%d bytes)", path, size - keep)
                recovered.append(path)
            os.fsync(fd)
        finally:
            os.close(fd)
    return recovered


def _last_newline(fd: int, size: int) -> int:
    """Offset just past the last newline before ``size`` (0 when there is none)."""
    end = size
    while end > 0:
        start = max(0, end - 65536)
        chunk = os.pread(fd, end - start, start)
        index = chunk.rfind(b"\n")
        if index >= 0:
            return start + index + 1
        end = start
    return 0


def iter_records(directory: Path) -> Iterator[dict[str, Any]]:
    """Every record, segment by segment (each segment in write order)."""
    for path in sorted(directory.glob(SEGMENT_GLOB)):
        with path.open("rb") as handle:
            for line in handle:
                if line.endswith(b"\n"):
                    yield orjson.loads(line)


def count_records(directory: Path) -> int:
    total = 0
    for path in directory.glob(SEGMENT_GLOB):
        with path.open("rb") as handle:
            total += sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    return total


# --- erasure -------------------------------------------------------------------------------


class AuditBusy(Exception):
    """A writer did not leave its segment after a rotation request."""


def request_rotation(directory: Path) -> int:
    """Ask every live writer to start a new segment; returns the request's time (ns)."""
    directory.mkdir(parents=True, exist_ok=True)
    marker = directory / ROTATE_REQUEST
    marker.touch()
    now = time.time_ns()
    os.utime(marker, ns=(now, now))  # exact, not the file system's coarse clock
    return now


def closed_segments(directory: Path, wait_s: float = 5.0) -> list[Path]:
    """Request a rotation and return every segment that existed then, once no writer holds it.

    Raises AuditBusy naming the segment a writer still holds after ``wait_s``.
    """
    for stale in directory.glob("*/.audit-*.erasing"):
        stale.unlink(missing_ok=True)  # a rewrite a crash interrupted; the segment is intact
    existing = sorted(directory.glob(SEGMENT_GLOB))
    if not existing:
        return []
    request_rotation(directory)
    deadline = time.monotonic() + wait_s
    for path in existing:
        while _held(path):
            if time.monotonic() > deadline:
                raise AuditBusy(
                    f"{path} is still written by a gateway worker that did not rotate: restart "
                    "the gateway (`shipyard serve` or `make up`) and run again"
                )
            time.sleep(0.05)
    return [path for path in existing if path.exists()]


def _held(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False  # an empty segment its writer removed on rotation
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def rewrite_records(
    path: Path, needle: bytes, change: Callable[[dict[str, Any], bytes], dict[str, Any] | None]
) -> int:
    """Rewrite the closed segment ``path``, replacing each record ``change`` returns a new
    record for (it is given the record and its line; None keeps it). Returns records changed.

    Only lines containing ``needle`` are parsed. The new segment is written beside the old one,
    synced and renamed over it, under the segment's lock: a crash leaves the old segment or the
    new one, and a writer starting meanwhile cannot recover it under our feet. Record count and
    order are kept.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AuditBusy(f"{path} is held by a live writer") from None
    try:
        with open(fd, "rb", closefd=False) as handle:
            lines = handle.read().splitlines(keepends=True)
        changed = 0
        for index, line in enumerate(lines):
            if needle not in line or not line.endswith(b"\n"):
                continue
            replacement = change(orjson.loads(line), line)
            if replacement is not None:
                lines[index] = orjson.dumps(replacement) + b"\n"
                changed += 1
        if changed:
            staging = path.with_name(f".{path.name}.erasing")
            with open(staging, "wb") as out:
                out.writelines(lines)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(staging, 0o640)
            os.replace(staging, path)
            _sync_directory(path.parent)
        return changed
    finally:
        os.close(fd)


def _utc_day(now: float) -> tuple[str, float]:
    """The UTC day of epoch time ``now`` (``YYYYMMDD``) and when the next one starts: the
    request path compares one float instead of formatting a date per append."""
    start = now - now % 86_400  # POSIX days are exactly 86 400 s
    return datetime.fromtimestamp(start, UTC).strftime("%Y%m%d"), start + 86_400


def _sync_directory(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
