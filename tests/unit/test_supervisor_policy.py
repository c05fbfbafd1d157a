from __future__ import annotations

from shipyard.stack.supervisor import BACKOFF_MAX_S, backoff_delay


def test_backoff_doubles_up_to_a_cap() -> None:
    assert [backoff_delay(n) for n in range(0, 4)] == [0.0, 1.0, 2.0, 4.0]
    assert backoff_delay(50) == BACKOFF_MAX_S
