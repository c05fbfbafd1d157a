"""Opening the Feast feature store from the settings, and registering the repository.

``feature_repo/feature_store.yaml`` (or ``feature_store.redis.yaml`` in the redis profile) is the
configuration; its ``${VAR}`` placeholders are filled from the settings (paths, Redis address)
and from the environment (secrets). A placeholder nobody sets is a clear error, never a literal
``${VAR}`` handed to Feast.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from feast import FeatureStore
from feast.repo_config import RepoConfig
from pydantic import ValidationError

from shipyard.errors import ConfigError, ShipyardError
from shipyard.settings import Settings
from shipyard.stack.layout import StateLayout

# The repository sits next to platform/ in a checkout; a packaged install can point elsewhere.
FEATURE_REPO_ENV = "SHIPYARD_FEATURE_REPO"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def feature_repo_path() -> Path:
    named = os.environ.get(FEATURE_REPO_ENV)
    path = Path(named) if named else Path(__file__).resolve().parents[3] / "feature_repo"
    if not (path / "feature_store.yaml").is_file():
        raise ConfigError(
            f"no Feast repository at {path}: set {FEATURE_REPO_ENV} to the feature_repo folder"
        )
    return path


def config_file(settings: Settings, repo: Path) -> Path:
    return repo / (
        "feature_store.redis.yaml" if settings.profile == "redis" else "feature_store.yaml"
    )


def placeholders(settings: Settings) -> dict[str, str]:
    """Values of the ``${VAR}`` placeholders derived from the settings."""
    password = settings.redis_password.get_secret_value() if settings.redis_password else ""
    return {
        "SHIPYARD_FEAST_DIR": str(StateLayout(settings.state_dir).feast),
        "SHIPYARD_REDIS_ADDRESS": f"{settings.redis_host}:{settings.ports.redis}",
        "SHIPYARD_REDIS_PASSWORD": password,
    }


def repo_config(settings: Settings) -> RepoConfig:
    """The validated Feast configuration for ``settings``."""
    repo = feature_repo_path()
    path = config_file(settings, repo)
    values = {**os.environ, **placeholders(settings)}

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ConfigError(f"{path} needs ${{{name}}}: set the environment variable {name}")
        return values[name]

    raw = yaml.safe_load(_PLACEHOLDER.sub(fill, path.read_text()))
    try:
        config = RepoConfig(**raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None
    config.repo_path = repo
    return config


def open_store(settings: Settings) -> FeatureStore:
    """The feature store of ``settings`` (registry and online store in the state directory)."""
    StateLayout(settings.state_dir).feast.mkdir(parents=True, exist_ok=True)
    _quiet_feast()
    return FeatureStore(repo_path=str(feature_repo_path()), config=repo_config(settings))


@dataclass(frozen=True)
class ApplySummary:
    """What an apply changed: ``(kind, name)`` per transition; ``unchanged`` is a count."""

    created: list[tuple[str, str]]
    updated: list[tuple[str, str]]
    deleted: list[tuple[str, str]]
    unchanged: int

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


def apply(settings: Settings) -> ApplySummary:
    """Register every definition of the repository and delete the registered ones it dropped.

    Idempotent: applying an unchanged repository changes nothing and says so.
    """
    from feast.diff.property_diff import TransitionType
    from feast.repo_operations import extract_objects_for_apply_delete, parse_repo

    store = open_store(settings)
    repo = feature_repo_path()
    # Feast imports the definitions as modules named by their path relative to the working
    # directory, so parse from inside the repository with it on the import path. The modules
    # resolve the settings themselves (table paths): give them these settings, and import them
    # afresh so that a second apply in one process never sees the first one's paths.
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    for module in repo.glob("*.py"):
        sys.modules.pop(module.stem, None)
    try:
        with (
            _environment(settings.to_env()),
            contextlib.chdir(repo),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            contents = parse_repo(repo)
    except ShipyardError:
        raise
    except Exception as exc:
        raise ShipyardError(f"the Feast definitions in {repo} do not load: {exc}") from exc
    registry_diff, _, _ = store.plan(contents)
    transitions: dict[TransitionType, list[tuple[str, str]]] = {}
    for diff in registry_diff.feast_object_diffs:
        if diff.name.startswith("__"):  # Feast's internal dummy entity
            continue
        kind = diff.feast_object_type.value
        transitions.setdefault(diff.transition_type, []).append((kind, diff.name))
    to_apply, to_delete, _, _ = extract_objects_for_apply_delete(
        store.project, store.registry, contents
    )
    with contextlib.redirect_stdout(io.StringIO()):
        store.apply(to_apply, objects_to_delete=to_delete, partial=False)
    return ApplySummary(
        created=transitions.get(TransitionType.CREATE, []),
        updated=transitions.get(TransitionType.UPDATE, []),
        deleted=transitions.get(TransitionType.DELETE, []),
        unchanged=len(transitions.get(TransitionType.UNCHANGED, [])),
    )


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _quiet_feast() -> None:
    # Feast warns on every call about experimental features we use on purpose (on-demand
    # views); they would drown our output.
    warnings.filterwarnings("ignore", message="On demand feature view is an experimental")
    for name in ("feast", "feast.infra", "feast.repo_config"):
        logging.getLogger(name).setLevel(logging.ERROR)
