"""``shipyard rollout watch``: the long-running loop. Embedded it is a component of the stack;
on a cluster the chart runs it as a one-replica Deployment. Every ``rollout.poll_s`` it judges
the rollouts in progress and reads drift alerts (Prometheus' ``ALERTS``, and notifications
Alertmanager posts to ``/v1/alerts``); it serves ``/healthz`` and ``/metrics`` on
``ports.rollout``.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shipyard.errors import ShipyardError
from shipyard.observability.prometheus import PrometheusApi, PrometheusError
from shipyard.rollout.controller import Controller
from shipyard.rollout.exporter import LoopCollector, loop_registry
from shipyard.rollout.measure import measure_step
from shipyard.rollout.retrain import AlertInbox, Retrainer, firing_models, merged
from shipyard.rollout.store import Store, open_store
from shipyard.settings import Settings
from shipyard.training.tracking import CHALLENGER, CHAMPION, MlflowRest

log = logging.getLogger("shipyard.rollout")

REGISTRY_REFRESH_S = 30.0
# Alertmanager's webhook receiver posts here (the chart points Alertmanager at it).
ALERTS_PATH = "/v1/alerts"
MAX_NOTIFICATION_BYTES = 1 << 20


def registry_promotion(mlflow: MlflowRest):
    """Champion := version; the challenger alias goes when it pointed at that version."""

    def promote(model: str, version: str) -> None:
        mlflow.set_alias(model, CHAMPION, version)
        if mlflow.alias_version(model, CHALLENGER) == version:
            mlflow.delete_alias(model, CHALLENGER)

    return promote


def publisher(settings: Settings):
    """Makes a version servable before it takes traffic: every Triton pool and the gateway's
    in-process fallback load it (``shipyard serve publish``)."""

    def prepare(model: str, version: str) -> None:
        from serving.publish import publish

        publish(settings, model, version, lambda line: log.info("%s", line))

    return prepare


def controller_for(settings: Settings, store: Store | None = None) -> Controller:
    mlflow = MlflowRest(settings.url("mlflow"))
    api = PrometheusApi(settings.url("prometheus"))
    return Controller(
        store=store or open_store(settings),
        measure=partial(measure_step, api),
        promote_in_registry=registry_promotion(mlflow),
        prepare=publisher(settings),
        analysis=settings.rollout.analysis,
    )


class Health:
    """Healthy while passes keep completing (a wedged loop fails its liveness probe)."""

    def __init__(self, poll_s: float) -> None:
        self.grace_s = max(3 * poll_s, 30.0)
        self.last_pass = time.monotonic()

    def ok(self) -> bool:
        return time.monotonic() - self.last_pass < self.grace_s


def _handler(
    collector: LoopCollector, health: Health, inbox: AlertInbox
) -> type[BaseHTTPRequestHandler]:
    registry = loop_registry(collector)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != ALERTS_PATH:
                self._answer(404, f"not found: Alertmanager posts to {ALERTS_PATH}\n")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_NOTIFICATION_BYTES:
                self._answer(413, f"notification over {MAX_NOTIFICATION_BYTES} bytes\n")
                return
            try:
                count = inbox.receive(json.loads(self.rfile.read(length) or b"null"))
            except ValueError as exc:  # malformed JSON or notification
                self._answer(400, f"error: {str(exc).splitlines()[0]}\n")
                return
            self._answer(200, f"received {count} alerts\n")

        def _answer(self, status: int, text: str) -> None:
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, status, kind = generate_latest(registry), 200, CONTENT_TYPE_LATEST
            elif self.path == "/healthz":
                status = 200 if health.ok() else 503
                body, kind = (b"ok\n" if status == 200 else b"stalled\n"), "text/plain"
            else:
                body, status, kind = b"not found: try /healthz or /metrics\n", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # probes and scrapes every few seconds are not news

    return Handler


def run(settings: Settings, host: str = "127.0.0.1") -> None:
    """Run the loop until SIGTERM or SIGINT."""
    store = open_store(settings)
    controller = controller_for(settings, store)
    inbox = AlertInbox()
    mlflow = MlflowRest(settings.url("mlflow"))
    api = PrometheusApi(settings.url("prometheus"))
    retrainer = Retrainer(
        settings,
        store,
        controller,
        mlflow,
        firing=lambda: merged(
            firing_models(api, settings.rollout.retrain.alerts),
            inbox.firing(settings.rollout.retrain.alerts),
        ),
    )
    collector = LoopCollector()
    health = Health(settings.rollout.poll_s)
    server = ThreadingHTTPServer((host, settings.ports.rollout), _handler(collector, health, inbox))
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info(
        "rollout loop on %s, every %gs; metrics on http://%s:%d/metrics",
        store.description,
        settings.rollout.poll_s,
        host,
        settings.ports.rollout,
    )
    refreshed = 0.0
    try:
        while not stop.is_set():
            try:
                controller.tick()
                retrainer.tick()
                collector.rollouts = store.read()[1]
            except (ShipyardError, PrometheusError) as exc:
                log.warning("pass incomplete: %s", exc)  # Prometheus or MLflow away: next pass
            health.last_pass = time.monotonic()  # alive, even when a dependency is not
            if time.monotonic() - refreshed > REGISTRY_REFRESH_S:
                collector.refresh(mlflow)
                refreshed = time.monotonic()
            stop.wait(settings.rollout.poll_s)
    finally:
        retrainer.stop()
        server.shutdown()
        log.info("rollout loop stopped")
