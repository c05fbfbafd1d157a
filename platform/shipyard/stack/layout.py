"""Where everything lives inside the state directory. Derived from the state dir alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shipyard.errors import ConfigError


@dataclass(frozen=True)
class StateLayout:
    """Paths inside one state directory; ``ensure()`` creates the folders."""

    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def supervisor_pid(self) -> Path:
        return self.run / "supervisor.pid"

    @property
    def supervisor_lock(self) -> Path:
        return self.run / "supervisor.lock"

    @property
    def stack_state(self) -> Path:
        return self.run / "stack.json"

    @property
    def mlflow(self) -> Path:
        return self.root / "mlflow"

    @property
    def triton(self) -> Path:
        return self.root / "triton"

    @property
    def triton_models(self) -> Path:
        return self.triton / "models"

    @property
    def prometheus(self) -> Path:
        return self.root / "prometheus"

    @property
    def redis(self) -> Path:
        return self.root / "redis"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def raw_data(self) -> Path:
        """Raw events as they arrive, PII included (the generator writes here)."""
        return self.data / "raw"

    @property
    def clean_data(self) -> Path:
        """Validated, deduplicated, PII-redacted events: the only input of features."""
        return self.data / "clean"

    @property
    def feature_tables(self) -> Path:
        return self.data / "features"

    @property
    def training_sets(self) -> Path:
        return self.data / "training"

    @property
    def feast(self) -> Path:
        """Feast registry and SQLite online store."""
        return self.root / "feast"

    @property
    def serving(self) -> Path:
        return self.root / "serving"

    @property
    def routing_file(self) -> Path:
        """Desired serving state (see shipyard.routing); the gateway reloads it on change."""
        return self.serving / "routing.yaml"

    @property
    def audit(self) -> Path:
        """The gateway's append-only audit log (one record per prediction)."""
        return self.root / "audit"

    @property
    def audit_index(self) -> Path:
        """Index of the audit log by prediction and request id (derived: safe to delete)."""
        return self.root / "audit-index" / "index.sqlite"

    @property
    def feedback(self) -> Path:
        """True labels sent to the gateway (append-only, like the audit log)."""
        return self.root / "feedback"

    @property
    def rollout(self) -> Path:
        """The rollout loop's state: rollouts in progress and the deployment history."""
        return self.root / "rollout"

    @property
    def deployment_history(self) -> Path:
        """Append-only record of every routing change (which version served at time T)."""
        return self.rollout / "history.jsonl"

    @property
    def rollouts(self) -> Path:
        """Rollouts in progress and their outcome, per model (rewritten atomically)."""
        return self.rollout / "rollouts.json"

    @property
    def erasures(self) -> Path:
        """Right-to-be-forgotten journals, one per subject (named by a keyed hash, not the id)."""
        return self.root / "erasures"

    @property
    def erasure_trail(self) -> Path:
        """Append-only record of every erasure: when, by whom, what was removed where."""
        return self.erasures / "trail.jsonl"

    @property
    def pipeline_root(self) -> Path:
        """The local pipeline runner's artifacts (data sets of past runs included)."""
        return self.root / "pipelines"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    def log_file(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def ensure(self) -> None:
        try:
            for folder in (self.logs, self.run, self.mlflow, self.triton_models, self.prometheus):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the state directory {self.root} ({exc.strerror}): "
                "choose another with SHIPYARD_STATE_DIR"
            ) from None
