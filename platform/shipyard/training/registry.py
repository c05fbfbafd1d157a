"""Registering models in MLflow: owned, traced to their data, never half-registered, never
duplicated.

* Every version carries its **owner** and **team** (required: a model nobody owns is refused),
  and lineage tags: dataset digest, feature service, pipeline run id, code version.
* A **fingerprint** of what determines the model (data digest, feature service, hyper-parameters,
  code version) is a tag. Registering the same inputs again returns the existing version.
* A version is marked complete (``shipyard.complete=true``) only after every tag and alias is
  written; a version left incomplete by a crash is deleted and registered again on re-run.
* Aliases (``challenger``, ``champion``, named in ``shipyard.training.tracking``) replace
  stages.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

from shipyard.errors import ShipyardError
from shipyard.training.tracking import MlflowRest, tags_of

COMPLETE = "shipyard.complete"
FINGERPRINT = "shipyard.fingerprint"


class OwnerRequiredError(ShipyardError):
    """Registration without an owner or team. Exit code 2: it is a missing input."""

    exit_code = 2


# How long a registered version may serve before its owner must review it (maturity report).
REVIEW_PERIOD = timedelta(days=180)


@dataclass(frozen=True)
class Ownership:
    owner: str
    team: str
    on_call: str = ""
    # ISO date by which the owner reviews the version; default: REVIEW_PERIOD from today.
    review_by: str = field(default_factory=lambda: (date.today() + REVIEW_PERIOD).isoformat())

    def __post_init__(self) -> None:
        if not self.owner.strip() or not self.team.strip():
            raise OwnerRequiredError(
                "a model needs an owner and a team: pass --owner and --team "
                "(every registered model has a named owner)"
            )

    def tags(self) -> dict[str, str]:
        tags = {"owner": self.owner, "team": self.team, "review_by": self.review_by}
        if self.on_call:
            tags["on_call"] = self.on_call
        return tags


def fingerprint(dataset_digest: str, feature_service: str, params: dict, code_version: str) -> str:
    """What determines a model: equal fingerprints mean an equal model."""
    payload = json.dumps(
        {
            "dataset": dataset_digest,
            "feature_service": feature_service,
            "params": params,
            "code": code_version,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def find_version(rest: MlflowRest, name: str, print_: str) -> dict | None:
    """The complete version with fingerprint ``print_``; deletes incomplete ones it finds."""
    complete = None
    # Listed in full before deleting anything: a deletion must not shift the pages.
    for version in list(
        rest.model_versions(f"name = '{name}' and tags.`{FINGERPRINT}` = '{print_}'")
    ):
        if tags_of(version).get(COMPLETE) == "true":
            complete = complete or version
        else:  # left behind by a crash between create and complete: start over
            rest.delete_model_version(name, version["version"])
    return complete


def register(
    rest: MlflowRest,
    name: str,
    model_uri: str,
    run_id: str,
    ownership: Ownership,
    lineage: dict[str, str],
    print_: str,
    description: str = "",
) -> tuple[dict, bool]:
    """Register ``model_uri`` as a version of ``name``, or return the existing equal version.

    Returns:
        (version, created): the version as the REST API returns it (``version``, ``tags`` …);
        ``created`` is False when the same inputs were registered before.
    """
    existing = find_version(rest, name, print_)
    if existing is not None:
        return existing, False
    if rest.registered_model(name) is None:
        rest.create_registered_model(name, ownership.tags(), description)
    tags = {**ownership.tags(), **lineage, FINGERPRINT: print_}
    # MLflow 3 logged models ("models:/<model_id>") are registered by id, not by a run path.
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    version = rest.create_model_version(name, model_uri, run_id, tags, description, model_id)
    _wait_ready(rest, name, version["version"])
    rest.set_model_version_tag(name, version["version"], COMPLETE, "true")
    return rest.get_model_version(name, version["version"]), True


def _wait_ready(rest: MlflowRest, name: str, version: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while rest.get_model_version(name, version).get("status") == "PENDING_REGISTRATION":
        if time.monotonic() > deadline:
            raise ShipyardError(f"model {name} version {version} did not become ready in MLflow")
        time.sleep(0.1)
