"""The gateway's moving parts wired together, and the predict path itself.

``Gateway`` owns the router, the model catalog, feature lookup, the backend chain, the audit
log, metrics and limits; the FastAPI routes in ``serving.app`` stay thin calls into it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from serving.access import InFlight, KeyRing, admin_keys
from serving.audit import AuditLog, AuditWriteError
from serving.backends import BackendChain, TritonPool
from serving.errors import (
    AuditUnavailable,
    Conflict,
    GatewayError,
    InjectedFault,
    InvalidRequest,
    UnknownModel,
    UnknownVersion,
)
from serving.features import FeatureLookup
from serving.models import ModelCatalog, ServedVersion, VersionNotPublished, read_metadata
from serving.monitoring import Monitor
from serving.router import Choice, Router, choose
from serving.schemas import PredictRequest, RouteUpdate
from shipyard import __version__
from shipyard.errors import ConfigError
from shipyard.features.encoding import input_names
from shipyard.observability.metrics import GatewayMetrics
from shipyard.rollout.history import HistoryFile, HistoryRecord
from shipyard.routing import Fault, ModelRoute, RoutingTable, updated_route, with_route
from shipyard.settings import Settings
from shipyard.stack.layout import StateLayout

# Who the deployment history names for changes made through PUT /v1/admin/routes.
ADMIN = "admin-api"
log = logging.getLogger("shipyard.gateway")
ENTITY_KEY = "customer_id"  # the sticky-routing key: one customer sees one version
NO_LABEL = "none"


@dataclass(frozen=True)
class Paths:
    routing_file: Path
    model_repository: Path
    audit: Path
    feedback: Path
    history: Path

    @classmethod
    def of(cls, settings: Settings) -> Paths:
        layout = StateLayout(settings.state_dir)
        serving = settings.serving
        return cls(
            routing_file=serving.routing_file or layout.routing_file,
            model_repository=serving.model_repository or layout.triton_models,
            audit=layout.audit,
            feedback=layout.feedback,
            history=layout.deployment_history,
        )


def triton_pools(settings: Settings) -> list[TritonPool]:
    """The Triton pools in preference order; an empty URL means no such pool, an unset one the
    embedded Triton over HTTP."""
    serving = settings.serving
    primary = serving.primary_url
    cpu = serving.cpu_url
    if primary is None:
        primary = f"http://127.0.0.1:{settings.ports.triton_http}"
    if cpu is None:
        cpu = f"http://127.0.0.1:{settings.ports.triton_cpu_http}"
    pools = (("triton-primary", primary), ("triton-cpu", cpu))
    return [TritonPool.parse(name, url) for name, url in pools if url]


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.paths = Paths.of(settings)
        self.metrics = GatewayMetrics.create(__version__, settings.profile)
        self.catalog = ModelCatalog(self.paths.model_repository)
        self.features = FeatureLookup(settings, self.metrics)
        self.router = Router(self.paths.routing_file, self._check_table, self._routing_changed)
        serving = settings.serving
        self.keys = KeyRing([k.get_secret_value() for k in serving.api_keys], admin_keys(settings))
        self.in_flight = InFlight(serving.max_in_flight, self.metrics.in_flight)
        self.audit = AuditLog(
            self.paths.audit,
            sync_interval_s=serving.audit_sync_ms / 1000,
            on_sync=self.metrics.audit_sync_duration.observe,
        )
        # Labels are audited like predictions: append-only, never lost.
        self.feedback_log = AuditLog(
            self.paths.feedback, sync_interval_s=serving.audit_sync_ms / 1000
        )
        self.monitor = Monitor(self.metrics)
        self.chain: BackendChain | None = None
        self._canaries: dict[tuple[str, str], float] = {}

    # lifecycle (inside the event loop: the gRPC clients bind to it)

    def start(self) -> None:
        self.feedback_log.open()
        recovered = self.audit.open()
        if recovered:
            log.warning("audit log: recovered %d segment(s) after a crash", len(recovered))
        serving = self.settings.serving
        self.chain = BackendChain.build(
            triton_pools(self.settings),
            timeout_s=serving.backend_timeout_ms / 1000,
            failures=serving.breaker_failures,
            open_s=serving.breaker_open_s,
            metrics=self.metrics,
        )
        self.router.reload()

    async def stop(self) -> None:
        if self.chain is not None:
            await self.chain.close()
        self.features.close()
        self.audit.close()  # after the last request: every record synced before exit
        self.feedback_log.close()

    # routing

    def _check_table(self, table: RoutingTable) -> None:
        """Refuse a table whose versions are not all published and loadable here."""
        for model, route in table.models.items():
            for version in route.versions:
                served = self._load(model, version)
                expected = tuple(input_names(served.feature_service))
                if served.input_names != expected:
                    raise ConfigError(
                        f"{model} v{version} expects inputs {list(served.input_names)}, but "
                        f"feature service {served.feature_service} encodes {list(expected)}"
                    )
                try:
                    self.features.reader(served.feature_service)
                except Exception as exc:  # Feast raises many types; any means "cannot serve"
                    raise ConfigError(
                        f"{model} v{version}: feature service {served.feature_service} cannot "
                        f"be read ({exc}): run `shipyard features apply`"
                    ) from None

    def _load(self, model: str, version: str) -> ServedVersion:
        try:
            served = self.catalog.get(model, version)
        except VersionNotPublished as exc:
            raise ConfigError(
                f"{model} v{version} is not published ({exc}): run "
                f"`shipyard serve publish {model} --version {version}`"
            ) from None
        try:
            # One score before it takes traffic: a version that cannot score is refused, and
            # its first requests (a canary's) do not pay ONNX Runtime's first-run set-up.
            served.score(np.zeros((1, len(served.input_names)), dtype=np.float32))
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ConfigError(f"{model} v{version} does not score in-process: {exc}") from None
        return served

    def _routing_changed(self, table: RoutingTable, outcome: str) -> None:
        self.metrics.routing_reloads.labels(result=outcome).inc()
        if outcome != "applied":
            return
        canaries = {
            (model, route.canary.version): route.canary.weight
            for model, route in table.models.items()
            if route.canary is not None
        }
        for gone in self._canaries.keys() - canaries.keys():
            self.metrics.canary_weight.labels(*gone).set(0)
        for labels, weight in canaries.items():
            self.metrics.canary_weight.labels(*labels).set(weight)
        self._canaries = canaries

    def update_route(self, model: str, update: RouteUpdate) -> ModelRoute:
        """Admin: change one model's stable/canary; validated, written, applied at once."""
        table = self.router.table
        try:
            route = updated_route(
                model,
                table.models.get(model),
                stable=update.stable_version,
                canary=update.canary_version,
                weight=update.canary_weight,
                clear_canary=update.clear_canary,
                fault=update.canary_fault,
                clear_fault=update.clear_fault,
            )
        except ConfigError as exc:
            raise Conflict(str(exc)) from None
        try:
            self.router.apply(with_route(table, model, route))
        except ConfigError as exc:
            raise Conflict(str(exc)) from None
        # Applied only once valid, then recorded: the deployment history holds every change.
        HistoryFile(self.paths.history).append(
            [HistoryRecord.of_route(model, route, "route", "changed through the admin API", ADMIN)]
        )
        log.info("route of %s changed by the admin API: %s", model, route.model_dump())
        return route

    # serving

    def route_of(self, model: str) -> ModelRoute:
        route = self.router.table.models.get(model)
        if route is None:
            known = ", ".join(sorted(self.router.table.models)) or "none"
            raise UnknownModel(f"model {model!r} is not served (served: {known})", "model")
        return route

    def version_info(self, model: str) -> list[dict[str, Any]]:
        infos = []
        for version in self.catalog.published(model):
            try:
                metadata = read_metadata(self.paths.model_repository / model / version)
            except VersionNotPublished:
                continue
            lineage = metadata.get("lineage", {})
            infos.append(
                {
                    "version": version,
                    "feature_service": metadata["feature_service"],
                    **{k: lineage.get(k) for k in ("owner", "team", "run_id", "dataset_digest")},
                }
            )
        return infos

    async def predict(self, model: str, body: PredictRequest) -> dict[str, Any]:
        """Score every instance; one audit record each. Raises GatewayError."""
        started = time.perf_counter()
        groups: dict[Choice, list[int]] = {}
        backends: dict[Choice, str] = {}
        status = 200
        request_id = f"{time.time_ns():x}{os.urandom(4).hex()}"
        try:
            self.in_flight.enter()
        except GatewayError as exc:
            self.metrics.rejected.labels(reason="overloaded").inc()
            # Counted as an answered 503 too: a refusal spends availability budget.
            self._count(model, {}, {}, exc.status, time.perf_counter() - started)
            exc.request_id = request_id
            raise
        try:
            route = self.route_of(model)
            instances = body.instances
            limit = self.settings.serving.max_instances
            if len(instances) > limit:
                raise InvalidRequest(
                    f"{len(instances)} instances in one request (limit {limit}): split it",
                    "instances",
                )
            rows = [i.model_dump() for i in instances]
            if body.version is not None:
                if body.version not in route.versions and body.version not in (
                    self.catalog.published(model)
                ):
                    raise UnknownVersion(
                        f"{model} has no published version {body.version}", "version"
                    )
                choices = [Choice(body.version, "pinned")] * len(rows)
            else:
                choices = [choose(route, model, row[ENTITY_KEY]) for row in rows]
            groups = defaultdict(list)
            for index, choice in enumerate(choices):
                groups[choice].append(index)
            predictions: list[dict[str, Any]] = [{} for _ in rows]
            records: list[dict[str, Any]] = []
            served_at = datetime.now(UTC).isoformat()
            observed: dict[Choice, tuple[ServedVersion, list[str], np.ndarray, np.ndarray]] = {}
            for choice, indices in groups.items():
                served = self._served(model, choice.version)
                if choice.route == "canary" and route.canary and route.canary.fault:
                    await _inject(route.canary.fault, model, choice.version)
                group_rows = [rows[i] for i in indices]
                x = self.features.rows(served, group_rows)
                scores, backend = await self._score(served, x)
                backends[choice] = backend
                explained = await self._explain(served, x) if body.explain else None
                ids = [
                    request_id if len(rows) == 1 else f"{request_id}-{index}" for index in indices
                ]
                observed[choice] = (served, ids, x, scores)
                for k, index in enumerate(indices):
                    prediction_id = ids[k]
                    score = float(scores[k])
                    predictions[index] = {
                        "prediction_id": prediction_id,
                        "score": score,
                        "version": choice.version,
                        "route": choice.route,
                        "backend": backend,
                    }
                    if explained is not None:
                        predictions[index]["explanation"] = explained[k]
                    records.append(
                        self._record(prediction_id, request_id, served_at, served, choice,
                                     backend, group_rows[k], x[k], score)
                    )  # fmt: skip
            try:
                self.audit.append(records)
            except AuditWriteError as exc:
                self.metrics.audit_errors.inc()
                raise AuditUnavailable(f"{exc}: prediction not served") from None
            self.metrics.audit_records.inc(len(records))
            for served, ids, x, scores in observed.values():
                self.monitor.observe(served, ids, x, scores)
            elapsed = time.perf_counter() - started
            for choice, indices in groups.items():
                labels = (model, choice.version, choice.route, backends[choice])
                self.metrics.child(self.metrics.predictions, *labels).inc(len(indices))
                score_of = self.metrics.child(self.metrics.prediction_score, *labels[:3])
                for index in indices:
                    score_of.observe(predictions[index]["score"])
            return {
                "request_id": request_id,
                "model": model,
                "predictions": predictions,
                "latency_ms": round(elapsed * 1000, 3),
            }
        except GatewayError as exc:
            status = exc.status
            exc.request_id = request_id
            raise
        finally:
            self.in_flight.leave()
            self._count(model, groups, backends, status, time.perf_counter() - started)

    def feedback(self, prediction_id: str, label: int) -> dict[str, Any]:
        """Record a true label durably; count it towards online quality when the prediction is
        one of this worker's recent ones."""
        matched = self.monitor.feedback(prediction_id, label)
        record = {
            "prediction_id": prediction_id,
            "label": label,
            "ts": datetime.now(UTC).isoformat(),
            "matched": matched is not None,
        }
        try:
            self.feedback_log.append([record])
        except AuditWriteError as exc:
            raise AuditUnavailable(f"{exc}: label not recorded") from None
        model, version = matched or (None, None)
        return {
            "prediction_id": prediction_id,
            "matched": matched is not None,
            "model": model,
            "version": version,
        }

    async def _explain(self, served: ServedVersion, x: np.ndarray) -> list[dict[str, Any]]:
        """Per row: base value, contribution of each input, and their sum (the raw score)."""
        try:
            # Off the event loop: the first call loads the LightGBM model.
            values = await asyncio.to_thread(served.contributions, x)
        except VersionNotPublished as exc:
            raise Conflict(str(exc), "explain") from None
        explanations = []
        for row in values:
            base, effects = float(row[-1]), row[:-1]
            explanations.append(
                {
                    "base_value": base,
                    "raw_score": base + float(effects.sum()),
                    "contributions": dict(
                        zip(served.input_names, (float(v) for v in effects), strict=True)
                    ),
                }
            )
        return explanations

    def _served(self, model: str, version: str) -> ServedVersion:
        try:
            return self.catalog.get(model, version)
        except VersionNotPublished:
            raise UnknownVersion(f"{model} v{version} is not published here", "version") from None

    async def _score(self, served: ServedVersion, x: np.ndarray) -> tuple[np.ndarray, str]:
        assert self.chain is not None, "Gateway.start() was not called"
        return await self.chain.score(served, x)

    def _record(
        self,
        prediction_id: str,
        request_id: str,
        served_at: str,
        served: ServedVersion,
        choice: Choice,
        backend: str,
        row: dict[str, Any],
        x: np.ndarray,
        score: float,
    ) -> dict[str, Any]:
        record = {
            "prediction_id": prediction_id,
            "request_id": request_id,
            "ts": served_at,
            "model": served.model,
            "version": served.version,
            "route": choice.route,
            "backend": backend,
            "feature_service": served.feature_service,
            "customer_id": row["customer_id"],
            "merchant_id": row["merchant_id"],
            # The exact model input, hashed: proves which vector was scored without keeping it.
            "features_sha256": hashlib.sha256(x.tobytes()).hexdigest(),
            "score": score,
        }
        if self.settings.serving.audit_features:
            record["features"] = dict(zip(served.input_names, x.tolist(), strict=True))
        return record

    def _count(
        self,
        model: str,
        groups: dict[Choice, list[int]],
        backends: dict[Choice, str],
        status: int,
        took: float,
    ) -> None:
        known = model in self.router.table.models
        label_model = model if known else NO_LABEL  # never a label value from a bad request
        if not groups:
            groups = {Choice(NO_LABEL, NO_LABEL): []}
        for choice in groups:
            backend = backends.get(choice, NO_LABEL)
            labels = (label_model, choice.version, choice.route, backend, str(status))
            self.metrics.child(self.metrics.requests, *labels).inc()
            self.metrics.child(self.metrics.request_duration, *labels).observe(took)


async def _inject(fault: Fault, model: str, version: str) -> None:
    """The canary's injected failure (routing ``canary.fault``): a delay, then maybe a 500."""
    if fault.delay_ms and random.random() < fault.delay_ratio:
        await asyncio.sleep(fault.delay_ms / 1000)
    if random.random() < fault.error_ratio:
        raise InjectedFault(
            f"failure injected into {model} v{version} by its routing entry (canary.fault): "
            "remove the fault to stop"
        )
