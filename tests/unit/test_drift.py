"""Reference distributions and PSI."""

from __future__ import annotations

import math

import numpy as np

from shipyard.observability.drift import Reference, psi, reference_from


def test_same_distribution_has_near_zero_psi_and_a_shift_has_a_large_one() -> None:
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(size=50_000), rng.integers(0, 4, 50_000)])
    scores = rng.beta(1, 20, 50_000)
    reference = reference_from(x, ["amount", "count"], scores)
    same = rng.normal(size=20_000)
    shifted = rng.normal(loc=1.0, size=20_000)
    binned = reference.features["amount"]
    assert psi(binned.expected, binned.counts(same)) < 0.01
    assert psi(binned.expected, binned.counts(shifted)) > 0.2
    # A feature with four values gets at most four bins, each a real interval.
    assert len(reference.features["count"].expected) <= 4
    assert psi(reference.score.expected, reference.score.counts(rng.beta(1, 20, 20_000))) < 0.01
    assert psi(reference.score.expected, reference.score.counts(rng.beta(2, 5, 20_000))) > 0.2


def test_no_traffic_is_unknown_not_stable() -> None:
    assert math.isnan(psi(np.array([0.5, 0.5]), np.array([0, 0])))


def test_reference_round_trips_through_json() -> None:
    rng = np.random.default_rng(1)
    reference = reference_from(rng.normal(size=(1000, 2)), ["a", "b"], rng.random(1000))
    again = Reference.from_json(reference.to_json())
    assert again.rows == 1000 and list(again.features) == ["a", "b"]
    for name in ("a", "b"):
        assert np.allclose(again.features[name].cuts, reference.features[name].cuts)
        assert np.isclose(again.features[name].expected.sum(), 1.0)
    assert len(again.score.expected) == 20
