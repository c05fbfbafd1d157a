"""The routing file and the sticky stable/canary split."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.router import BUCKETS, Router, bucket, choose
from shipyard import routing
from shipyard.errors import ConfigError
from shipyard.routing import Canary, ModelRoute, RoutingTable, Stable


def route(stable: str = "1", canary: str | None = "2", weight: float = 20.0) -> ModelRoute:
    return ModelRoute(
        stable=Stable(version=stable),
        canary=Canary(version=canary, weight=weight) if canary else None,
    )


def test_split_is_near_the_weight_and_sticky() -> None:
    r = route(weight=20)
    picks = [choose(r, "fraud-scoring", customer).route for customer in range(20_000)]
    share = picks.count("canary") / len(picks)
    # Binomial sd at n=20000, p=0.2 is 0.0028: five sd is a safe, still meaningful band.
    assert abs(share - 0.20) < 0.014
    again = [choose(r, "fraud-scoring", customer).route for customer in range(20_000)]
    assert again == picks


def test_raising_the_weight_only_moves_customers_to_the_canary() -> None:
    low, high = route(weight=10), route(weight=25)
    for customer in range(5_000):
        if choose(low, "m", customer).route == "canary":
            assert choose(high, "m", customer).route == "canary"


def test_buckets_cover_the_range_and_depend_on_the_model() -> None:
    values = {bucket("a", i) for i in range(50_000)}
    assert min(values) >= 0 and max(values) < BUCKETS and len(values) > BUCKETS * 0.99
    assert [bucket("a", i) for i in range(100)] != [bucket("b", i) for i in range(100)]


def test_zero_weight_and_no_canary_go_stable() -> None:
    assert {choose(route(weight=0), "m", i).version for i in range(1000)} == {"1"}
    assert {choose(route(canary=None), "m", i).route for i in range(1000)} == {"stable"}


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("models: {Bad: {stable: {version: '1'}}}", "models.Bad"),
        ("models: {m: {stable: {version: '0'}}}", "models.m.stable.version"),
        ("models: {m: {stable: {version: '1'}, canary: {version: '1'}}}", "both version 1"),
        ("models: {m: {stable: {version: '1'}, canary: {version: '2', weight: 101}}}", "weight"),
        ("models: {m: {stable: {version: '1'}, extra: 1}}", "models.m.extra"),
        ("models: [", "not valid YAML"),
        (
            "models: {m: {stable: {version: '1'}, canary: {version: '2', "
            "analysis: {steps: [50, 10]}}}}",
            "must increase",
        ),
    ],
)
def test_bad_routing_files_are_one_line_naming_the_field(text: str, names: str) -> None:
    with pytest.raises(ConfigError) as caught:
        routing.parse(text, "routing.yaml")
    message = str(caught.value)
    assert names in message and "\n" not in message


def test_save_is_atomic_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "serving" / "routing.yaml"
    table = RoutingTable(models={"fraud-scoring": route()})
    routing.save(path, table)
    assert routing.load(path) == table
    assert [p.name for p in path.parent.iterdir()] == ["routing.yaml"]  # no temporary left
    assert routing.load(tmp_path / "absent.yaml") == RoutingTable()


def test_updated_route_keeps_what_is_not_changed() -> None:
    current = route(weight=20)
    assert routing.updated_route("m", current, weight=50).canary.weight == 50
    moved = routing.updated_route("m", current, canary="3")
    assert (moved.canary.version, moved.canary.weight) == ("3", 0.0)
    assert routing.updated_route("m", current, clear_canary=True).canary is None
    with pytest.raises(ConfigError, match="no route yet"):
        routing.updated_route("m", None, weight=5)
    with pytest.raises(ConfigError, match="both version 2"):
        routing.updated_route("m", current, stable="2")


def test_an_injected_fault_stays_with_its_canary_until_cleared() -> None:
    fault = routing.Fault(error_ratio=0.1)
    faulty = routing.updated_route("m", route(weight=20), fault=fault)
    assert faulty.canary.fault == fault and faulty.canary.weight == 20
    assert routing.updated_route("m", faulty, weight=50).canary.fault == fault
    assert routing.updated_route("m", faulty, clear_fault=True).canary.fault is None
    assert routing.updated_route("m", faulty, canary="3").canary.fault is None  # a new canary
    with pytest.raises(ConfigError, match="no canary to inject a fault into"):
        routing.updated_route("m", ModelRoute(stable=Stable(version="1")), fault=fault)
    text = (
        "models:\n  m:\n    stable: {version: '1'}\n"
        "    canary: {version: '2', fault: {error_ratio: 2}}\n"
    )
    with pytest.raises(ConfigError, match="canary.fault.error_ratio"):
        routing.parse(text)


def test_router_refuses_a_bad_file_and_keeps_serving(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    seen: list[str] = []

    def check(table: RoutingTable) -> None:
        for model in table.models.values():
            if model.stable.version == "9":
                raise ConfigError("v9 is not published")

    router = Router(path, check, lambda table, outcome: seen.append(outcome))
    routing.save(path, RoutingTable(models={"m": route()}))
    assert router.reload() and router.table.models["m"].stable.version == "1"
    path.write_text("models: {m: {stable: {version: '9'}}}\n")
    assert not router.reload()
    assert router.table.models["m"].stable.version == "1" and "v9" in (router.last_error or "")
    path.write_text("models: {m: {stable: {version: 'x'}}}\n")
    assert not router.reload()
    assert not router.reload()  # unchanged file: not parsed again
    assert seen == ["applied", "rejected", "rejected"]
