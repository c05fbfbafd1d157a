"""Pictures without Grafana: the dashboards' key panels drawn from Prometheus' API.

The embedded stack has no Grafana server. :func:`build_report` asks Prometheus'
``/api/v1/query_range`` for every query of the panels marked ``key`` in
:mod:`shipyard.observability.panels` (the same queries, so the report and the dashboards
never disagree), draws each panel as a PNG with matplotlib and writes one self-contained HTML
page (images embedded) beside them.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shipyard.observability import panels as d
from shipyard.observability.prometheus import PrometheusApi, PrometheusError, Series

UNITS = {
    "percentunit": "share",
    "percent": "%",
    "s": "seconds",
    "reqps": "per second",
    "currencyUSD": "USD",
    "short": "",
}
DURATION = re.compile(r"^(\d+)([smhd])$")
# Points per series: enough for a smooth line, few enough for a fast query.
POINTS = 240
# Lines per picture: past this a plot is a tangle; the highest ones are what matter.
MAX_LINES = 12


@dataclass
class PanelResult:
    dashboard: d.Dashboard
    panel: d.Panel
    series: list[tuple[str, Series]]  # (legend, series)
    image: Path | None = None

    @property
    def has_data(self) -> bool:
        return any(any(not math.isnan(v) for v in s.values) for _, s in self.series)


@dataclass
class Report:
    html: Path
    panels: list[PanelResult] = field(default_factory=list)

    @property
    def empty(self) -> list[PanelResult]:
        return [p for p in self.panels if not p.has_data]


def parse_since(text: str) -> timedelta:
    """``30m``, ``6h``, ``2d`` -> a duration; a ValueError names the accepted forms."""
    match = DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration like 15m, 6h or 2d")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


def legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's ``{{label}}`` legend filled from a series' labels."""
    if not template or template == "__auto":
        shown = {k: v for k, v in labels.items() if k != "__name__"}
        return ", ".join(f"{k}={v}" for k, v in sorted(shown.items())) or "value"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)


def fetch(
    prometheus: PrometheusApi,
    dashboard: d.Dashboard,
    panel: d.Panel,
    start: datetime,
    end: datetime,
    models: str = d.ALL_MODELS,
) -> PanelResult:
    step = max(5.0, (end - start).total_seconds() / POINTS)
    series = []
    for query in panel.queries:
        expr = d.substitute(query.expr, models)
        try:
            found = prometheus.query_range(expr, start, end, step)
        except PrometheusError as exc:
            raise PrometheusError(f"panel {panel.title!r}: {exc}") from None
        series += [(legend(query.legend, s.labels), s) for s in found]
    return PanelResult(dashboard, panel, series)


def _last(series: Series) -> float:
    values = [v for v in series.values if not math.isnan(v)]
    return values[-1] if values else -math.inf


def draw(result: PanelResult, path: Path) -> Path:
    """One panel as a PNG: a line per series (the MAX_LINES highest at the end of the range
    when there are more), the first threshold as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    panel = result.panel
    shown = sorted(result.series, key=lambda item: _last(item[1]), reverse=True)[:MAX_LINES]
    title = panel.title
    if len(result.series) > MAX_LINES:
        title += f" (top {MAX_LINES} of {len(result.series)})"
    figure, axes = plt.subplots(figsize=(8, 3.4), dpi=100)
    try:
        for name, series in shown:
            axes.plot(series.times, series.values, label=name, linewidth=1.4)
        if not result.has_data:
            axes.text(0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes)
        for threshold in panel.thresholds[:1]:
            axes.axhline(threshold, color="tab:red", linestyle="--", linewidth=1, label="threshold")
        if panel.unit == "percentunit":
            axes.yaxis.set_major_formatter(PercentFormatter(1.0))
        if panel.min is not None or panel.max is not None:
            axes.set_ylim(panel.min, panel.max)
        axes.set_title(title, fontsize=11, loc="left")
        axes.set_ylabel(UNITS.get(panel.unit, panel.unit), fontsize=9)
        locator = mdates.AutoDateLocator()
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        axes.grid(alpha=0.3)
        axes.tick_params(labelsize=8)
        if shown or panel.thresholds:
            axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
        # "tight" grows the image to hold the legend beside the plot.
        figure.savefig(path, bbox_inches="tight")
    finally:
        plt.close(figure)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def write_html(path: Path, results: list[PanelResult], start: datetime, end: datetime) -> Path:
    """One page, images embedded as data URIs, so it can be mailed or attached to a ticket."""
    sections = []
    for dashboard in d.dashboards():
        cards = []
        for result in (r for r in results if r.dashboard.uid == dashboard.uid):
            assert result.image is not None
            image = base64.b64encode(result.image.read_bytes()).decode()
            queries = "".join(
                f"<pre>{html.escape(d.substitute(q.expr))}</pre>" for q in result.panel.queries
            )
            note = "" if result.has_data else '<p class="empty">No data in this range.</p>'
            cards.append(
                f'<figure id="{_slug(result.panel.title)}">'
                f'<img alt="{html.escape(result.panel.title)}" '
                f'src="data:image/png;base64,{image}">'
                f"<figcaption>{html.escape(result.panel.description)}{note}"
                f"<details><summary>PromQL</summary>{queries}</details></figcaption></figure>"
            )
        if cards:
            sections.append(
                f"<section><h2>{html.escape(dashboard.title)}</h2>"
                f"<p>{html.escape(dashboard.description)}</p>{''.join(cards)}</section>"
            )
    when = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shipyard report {when}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1100px; }}
figure {{ margin: 1rem 0 2rem; }} img {{ max-width: 100%; }}
figcaption {{ font-size: 0.9rem; color: #555; }}
pre {{ font-size: 0.75rem; white-space: pre-wrap; }}
.empty {{ color: #a33; }}
</style></head><body>
<h1>Shipyard report</h1>
<p>{when}. The key panels of Shipyard's Grafana dashboards, drawn from Prometheus by
<code>shipyard report</code>.</p>
{"".join(sections)}
</body></html>
"""
    path.write_text(page)
    return path


def build_report(
    prometheus_url: str,
    since: timedelta,
    out: Path,
    progress: Callable[[str], None] = lambda _: None,
    models: str = d.ALL_MODELS,
    end: datetime | None = None,
) -> Report:
    """Query, draw and write every key panel into ``out`` (PNG files and ``index.html``).

    Raises:
        PrometheusError: Prometheus is unreachable or refused a query.
    """
    end = end or datetime.now(UTC)
    start = end - since
    prometheus = PrometheusApi(prometheus_url, timeout_s=30)
    try:
        prometheus.ready()
        out.mkdir(parents=True, exist_ok=True)
        panels = d.key_panels()
        results = []
        for index, (dashboard, panel) in enumerate(panels, 1):
            progress(f"[{index}/{len(panels)}] {dashboard.title}: {panel.title}")
            result = fetch(prometheus, dashboard, panel, start, end, models)
            name = f"{index:02d}-{dashboard.name}-{_slug(panel.title)}.png"
            result.image = draw(result, out / name)
            results.append(result)
    finally:
        prometheus.close()
    page = write_html(out / "index.html", results, start, end)
    return Report(page, results)
