"""Every dashboard query against the real embedded Prometheus, after real traffic; and
`shipyard report` drawing the key panels from it.

The stack (MLflow, two Tritons, gateway, Prometheus) and two trained versions come from the
serving e2e fixture. Version 2 is published as a 30% canary, a short load runs through the
gateway with labels fed back, and then every panel's PromQL must parse and return data.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shipyard.observability import dashboards, metrics, rules
from shipyard.observability.report import build_report, parse_since
from shipyard.routing import Canary, ModelRoute, RoutingTable, Stable
from tests.e2e.test_platform_cli import shipyard
from tests.e2e.test_serving import MODEL, Served, body, keyed, set_routing
from tests.e2e.test_serving import served as served  # the module-scoped stack fixture
from tests.load import SteadyLoad

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

# Panels over series whose exporter does not run yet: their PromQL must parse, data is not
# expected. Empty since the rollout loop (`shipyard rollout watch`, a component of the stack)
# exports the registry and pipeline series; a panel over a future exporter's series goes here
# until that exporter runs in the stack (the test warns when one of them has data).
AWAITING_EXPORTER: frozenset[str] = frozenset()
# Series that exist only while a rollout runs (`shipyard rollout start`); this test routes its
# canary by hand, so these panels parse but stay empty.
ONLY_DURING_A_ROLLOUT = frozenset({"Canary analysis: failed checks"})
NO_DATA_EXPECTED = AWAITING_EXPORTER | ONLY_DURING_A_ROLLOUT
LOAD_S = 40


def prometheus_query(url: str, expr: str) -> httpx.Response:
    return httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=30)


def results(url: str, expr: str) -> list[dict]:
    response = prometheus_query(url, expr)
    assert response.status_code == 200, f"{expr}\n{response.text}"
    return response.json()["data"]["result"]


@pytest.fixture(scope="module")
def loaded(served: Served) -> Iterator[Served]:
    """A canary in place and a short load with labels fed back, visible in Prometheus."""
    done = shipyard(served.env, "serve", "publish", MODEL, "--version", "2", timeout_s=300)
    assert done.returncode == 0, done.stderr[-2000:]
    canary = ModelRoute(stable=Stable(version="1"), canary=Canary(version="2", weight=30))
    set_routing(served, RoutingTable(models={MODEL: canary}))
    url = served.url
    load = SteadyLoad(served.predict_url(), body, served.known, headers=keyed(), threads=4)
    with load:
        time.sleep(LOAD_S)
    answered = [o for o in load.outcomes if o.status == 200]
    assert len(answered) >= 200, f"only {len(answered)} predictions answered"
    with httpx.Client(headers=keyed(), timeout=10) as client:
        for index, outcome in enumerate(answered[:600]):
            receipt = client.post(
                f"{url}/v1/feedback",
                json={"prediction_id": outcome.prediction["prediction_id"], "label": index % 2},
            )
            assert receipt.status_code == 202, receipt.text
    prometheus = served.settings.url("prometheus")
    # Recording rules run every 5 s; the cost rules are the last to see data.
    deadline = time.monotonic() + 90
    needed = [
        rules.cost_per_1k("5m"),
        f'{rules.error_ratio("5m")}{{route="canary"}}',
        metrics.ONLINE_AUC,
        # the rollout loop's registry and pipeline exporter
        metrics.MODEL_AGE,
        metrics.PIPELINE_LAST_SUCCESS,
        metrics.PIPELINE_LAST_DURATION,
    ]
    while any(not results(prometheus, expr) for expr in needed):
        assert time.monotonic() < deadline, f"no data within 90 s for {needed}"
        time.sleep(2)
    yield served


def _panels() -> list[tuple[dashboards.Dashboard, dashboards.Panel]]:
    return [(d, p) for d in dashboards.dashboards() for p in d.panels]


def test_awaiting_exporter_names_real_panels() -> None:
    titles = {p.title for _, p in _panels()}
    assert titles >= NO_DATA_EXPECTED


def test_every_panel_query_parses_and_returns_data(loaded: Served) -> None:
    prometheus = loaded.settings.url("prometheus")
    empty = []
    arrived: set[str] = set()
    for dashboard, panel in _panels():
        for query in panel.queries:
            expr = dashboards.substitute(query.expr)
            response = prometheus_query(prometheus, expr)
            assert response.status_code == 200, (
                f"{dashboard.title} / {panel.title}: Prometheus refused\n{expr}\n{response.text}"
            )
            found = response.json()["data"]["result"]
            if panel.title not in NO_DATA_EXPECTED and not found:
                empty.append(f"{dashboard.title} / {panel.title}: {expr}")
            if panel.title in AWAITING_EXPORTER and found:
                arrived.add(panel.title)
    assert not empty, "queries without data:\n" + "\n".join(empty)
    if arrived:
        warnings.warn(
            f"panels in AWAITING_EXPORTER now have data, take them out: {sorted(arrived)}",
            stacklevel=1,
        )


def test_model_variable_lists_the_served_model(loaded: Served) -> None:
    prometheus = loaded.settings.url("prometheus")
    response = httpx.get(
        f"{prometheus}/api/v1/label/model/values",
        params={"match[]": "shipyard_gateway_requests_total"},
        timeout=10,
    )
    assert MODEL in response.json()["data"]


def test_cost_per_prediction_is_measured(loaded: Served) -> None:
    prometheus = loaded.settings.url("prometheus")
    per_1k = {
        (s["metric"]["version"], s["metric"]["backend"]): float(s["value"][1])
        for s in results(prometheus, rules.cost_per_1k("5m"))
    }
    # Both versions are served by the primary pool, priced as GPU time.
    assert {("1", "triton-primary"), ("2", "triton-primary")} <= set(per_1k)
    assert all(0 < value < 1 for value in per_1k.values()), per_1k
    shares = results(prometheus, dashboards.substitute(_query("GPU vs CPU share of spend")))
    assert sum(float(s["value"][1]) for s in shares) == pytest.approx(1.0)


def _query(title: str) -> str:
    panel = next(p for _, p in _panels() if p.title == title)
    return panel.queries[0].expr


def test_report_draws_every_key_panel(loaded: Served, tmp_path: Path) -> None:
    prometheus = loaded.settings.url("prometheus")
    report = build_report(prometheus, parse_since("10m"), tmp_path / "report")
    assert len(report.panels) == len(dashboards.key_panels())
    for result in report.panels:
        assert result.image is not None
        assert result.image.read_bytes().startswith(b"\x89PNG")
    empty = {r.panel.title for r in report.empty}
    assert empty <= NO_DATA_EXPECTED, f"key panels without data: {empty - NO_DATA_EXPECTED}"
    page = report.html.read_text()
    assert page.count("data:image/png;base64,") == len(report.panels)
    assert "<script" not in page and 'src="http' not in page  # self-contained


def test_report_command(loaded: Served, tmp_path: Path) -> None:
    out = tmp_path / "cli-report"
    prometheus = loaded.settings.url("prometheus")
    done = shipyard(
        loaded.env, "report", "--since", "15m", "--out", str(out), "--prometheus", prometheus
    )
    assert done.returncode == 0, done.stderr
    assert (out / "index.html").is_file()
    assert len(list(out.glob("*.png"))) == len(dashboards.key_panels())
    assert f"[1/{len(dashboards.key_panels())}]" in done.stderr  # progress
    assert "Wrote" in done.stdout and str(out / "index.html") in done.stdout.replace("\n", "")

    down = shipyard(loaded.env, "report", "--prometheus", "http://127.0.0.1:9", "--out", str(out))
    assert down.returncode == 1
    error = [line for line in down.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "not reachable" in error[0] and "shipyard up" in error[0]
    assert "Traceback" not in down.stderr
