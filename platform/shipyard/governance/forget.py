"""Right to be forgotten: erase one customer from every store that holds their rows.

In order:

1. **offline** — every Parquet data set of the state directory that has a ``customer_id``
   column: raw events and the customer master table (PII included), clean events, feature
   tables, training sets and the local pipeline runner's artifacts. Affected files are
   rewritten atomically, manifests brought up to date (``offline_source.erase_rows``). The next
   pipeline run starts from the erased raw data, so the next training set cannot hold the
   customer either.
2. **online** — the customer's values in the online store (SQLite rows or the Redis hash).
3. **audit** — audit records keep their place and lineage (count of records = predictions) but
   lose what they say about the person; a tombstone names the erasure and keeps a hash of the
   record it replaced (``serving.audit``).
4. **models** — model versions trained on a data set that held the customer (their lineage
   digests) are tagged ``retrain_required`` in the registry.

Every erasure gets an id and goes into an append-only trail (started, completed, counts per
store, models tagged, who). Neither the trail nor the journal holds the customer id: both name
the subject by a keyed hash, which proves an erasure for an id you are given but does not
reveal it.

Crash safety: each step is idempotent on its own (rows already gone match nothing), and a
journal per subject records the erasure id, the steps done and the data digests seen before
each rewrite. Run again after a crash, ``forget`` resumes the same erasure and converges.
Before changing anything it reads every store once: a store that is down fails the command
with nothing erased.

The offline step covers the embedded stack's state directory; on a cluster the same functions
apply to the buckets the data sets live in (a seam, not wired to object storage yet).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipyard.data import pii
from shipyard.data.offline_source import data_sets, erase_rows, matching_rows
from shipyard.errors import ShipyardError
from shipyard.rollout.history import current_user
from shipyard.settings import Settings
from shipyard.stack.layout import StateLayout
from shipyard.training.tracking import RETRAIN_REQUIRED as RETRAIN_TAG
from shipyard.training.tracking import tags_of

SUBJECT_COLUMN = "customer_id"
STEPS = ("offline", "online", "audit", "models")
# Lineage tags a registered version carries (training.steps.register): the data it came from.
LINEAGE_TAGS = ("dataset_digest", "clean_data_digest")


@dataclass(frozen=True)
class Subject:
    customer_id: int
    digest: str  # keyed hash of the id: names the subject in journal and trail


@dataclass
class ErasureReport:
    erasure_id: str
    resumed: bool = False
    already_done: bool = False
    removed: dict[str, int] = field(default_factory=dict)  # store -> rows or records removed
    models: list[str] = field(default_factory=list)  # "name/version" tagged for retraining
    remaining: dict[str, int] = field(default_factory=dict)  # store -> rows left (all 0)


class Forgetter:
    """Erases and verifies one subject at a time in one state directory.

    Args:
        settings: the platform's settings (state dir, online store, MLflow, PII key).
        progress: receives one line per step (the CLI prints them).
        audit_wait_s: how long gateway workers get to leave their audit segments.
    """

    def __init__(
        self,
        settings: Settings,
        progress: Callable[[str], None] = lambda line: None,
        audit_wait_s: float = 5.0,
    ) -> None:
        self.settings = settings
        self.layout = StateLayout(settings.state_dir)
        self.progress = progress
        self.audit_wait_s = audit_wait_s

    # --- public ----------------------------------------------------------------------------

    def subject(self, customer_id: int) -> Subject:
        key = pii.pii_key(self.settings, self.layout.secrets)
        mac = hmac.new(key, f"{SUBJECT_COLUMN}:{customer_id}".encode(), hashlib.sha256)
        return Subject(customer_id, mac.hexdigest()[:32])

    def remaining(self, customer_id: int) -> dict[str, int]:
        """Rows (records, keys) of the customer left in each store; reads only."""
        counts = {
            label: sum(
                matching_rows(path, SUBJECT_COLUMN, customer_id)
                for files in data_sets(root).values()
                for path in files
            )
            for label, root in self._offline_roots().items()
        }
        counts["online store"] = self._online(customer_id, delete=False)
        counts["audit log"] = self._audit_records(customer_id)
        return counts

    def forget(self, customer_id: int) -> ErasureReport:
        """Erase ``customer_id`` everywhere (resuming an interrupted erasure), then verify."""
        if customer_id <= 0:
            raise ShipyardError(f"--customer {customer_id}: customer ids are positive integers")
        subject = self.subject(customer_id)
        with self._exclusive():
            registry = self._registry()
            try:  # every store answers, or nothing is touched
                before = self.remaining(customer_id)
                registry.registered_models()
            except ShipyardError as exc:
                raise ShipyardError(
                    f"{exc}; nothing was erased: start the stack (`make up`) and run again"
                ) from None
            journal = self._journal(subject)
            if journal.get("completed_at") and not any(before.values()):
                report = ErasureReport(journal["erasure_id"], already_done=True)
                report.removed = journal["removed"]
                report.models = journal["models"]
                report.remaining = before
                return report
            resumed = bool(journal) and not journal.get("completed_at")
            if not resumed:
                journal = self._start(subject)
            report = ErasureReport(journal["erasure_id"], resumed=resumed)
            self._run_steps(subject, journal, registry)
            report.remaining = self.remaining(customer_id)
            left = {store: n for store, n in report.remaining.items() if n}
            if left:
                raise ShipyardError(
                    f"erasure {journal['erasure_id']} left rows behind ({left}): "
                    "run `shipyard forget` again"
                )
            journal["completed_at"] = _now()
            self._save(subject, journal)
            self._trail(
                "completed",
                journal,
                removed=journal["removed"],
                models=journal["models"],
            )
            report.removed = journal["removed"]
            report.models = journal["models"]
            return report

    # --- steps -----------------------------------------------------------------------------

    def _run_steps(self, subject: Subject, journal: dict, registry: Any) -> None:
        steps: dict[str, Callable[[], None]] = {
            "offline": lambda: self._erase_offline(subject, journal),
            "online": lambda: self._count(
                journal, "online store", self._online(subject.customer_id, delete=True)
            ),
            "audit": lambda: self._count(
                journal, "audit log", self._erase_audit(subject, journal["erasure_id"])
            ),
            "models": lambda: self._tag_models(journal, registry),
        }
        for step in STEPS:
            if step in journal["steps_done"]:
                continue
            self.progress(f"{step}: erasing")
            steps[step]()
            journal["steps_done"].append(step)
            self._save(subject, journal)

    def _erase_offline(self, subject: Subject, journal: dict) -> None:
        for label, root in self._offline_roots().items():
            for folder, files in data_sets(root).items():

                def remember(digest: str | None) -> None:
                    # Journaled before the first rewrite: the versions trained on this data can
                    # still be found after a crash that lost the old manifest.
                    if digest and digest not in journal["digests"]:
                        journal["digests"].append(digest)
                        self._save(subject, journal)

                erased = erase_rows(folder, files, SUBJECT_COLUMN, subject.customer_id, remember)
                if erased.total:
                    self.progress(f"offline: {erased.total:,} rows from {folder}")
                    self._count(journal, label, erased.total)
                    self._save(subject, journal)

    def _online(self, customer_id: int, delete: bool) -> int:
        from shipyard.features import online
        from shipyard.features import store as feature_store

        if not (self.layout.feast / "registry.db").exists():
            return 0  # features were never applied: no online store to hold anyone
        store = feature_store.open_store(self.settings)
        if delete:
            return online.erase_entity(self.settings, store, SUBJECT_COLUMN, customer_id)
        return online.entity_rows(self.settings, store, SUBJECT_COLUMN, customer_id)

    def _erase_audit(self, subject: Subject, erasure_id: str) -> int:
        from serving import audit

        def tombstone(record: dict[str, Any], line: bytes) -> dict[str, Any] | None:
            if record.get(SUBJECT_COLUMN) != subject.customer_id:
                return None
            kept = {k: v for k, v in record.items() if k not in audit.PERSONAL_FIELDS}
            kept["erased"] = {
                "erasure_id": erasure_id,
                "record_sha256": hashlib.sha256(line.rstrip(b"\n")).hexdigest(),
            }
            return kept

        try:
            segments = audit.closed_segments(self.layout.audit, self.audit_wait_s)
            return sum(
                audit.rewrite_records(path, self._needle(subject.customer_id), tombstone)
                for path in segments
            )
        except audit.AuditBusy as exc:
            raise ShipyardError(f"audit log: {exc}") from None

    def _audit_records(self, customer_id: int) -> int:
        from serving import audit

        needle = self._needle(customer_id)
        found = 0
        for path in sorted(self.layout.audit.glob(audit.SEGMENT_GLOB)):
            with path.open("rb") as handle:
                for line in handle:
                    if needle in line and line.endswith(b"\n"):
                        found += json.loads(line).get(SUBJECT_COLUMN) == customer_id
        return found

    @staticmethod
    def _needle(customer_id: int) -> bytes:
        return f'"{SUBJECT_COLUMN}":{customer_id}'.encode()

    def _tag_models(self, journal: dict, registry: Any) -> None:
        digests = set(journal["digests"])
        for version in registry.model_versions():
            tags = tags_of(version)
            if not digests & {tags.get(name) for name in LINEAGE_TAGS}:
                continue
            pending = [e for e in tags.get(RETRAIN_TAG, "").split(",") if e]
            if journal["erasure_id"] not in pending:
                pending.append(journal["erasure_id"])
                registry.set_model_version_tag(
                    version["name"], version["version"], RETRAIN_TAG, ",".join(pending)
                )
            name = f"{version['name']}/{version['version']}"
            if name not in journal["models"]:
                journal["models"].append(name)
                self.progress(f"models: {name} trained on the customer's data: retraining due")

    # --- journal and trail -----------------------------------------------------------------

    def _offline_roots(self) -> dict[str, Path]:
        layout = self.layout
        return {
            "raw data": layout.raw_data,
            "clean data": layout.clean_data,
            "feature tables": layout.feature_tables,
            "training sets": layout.training_sets,
            "pipeline artifacts": layout.pipeline_root,
        }

    def _registry(self) -> Any:
        from shipyard.training.tracking import MlflowRest

        return MlflowRest(self.settings.url("mlflow"))

    def _journal_path(self, subject: Subject) -> Path:
        return self.layout.erasures / f"{subject.digest}.json"

    def _journal(self, subject: Subject) -> dict:
        path = self._journal_path(subject)
        if not path.exists():
            return {}
        try:
            return json.loads(path.read_text())
        except ValueError:
            raise ShipyardError(
                f"{path} is not readable JSON: restore it from a backup, or delete it to start "
                "a new erasure (each step is safe to run again)"
            ) from None

    def _start(self, subject: Subject) -> dict:
        journal = {
            "erasure_id": "er_" + secrets.token_hex(8),
            "subject": subject.digest,
            "started_at": _now(),
            "actor": current_user(),
            "steps_done": [],
            "removed": {},
            "digests": [],
            "models": [],
        }
        self._save(subject, journal)
        self._trail("started", journal)
        return journal

    def _save(self, subject: Subject, journal: dict) -> None:
        path = self._journal_path(subject)
        staging = path.with_name(path.name + ".partial")
        with open(staging, "w", encoding="utf-8") as handle:
            json.dump(journal, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, path)

    @staticmethod
    def _count(journal: dict, store: str, removed: int) -> None:
        journal["removed"][store] = journal["removed"].get(store, 0) + removed

    def _trail(self, event: str, journal: dict, **details: Any) -> None:
        record = {
            "ts": _now(),
            "event": event,
            "erasure_id": journal["erasure_id"],
            "subject": journal["subject"],
            "actor": current_user(),
            **details,
        }
        with open(self.layout.erasure_trail, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One erasure at a time per state directory."""
        self.layout.erasures.mkdir(parents=True, exist_ok=True)
        with open(self.layout.erasures / "lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ShipyardError(
                    "another `shipyard forget` is running on this state directory: wait for it"
                ) from None
            yield


def read_trail(layout: StateLayout) -> list[dict]:
    """Every erasure event, oldest first (a torn last line from a crash is skipped)."""
    if not layout.erasure_trail.exists():
        return []
    events = []
    for line in layout.erasure_trail.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def _now() -> str:
    return datetime.now(UTC).isoformat()
