"""Grafana dashboards: generated files match the code, say they are generated, take the
datasource from a variable, and every panel queries only known series."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shipyard.observability import dashboards, metrics, report, rules
from shipyard.observability.prometheus import PrometheusApi, PrometheusError
from tests.unit.test_rules import HISTOGRAM_SUFFIXES, metric_names

ROOT = Path(__file__).resolve().parents[2]


def test_dashboard_files_match_the_code(tmp_path: Path) -> None:
    written = dashboards.write(tmp_path)
    assert [p.name for p in written] == [d.filename for d in dashboards.dashboards()]
    for destination in dashboards.destinations():
        for path in written:
            committed = destination / path.name
            assert committed.is_file() and committed.read_text() == path.read_text(), (
                f"{committed} is stale: run `{dashboards.COMMAND}` (or `make dashboards`)"
            )
        assert dashboards.differences(destination) == []
    assert dashboards.CHART_DASHBOARDS in dashboards.destinations()


def test_check_reports_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert dashboards.main(["--check"]) == 0
    dashboards.write(tmp_path)
    (tmp_path / "shipyard-cost.json").write_text("{}\n")
    (tmp_path / "shipyard-old.json").write_text("{}\n")
    (tmp_path / "shipyard-model.json").unlink()
    monkeypatch.setattr(dashboards, "destinations", lambda: [tmp_path])
    assert dashboards.differences(tmp_path) == [
        f"{tmp_path}/shipyard-model.json: missing",
        f"{tmp_path}/shipyard-old.json: not generated any more",
        f"{tmp_path}/shipyard-cost.json: differs",
    ]
    assert dashboards.main(["--check"]) == 1
    dashboards.write(tmp_path)
    assert dashboards.differences(tmp_path) == []


def test_four_dashboards_for_the_four_concerns() -> None:
    titles = [d.title for d in dashboards.dashboards()]
    assert titles == [
        "Shipyard / Platform overview",
        "Shipyard / Model",
        "Shipyard / Pipelines and registry",
        "Shipyard / Cost",
    ]
    uids = [d.uid for d in dashboards.dashboards()]
    assert len(set(uids)) == len(uids)


def _documents() -> list[dict]:
    return [json.loads(text) for text in dashboards.render().values()]


def test_every_file_says_it_is_generated_and_how_to_regenerate() -> None:
    for document in _documents():
        for text in (document["__generated"], document["description"]):
            assert "do not edit" in text and dashboards.COMMAND in text
        assert "generated" in document["tags"]


def test_datasource_is_a_template_variable_never_a_fixed_uid() -> None:
    for document in _documents():
        variables = {v["name"]: v for v in document["templating"]["list"]}
        assert variables[dashboards.DATASOURCE_VAR]["type"] == "datasource"
        assert variables[dashboards.DATASOURCE_VAR]["query"] == "prometheus"
        panels = [p for p in document["panels"] if p["type"] != "row"]
        assert panels
        for panel in panels:
            refs = [panel["datasource"], *(t["datasource"] for t in panel["targets"])]
            for ref in refs:
                assert ref == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


def test_every_panel_has_a_query_a_title_and_a_description() -> None:
    for document in _documents():
        for panel in document["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["title"] and panel["description"], panel
            assert panel["targets"], f"{panel['title']} has no query"
            for target in panel["targets"]:
                assert target["expr"].strip(), panel["title"]
    for spec in dashboards.dashboards():
        for panel in spec.panels:
            assert panel.queries, panel.title


def test_panels_fit_the_grid() -> None:
    for document in _documents():
        for panel in document["panels"]:
            position = panel["gridPos"]
            assert position["x"] >= 0 and position["x"] + position["w"] <= 24, panel["title"]


def test_every_metric_is_a_constant_of_the_metrics_module_or_a_recorded_series() -> None:
    exported = {
        value
        for name, value in vars(metrics).items()
        if name.isupper() and isinstance(value, str) and value.startswith(f"{metrics.NAMESPACE}_")
    }
    known = exported | {f"{n}{s}" for n in exported for s in HISTOGRAM_SUFFIXES}
    known |= set(metrics.TRITON_METRICS)
    recorded = {
        rule.record
        for group in rules.groups()
        for rule in group.rules
        if isinstance(rule, rules.Recording)
    }
    used_recorded = set()
    for spec in dashboards.dashboards():
        for panel in spec.panels:
            for query in panel.queries:
                names = metric_names(query.expr)
                unknown = names - known - recorded
                assert not unknown, f"{spec.name}/{panel.title}: {unknown} are not known names"
                used_recorded |= names & recorded
    # The dashboards lean on the recording rules rather than repeating their maths.
    assert len(used_recorded) >= 15


def test_model_variable_is_offered_and_substituted_outside_grafana() -> None:
    for document in _documents():
        variables = {v["name"]: v for v in document["templating"]["list"]}
        assert variables[dashboards.MODEL_VAR]["allValue"] == dashboards.ALL_MODELS
    for spec in dashboards.dashboards():
        exprs = [q.expr for p in spec.panels for q in p.queries]
        assert any("$model" in e for e in exprs), spec.name
        assert not any("$model" in dashboards.substitute(e) for e in exprs)
    assert dashboards.substitute('x{model=~"$model"}', "fraud-scoring") == (
        'x{model=~"fraud-scoring"}'
    )


def test_report_panels_cover_every_dashboard() -> None:
    covered = {d.name for d, _ in dashboards.key_panels()}
    assert covered == {d.name for d in dashboards.dashboards()}
    assert len(dashboards.key_panels()) >= 12


# shipyard report: the parts that need no Prometheus


def test_since_accepts_durations_and_refuses_the_rest() -> None:
    assert report.parse_since("15m") == timedelta(minutes=15)
    assert report.parse_since("2d") == timedelta(days=2)
    for bad in ("0h", "1w", "1.5h", "", "h"):
        with pytest.raises(ValueError, match="not a duration"):
            report.parse_since(bad)


def test_legends_are_filled_from_labels() -> None:
    labels = {"__name__": "x", "model": "fraud-scoring", "version": "2"}
    assert report.legend("{{model}} v{{ version }}", labels) == "fraud-scoring v2"
    assert report.legend("", labels) == "model=fraud-scoring, version=2"


def test_unreachable_prometheus_is_one_clear_error() -> None:
    prometheus = PrometheusApi("http://127.0.0.1:9", timeout_s=2)
    with pytest.raises(PrometheusError, match=r"not reachable.*shipyard up.*--prometheus"):
        prometheus.ready()


def test_a_panel_without_data_still_draws(tmp_path: Path) -> None:
    dashboard, panel = dashboards.key_panels()[0]
    now = datetime.now(UTC)
    empty = report.PanelResult(dashboard, panel, [])
    empty.image = image = report.draw(empty, tmp_path / "empty.png")
    assert image.read_bytes().startswith(b"\x89PNG") and not empty.has_data
    nan = report.Series({}, [now - timedelta(minutes=1), now], [float("nan"), float("nan")])
    assert not report.PanelResult(dashboard, panel, [("a", nan)]).has_data
    page = report.write_html(tmp_path / "index.html", [empty], now - timedelta(hours=1), now)
    text = page.read_text()
    assert "No data in this range." in text and text.count("data:image/png;base64,") == 1
