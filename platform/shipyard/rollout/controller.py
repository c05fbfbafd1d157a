"""Canary rollouts: start, step, promote, roll back, abort. All decision logic lives here; the
store adapters (routing file or ConfigMap) only apply changes atomically.

A rollout walks the canary through ``analysis.steps`` (percent of entities). After each
``interval_s`` the step is judged in Prometheus (``shipyard.rollout.analysis``): passed → next
step, the last one promotes; failed → one more failure, and more than ``max_failures`` rolls
back (canary weight 0, status failed, reason recorded); inconclusive → keep observing. Every
routing change is appended to the deployment history first.

Promotion is two-phase so that a crash anywhere converges: the rollout is marked
``promoting``; the MLflow aliases move (``champion`` := canary, ``challenger`` cleared); then
stable := canary in the routing table. A ``promoting`` rollout found by the next pass redoes
the idempotent remainder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shipyard.errors import ConfigError, ShipyardError
from shipyard.rollout.analysis import Judgement, Side, judge
from shipyard.rollout.history import HistoryRecord
from shipyard.rollout.state import Rollout, Rollouts
from shipyard.rollout.store import Store
from shipyard.routing import Analysis, Canary, ModelRoute, RoutingTable, Stable, with_route

log = logging.getLogger(__name__)

ANALYSIS_ACTOR = "rollout-analysis"


class RolloutError(ShipyardError):
    """A rollout command that cannot apply (no route, one already running …)."""


@dataclass
class Controller:
    """Applies rollout decisions to a store, the registry and (embedded) the model backends."""

    store: Store
    # Measures one step: (model, canary version, stable version, window s, min requests)
    # -> (canary, stable).
    measure: Callable[[str, str, str, float, int], tuple[Side, Side]] | None = None
    # Records a promotion in the registry (MLflow: champion := version, challenger cleared).
    promote_in_registry: Callable[[str, str], None] | None = None
    # Makes a version servable before it gets traffic (embedded: `shipyard serve publish`).
    prepare: Callable[[str, str], None] | None = None
    # Thresholds for a model whose route names none yet (settings.rollout.analysis).
    analysis: Analysis = field(default_factory=Analysis)
    clock: Callable[[], float] = time.time
    events: list[str] = field(default_factory=list)

    # --- commands ------------------------------------------------------------------------

    def start(
        self, model: str, version: str, actor: str, analysis: Analysis | None = None
    ) -> Rollout:
        """Route ``version`` as the canary of ``model`` at the first step and begin judging."""
        table, rollouts = self.store.read()
        _startable(table, rollouts, model, version)
        if self.prepare is not None:
            self.prepare(model, version)  # outside the store's lock: it loads models
        now = self.clock()

        def change(table: RoutingTable, rollouts: Rollouts):
            route = _startable(table, rollouts, model, version)
            chosen = analysis or (route.canary.analysis if route.canary else self.analysis)
            rollout = Rollout(
                model=model,
                stable=route.stable.version,
                canary=version,
                steps=list(chosen.steps),
                started_at=now,
                step_started_at=now,
                updated_at=now,
                reason=f"started by {actor}",
                actor=actor,
            )
            canary = Canary(version=version, weight=rollout.weight, analysis=chosen)
            new_route = ModelRoute(stable=route.stable, canary=canary)
            record = _record(rollout, "started", f"rollout of v{version} started", actor)
            return (
                with_route(table, model, new_route),
                _with(rollouts, rollout),
                [record],
            )

        _, rollouts = self.store.update(change)
        return rollouts.rollouts[model]

    def abort(self, model: str, actor: str, reason: str = "") -> Rollout:
        """Stop the rollout in progress: canary weight 0, status aborted."""
        reason = reason or f"aborted by {actor}"
        return self._end(model, "aborted", reason, actor, expect=None)

    def promote(self, model: str, actor: str, reason: str = "") -> Rollout:
        """Promote the canary now, skipping the remaining steps."""
        _, rollouts = self.store.read()
        rollout = _active(rollouts, model)
        reason = reason or f"promoted by {actor}"
        self._mark_promoting(rollout, reason, actor)
        return self._finish_promotion(model, actor)

    # --- the loop ------------------------------------------------------------------------

    def tick(self) -> None:
        """One pass over every active rollout: reconcile, judge the due steps, act."""
        table, rollouts = self.store.read()
        for model, rollout in list(rollouts.rollouts.items()):
            if not rollout.active:
                continue
            try:
                self._advance(table, rollout)
            except ShipyardError as exc:
                log.warning("rollout of %s v%s: %s", model, rollout.canary, exc)

    def _advance(self, table: RoutingTable, rollout: Rollout) -> None:
        model = rollout.model
        route = table.models.get(model)
        if (
            route is None
            or route.canary is None
            or (
                (route.stable.version, route.canary.version) != (rollout.stable, rollout.canary)
                and rollout.status != "promoting"
            )
        ):
            self._orphan(rollout, route)
            return
        if rollout.status == "promoting":
            self._finish_promotion(model, ANALYSIS_ACTOR)
            return
        if route.canary.weight != rollout.weight:
            self._reconcile_weight(rollout)  # a crash between history and routing write
            return
        analysis = route.canary.analysis
        now = self.clock()
        if now - rollout.step_started_at < analysis.interval_s:
            return
        if self.measure is None:
            raise ShipyardError("no Prometheus to judge canaries with")
        canary, stable = self.measure(
            model, rollout.canary, rollout.stable, analysis.interval_s, analysis.min_requests
        )
        verdict = judge(analysis, canary, stable)
        self._apply(rollout, analysis, verdict, now)

    def _apply(self, seen: Rollout, analysis: Analysis, verdict: Judgement, now: float) -> None:
        model = seen.model
        promote = False

        def change(table: RoutingTable, rollouts: Rollouts):
            nonlocal promote
            rollout = rollouts.rollouts.get(model)
            if rollout is None or rollout.model_dump() != seen.model_dump():
                return table, rollouts, []  # changed meanwhile (abort, promote): next pass
            rollout = rollout.model_copy(deep=True)
            rollout.checks, rollout.updated_at = verdict.checks, now
            records: list[HistoryRecord] = []
            route = table.models[model]
            if verdict.verdict == "inconclusive":
                rollout.reason = verdict.reason
            elif verdict.verdict == "failed":
                rollout.failures += 1
                rollout.step_started_at = now
                rollout.reason = (
                    f"step {rollout.step + 1} failed ({rollout.failures}/"
                    f"{analysis.max_failures} tolerated): {verdict.reason}"
                )
                if rollout.failures > analysis.max_failures:
                    rollout.status = "failed"
                    rollout.reason = (
                        f"rolled back after {rollout.failures} failed checks: {verdict.reason}"
                    )
                    route = _with_weight(route, 0.0)
                    records.append(_record(rollout, "rolled_back", rollout.reason))
            elif rollout.step + 1 >= len(rollout.steps):
                rollout.status = "promoting"
                rollout.reason = f"all {len(rollout.steps)} steps passed"
                promote = True
            else:
                rollout.step += 1
                rollout.step_started_at = now
                rollout.reason = f"step {rollout.step} passed ({verdict.reason})"
                route = _with_weight(route, rollout.weight)
                records.append(_record(rollout, "step", rollout.reason))
            self.events.append(f"{model} v{rollout.canary}: {rollout.reason}")
            log.info("rollout of %s v%s: %s", model, rollout.canary, rollout.reason)
            return with_route(table, model, route), _with(rollouts, rollout), records

        self.store.update(change)
        if promote:
            self._finish_promotion(model, ANALYSIS_ACTOR)

    # --- endings -------------------------------------------------------------------------

    def _mark_promoting(self, rollout: Rollout, reason: str, actor: str) -> None:
        now = self.clock()

        def change(table: RoutingTable, rollouts: Rollouts):
            current = _active(rollouts, rollout.model).model_copy(deep=True)
            current.status, current.reason, current.updated_at = "promoting", reason, now
            return table, _with(rollouts, current), []

        self.store.update(change)

    def _finish_promotion(self, model: str, actor: str) -> Rollout:
        _, rollouts = self.store.read()
        rollout = rollouts.rollouts[model]
        if self.promote_in_registry is not None:
            self.promote_in_registry(model, rollout.canary)
        now = self.clock()

        def change(table: RoutingTable, rollouts: Rollouts):
            current = rollouts.rollouts.get(model)
            if current is None or current.status != "promoting":
                return table, rollouts, []
            done = current.model_copy(deep=True)
            done.status, done.updated_at = "succeeded", now
            route = ModelRoute(stable=Stable(version=done.canary))
            record = _record(done, "promoted", done.reason, actor)
            return with_route(table, model, route), _with(rollouts, done), [record]

        _, rollouts = self.store.update(change)
        done = rollouts.rollouts[model]
        self.events.append(f"{model} v{done.canary}: promoted")
        log.info("rollout of %s v%s: promoted (%s)", model, done.canary, done.reason)
        return done

    def _end(self, model: str, status: str, reason: str, actor: str, expect) -> Rollout:
        now = self.clock()

        def change(table: RoutingTable, rollouts: Rollouts):
            rollout = _active(rollouts, model).model_copy(deep=True)
            if rollout.status == "promoting":
                raise RolloutError(f"{model} v{rollout.canary} is being promoted; too late")
            rollout.status, rollout.reason, rollout.updated_at = status, reason, now
            records = [_record(rollout, "aborted", reason, actor)]
            route = table.models.get(model)
            if route is not None and route.canary and route.canary.version == rollout.canary:
                table = with_route(table, model, _with_weight(route, 0.0))
            return table, _with(rollouts, rollout), records

        _, rollouts = self.store.update(change)
        return rollouts.rollouts[model]

    def _orphan(self, rollout: Rollout, route: ModelRoute | None) -> None:
        """Routing changed outside the rollout (by hand, Helm): stop judging, change nothing."""
        now = self.clock()
        shown = (
            "no route"
            if route is None
            else (
                f"stable v{route.stable.version}, "
                + (f"canary v{route.canary.version}" if route.canary else "no canary")
            )
        )
        reason = f"routing changed outside the rollout ({shown}): stopped judging"

        def change(table: RoutingTable, rollouts: Rollouts):
            current = rollouts.rollouts.get(rollout.model)
            if current is None or current.model_dump() != rollout.model_dump():
                return table, rollouts, []
            ended = current.model_copy(update={"status": "aborted", "reason": reason})
            ended.updated_at = now
            record = HistoryRecord.of_route(rollout.model, route, "aborted", reason, ANALYSIS_ACTOR)
            return table, _with(rollouts, ended), [record]

        self.store.update(change)
        log.warning("rollout of %s v%s: %s", rollout.model, rollout.canary, reason)

    def _reconcile_weight(self, seen: Rollout) -> None:
        def change(table: RoutingTable, rollouts: Rollouts):
            current = rollouts.rollouts.get(seen.model)
            route = table.models.get(seen.model)
            if current is None or current.model_dump() != seen.model_dump() or route is None:
                return table, rollouts, []
            return with_route(table, seen.model, _with_weight(route, current.weight)), rollouts, []

        self.store.update(change)


def _startable(table: RoutingTable, rollouts: Rollouts, model: str, version: str) -> ModelRoute:
    route = table.models.get(model)
    if route is None:
        raise RolloutError(
            f"{model} has no stable version to compare with: "
            f"`shipyard serve publish {model} --alias champion` first"
        )
    running = rollouts.rollouts.get(model)
    if running is not None and running.active:
        raise RolloutError(
            f"a rollout of {model} v{running.canary} is {running.status}: "
            f"`shipyard rollout abort {model}` first"
        )
    if version == route.stable.version:
        raise RolloutError(f"v{version} is already the stable version of {model}")
    return route


def _active(rollouts: Rollouts, model: str) -> Rollout:
    rollout = rollouts.rollouts.get(model)
    if rollout is None or not rollout.active:
        state = "has never had a rollout" if rollout is None else f"last rollout {rollout.status}"
        raise RolloutError(f"no rollout of {model} is in progress ({model} {state})")
    return rollout


def _with(rollouts: Rollouts, rollout: Rollout) -> Rollouts:
    return rollouts.model_copy(update={"rollouts": {**rollouts.rollouts, rollout.model: rollout}})


def _with_weight(route: ModelRoute, weight: float) -> ModelRoute:
    if route.canary is None:
        raise ConfigError("no canary to weigh")
    return route.model_copy(update={"canary": route.canary.model_copy(update={"weight": weight})})


def _record(
    rollout: Rollout, event: str, reason: str, actor: str = ANALYSIS_ACTOR
) -> HistoryRecord:
    promoted = event == "promoted"
    return HistoryRecord(
        model=rollout.model,
        event=event,  # type: ignore[arg-type]
        stable=rollout.canary if promoted else rollout.stable,
        canary=None if promoted else rollout.canary,
        weight=0.0 if promoted else rollout.weight,
        reason=reason,
        actor=actor,
    )
