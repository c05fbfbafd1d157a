"""Registration against a real MLflow server: owned, idempotent, and never half-registered."""

from __future__ import annotations

import lightgbm as lgb
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from shipyard.settings import Settings
from shipyard.stack.state import StackState
from shipyard.training.registry import (
    COMPLETE,
    FINGERPRINT,
    OwnerRequiredError,
    Ownership,
    find_version,
    register,
)
from shipyard.training.tracking import MlflowRest, tags_of


@pytest.fixture(scope="module")
def logged(stack: tuple[Settings, StackState]) -> tuple[MlflowRest, str, str]:
    settings, _ = stack
    mlflow.set_tracking_uri(settings.url("mlflow"))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    booster = lgb.train(
        {"objective": "binary", "verbose": -1}, lgb.Dataset(x, label=x[:, 0] > 0), 5
    )
    mlflow.set_experiment("registry-test")
    with mlflow.start_run() as run:
        info = mlflow.lightgbm.log_model(booster, name="model", pip_requirements=["lightgbm"])
    return MlflowRest(settings.url("mlflow")), run.info.run_id, info.model_uri


def test_same_inputs_give_the_same_version(logged: tuple[MlflowRest, str, str]) -> None:
    rest, run_id, uri = logged
    owner = Ownership("alice", "fraud-risk")
    first, created = register(rest, "reg-idem", uri, run_id, owner, {"k": "v"}, "print-1")
    again, created_again = register(rest, "reg-idem", uri, run_id, owner, {"k": "v"}, "print-1")
    assert created and not created_again and again["version"] == first["version"]
    other, created_other = register(rest, "reg-idem", uri, run_id, owner, {"k": "v"}, "print-2")
    assert created_other and other["version"] != first["version"]
    tags = tags_of(first)
    assert tags["owner"] == "alice" and tags["k"] == "v" and tags[COMPLETE] == "true"
    # What MLflow's own client sees: the registered model, owned, and the version's model.
    client = MlflowClient(rest.root)
    assert client.get_registered_model("reg-idem").tags["owner"] == "alice"
    seen = client.get_model_version("reg-idem", first["version"])
    assert seen.run_id == run_id and seen.tags[FINGERPRINT] == "print-1"
    loaded = mlflow.lightgbm.load_model(f"models:/reg-idem/{first['version']}")
    assert loaded.num_trees() == 5


def test_a_crash_before_completion_is_redone(logged: tuple[MlflowRest, str, str]) -> None:
    rest, run_id, uri = logged
    client = MlflowClient(rest.root)
    client.create_registered_model("reg-crash")
    model_id = uri.removeprefix("models:/")
    # What a crash between create and complete leaves: a version without the completion mark.
    half = client.create_model_version(
        "reg-crash", uri, run_id=run_id, tags={FINGERPRINT: "p"}, model_id=model_id
    )
    assert find_version(rest, "reg-crash", "p") is None  # incomplete ones do not count...
    versions = client.search_model_versions("name = 'reg-crash'")
    assert [v.version for v in versions] == []  # ...and are deleted
    done, created = register(rest, "reg-crash", uri, run_id, Ownership("bob", "risk"), {}, "p")
    assert created and done["version"] != half.version and tags_of(done)[COMPLETE] == "true"


def test_no_owner_no_registration() -> None:
    with pytest.raises(OwnerRequiredError):
        Ownership("", "fraud-risk")


def test_rest_client_sets_tags_and_aliases(logged: tuple[MlflowRest, str, str]) -> None:
    rest, run_id, uri = logged
    version, _ = register(rest, "reg-rest", uri, run_id, Ownership("a", "b"), {}, "rest")
    assert rest.alias_version("reg-rest", "champion") is None
    assert rest.alias_version("no-such-model", "champion") is None
    assert rest.registered_model("no-such-model") is None
    rest.set_alias("reg-rest", "champion", version["version"])
    assert rest.alias_version("reg-rest", "champion") == version["version"]
    rest.set_run_tags(run_id, {"gate": "passed"})
    assert MlflowClient(rest.root).get_run(run_id).data.tags["gate"] == "passed"
