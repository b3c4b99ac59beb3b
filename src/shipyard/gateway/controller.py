"""The rollout controller: judges each running rollout on the figures gateways recorded, and
advances, rolls back, pauses or finishes it.

Every gateway runs it once a second; each change is compare-and-set on the rollout's state and
step, so when two gateways judge the same step one of them moves it and the other gets a
Conflict and lets it be. A step's clock starts only once a gateway has the candidate loaded
and warm, and a candidate that fails to load anywhere fails the rollout before it got any
traffic.

- canary: the candidate takes each step's share of traffic for an interval. A limit broken
  (even before the interval is over, once the evidence is clear) sends its weight to 0 at
  once; all limits kept advance it; too few requests wait, up to ``max_wait`` more intervals,
  then pause. Past the last step it becomes the primary.
- shadow: the candidate gets a copy of every request for the duration; its answers are
  compared with the primary's. It never becomes the primary: the rollout succeeds or fails.
- blue-green: the candidate loads on every live gateway, warms up, then takes all traffic at
  once; the old primary stays loaded (standby) and takes it back if the candidate breaks a
  limit within the interval.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from shipyard.errors import Conflict, InvalidInput, ShipyardError
from shipyard.gateway.analysis import Analysis, Limits, analyze_canary, analyze_shadow
from shipyard.gateway.stats import Totals, merge
from shipyard.store.base import Store
from shipyard.store.entities import Rollout

LIVE_S = 10.0  # a gateway not seen for this long is not waited for
# Figures reach the store about a second after the requests they count, and gateways follow a
# weight change within a poll: a step's window opens this long after the step started, so it
# holds no request routed by the previous step's weights (with traffic whose mix drifts, those
# would make a good canary look shifted against the primary).
SETTLE_S = 2.0
# A candidate not loaded and warm (on one gateway; blue-green: on every live one) this long
# after its rollout started fails it, so a rollout never waits forever.
LOAD_TIMEOUT_S = 600.0
# A step is judged on at most its last quarter hour of figures (like each measurement of an
# Argo analysis, a query over a recent window): a day-long step would otherwise re-read a
# day of figures every second. Bursts earlier in the step were judged when they happened.
MAX_WINDOW_S = 900.0


@dataclass(frozen=True)
class RolloutSpec:
    """How a rollout proceeds; stored with it as JSON."""

    steps: tuple[float, ...] = (0.1, 0.5, 1.0)  # canary's share of traffic at each step
    interval: float = 60.0  # seconds each step (blue-green: watched after the switch)
    duration: float = 600.0  # seconds a shadow runs
    limits: Limits = field(default_factory=Limits)
    max_wait: int = 3  # extra intervals an inconclusive step waits before pausing
    set_alias: str | None = None  # registry alias moved to the candidate when it is promoted

    def __post_init__(self) -> None:
        if not self.steps:
            raise InvalidInput("a canary needs at least one step (--steps 10,50,100)")
        for share in self.steps:
            if not 0 < share <= 1:
                raise InvalidInput(f"each step is a share of traffic in (0, 100]%, got {share}")
        if list(self.steps) != sorted(self.steps):
            raise InvalidInput(f"steps must increase, got {list(self.steps)}")
        for name in ("interval", "duration"):
            if getattr(self, name) <= 0:
                raise InvalidInput(f"{name} must be a positive number of seconds")
        if self.max_wait < 0:
            raise InvalidInput("max_wait must be 0 or more intervals")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["steps"] = list(self.steps)
        out["limits"] = self.limits.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutSpec:
        values = dict(data)
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise InvalidInput(f"unknown rollout settings: {', '.join(sorted(unknown))}")
        if "steps" in values:
            values["steps"] = tuple(float(s) for s in values["steps"])
        if "limits" in values:
            values["limits"] = Limits.from_dict(values["limits"])
        return cls(**values)


def tick_all(store: Store, *, now: float | None = None) -> None:
    """Judge every running rollout once."""
    now = time.time() if now is None else now
    for rollout in store.list_rollouts(active_only=True):
        if rollout.state != "running":
            continue
        try:
            tick(store, rollout, now=now)
        except Conflict:
            pass  # another gateway moved it first
        except ShipyardError as exc:
            print(f"shipyard gateway: rollout {rollout.id}: {exc.message}", file=sys.stderr)


def tick(store: Store, rollout: Rollout, *, now: float) -> None:
    spec = RolloutSpec.from_dict(rollout.spec)
    if rollout.step_started_at is None:
        _begin(store, rollout, spec, now)
    elif rollout.strategy == "canary":
        _judge_canary(store, rollout, spec, now)
    elif rollout.strategy == "shadow":
        _judge_shadow(store, rollout, spec, now)
    else:
        _judge_blue_green(store, rollout, spec, now)


# -- starting ------------------------------------------------------------------------------


def candidate_states(store: Store, deployment_id: int, now: float) -> dict[str, dict[str, Any]]:
    """What each live gateway reports about a deployment: gateway id -> {state, error, ...}."""
    states = {}
    for gateway in store.list_gateways(seen_since=now - LIVE_S):
        reported = gateway.info.get("deployments", {}).get(str(deployment_id))
        states[gateway.id] = reported or {"state": "loading"}
    return states


def _begin(store: Store, rollout: Rollout, spec: RolloutSpec, now: float) -> None:
    states = candidate_states(store, rollout.candidate_id, now)
    failed = {g: s for g, s in states.items() if s["state"] == "failed"}
    if failed:
        gateway, state = next(iter(failed.items()))
        reason = f"the candidate failed to load on gateway {gateway}: {state.get('error', '')}"
        _end(store, rollout, "failed", reason, roles={rollout.candidate_id: ("retired", 0.0)})
        return
    ready = [g for g, s in states.items() if s["state"] == "ready"]
    everywhere = bool(states) and len(ready) == len(states)
    enough = everywhere if rollout.strategy == "blue-green" else bool(ready)
    if not enough and now - rollout.created_at > LOAD_TIMEOUT_S:
        waiting = [g for g, s in states.items() if s["state"] != "ready"] or ["no live gateway"]
        reason = (
            f"the candidate was not ready within {LOAD_TIMEOUT_S / 60:g} minutes "
            f"(waiting on: {', '.join(waiting)})"
        )
        _end(store, rollout, "failed", reason, roles={rollout.candidate_id: ("retired", 0.0)})
        return
    if rollout.strategy == "blue-green":
        if everywhere:
            _switch(store, rollout, now)
        return
    if not ready:
        return
    roles = {}
    message = f"shadow started: every request is copied to the candidate for {spec.duration:g}s"
    if rollout.strategy == "canary":
        roles = {rollout.candidate_id: ("canary", spec.steps[0])}
        message = f"step 1/{len(spec.steps)}: the candidate takes {spec.steps[0]:.0%} of traffic"
    store.update_rollout(
        rollout.id,
        expect_state="running",
        expect_step=rollout.step,
        expect_unstarted=True,  # two gateways must not both start it
        step_started_at=now,
        roles=roles,
        event=("rollout_step", message, {"rollout": rollout.id, "step": 0}),
    )


def _switch(store: Store, rollout: Rollout, now: float) -> None:
    store.update_rollout(
        rollout.id,
        expect_state="running",
        expect_step=0,
        step=1,
        step_started_at=now,
        expect_unstarted=True,
        promote=True,
        roles={rollout.candidate_id: ("primary", 1.0), rollout.baseline_id: ("standby", 0.0)},
        event=(
            "switched",
            "blue-green: the candidate is warm on every gateway and now takes all traffic; "
            "the old primary stays loaded to take it back",
            {"rollout": rollout.id},
        ),
    )


# -- judging -------------------------------------------------------------------------------


def totals(store: Store, ids: Sequence[int], since: float, until: float) -> list[Totals]:
    found = store.get_stats(list(ids), since=max(since, until - MAX_WINDOW_S), until=until)
    return [merge(found[i]) for i in ids]


def _judge_canary(store: Store, rollout: Rollout, spec: RolloutSpec, now: float) -> None:
    assert rollout.step_started_at is not None
    candidate, baseline = totals(
        store, [rollout.candidate_id, rollout.baseline_id], rollout.step_started_at + SETTLE_S, now
    )
    analysis = analyze_canary(candidate, baseline, spec.limits)
    _decide(store, rollout, spec, analysis, now, spec.interval)


def _judge_shadow(store: Store, rollout: Rollout, spec: RolloutSpec, now: float) -> None:
    assert rollout.step_started_at is not None
    shadow, primary = totals(
        store, [rollout.candidate_id, rollout.baseline_id], rollout.step_started_at + SETTLE_S, now
    )
    analysis = analyze_shadow(shadow, primary, spec.limits)
    _decide(store, rollout, spec, analysis, now, spec.duration)


def _judge_blue_green(store: Store, rollout: Rollout, spec: RolloutSpec, now: float) -> None:
    assert rollout.step_started_at is not None
    started = rollout.step_started_at
    # the new primary now, against the old one over as long a time before the switch
    [candidate] = totals(store, [rollout.candidate_id], started + SETTLE_S, now)
    [baseline] = totals(store, [rollout.baseline_id], started - max(now - started, 1.0), started)
    analysis = analyze_canary(candidate, baseline, spec.limits)
    _decide(store, rollout, spec, analysis, now, spec.interval)


def _decide(
    store: Store,
    rollout: Rollout,
    spec: RolloutSpec,
    analysis: Analysis,
    now: float,
    period: float,
) -> None:
    assert rollout.step_started_at is not None
    elapsed = now - rollout.step_started_at
    if analysis.outcome == "fail" and (elapsed >= period or _fails_early(analysis)):
        _end(
            store,
            rollout,
            "failed",
            analysis.reason,
            roles=_rollback_roles(rollout),
            analysis=analysis,
        )
    elif elapsed < period:
        return
    elif analysis.outcome == "pass":
        _advance(store, rollout, spec, analysis, now)
    elif elapsed >= period * (1 + spec.max_wait):
        store.update_rollout(
            rollout.id,
            expect_state="running",
            expect_step=rollout.step,
            state="paused",
            reason=analysis.reason,
            analysis=(analysis.outcome, analysis.to_dict()),
            event=(
                "rollout_paused",
                f"rollout {rollout.id} paused: {analysis.reason} (resume or abort it)",
                {"rollout": rollout.id},
            ),
        )


def _fails_early(analysis: Analysis) -> bool:
    """Whether a failing analysis ends the step before its interval is over. Errors, bad
    outputs and latency do (clients feel them); a prediction shift alone waits for the end
    of the interval: its test, repeated every second on a growing window, would otherwise
    reject a good canary by chance far more often than its p < 0.01 suggests."""
    return any(f.passed is False and f.name != "prediction_shift" for f in analysis.figures)


def _rollback_roles(rollout: Rollout) -> dict[int, tuple[str, float]]:
    if rollout.strategy == "blue-green" and rollout.step >= 1:
        return {rollout.baseline_id: ("primary", 1.0), rollout.candidate_id: ("retired", 0.0)}
    return {rollout.candidate_id: ("retired", 0.0)}


def _advance(
    store: Store, rollout: Rollout, spec: RolloutSpec, analysis: Analysis, now: float
) -> None:
    if rollout.strategy == "shadow":
        _end(
            store,
            rollout,
            "succeeded",
            analysis.reason,
            analysis=analysis,
            roles={rollout.candidate_id: ("retired", 0.0)},
        )
        return
    if rollout.strategy == "canary" and rollout.step + 1 < len(spec.steps):
        step = rollout.step + 1
        share = spec.steps[step]
        store.update_rollout(
            rollout.id,
            expect_state="running",
            expect_step=rollout.step,
            step=step,
            step_started_at=now,
            roles={rollout.candidate_id: ("canary", share)},
            analysis=(analysis.outcome, analysis.to_dict()),
            event=(
                "rollout_step",
                f"step {step + 1}/{len(spec.steps)}: the candidate takes {share:.0%} of traffic "
                f"({analysis.reason})",
                {"rollout": rollout.id, "step": step},
            ),
        )
        return
    promote(store, rollout, spec, reason=analysis.reason, analysis=analysis)


def promote(
    store: Store,
    rollout: Rollout,
    spec: RolloutSpec,
    *,
    reason: str,
    analysis: Analysis | None = None,
    actor: str = "",
) -> Rollout:
    """Make the candidate the primary, keep the old primary loaded as standby, and move the
    registry alias the spec names."""
    endpoint = store.get_endpoint(rollout.endpoint)
    roles = {d.id: ("retired", 0.0) for d in endpoint.with_role("standby")}
    roles[rollout.baseline_id] = ("standby", 0.0)
    roles[endpoint.primary.id] = ("standby", 0.0)  # whatever is primary now steps aside
    roles[rollout.candidate_id] = ("primary", 1.0)
    # the alias moves in the same transaction, on behalf of whoever deployed it (their
    # right to move it was checked when the rollout started)
    return _end(
        store,
        rollout,
        "succeeded",
        reason,
        roles=roles,
        analysis=analysis,
        actor=actor,
        promote=rollout.strategy != "blue-green",  # blue-green recorded it at the switch
        set_alias=spec.set_alias or None,
    )


def _end(
    store: Store,
    rollout: Rollout,
    state: str,
    reason: str,
    *,
    roles: Mapping[int, tuple[str, float]],
    analysis: Analysis | None = None,
    actor: str = "",
    promote: bool = False,
    set_alias: str | None = None,
) -> Rollout:
    kinds = {
        "succeeded": "rollout_succeeded",
        "failed": "rolled_back",
        "aborted": "rollout_aborted",
    }
    verbs = {"succeeded": "succeeded", "failed": "failed and was rolled back", "aborted": "aborted"}
    return store.update_rollout(
        rollout.id,
        expect_state=rollout.state,
        expect_step=rollout.step,
        state=state,
        reason=reason,
        roles=roles,
        analysis=(analysis.outcome, analysis.to_dict()) if analysis is not None else None,
        event=(
            kinds[state],
            f"rollout {rollout.id} {verbs[state]}: {reason}",
            {"rollout": rollout.id},
        ),
        actor=actor,
        promote=promote,
        set_alias=set_alias,
    )


def end(
    store: Store,
    rollout: Rollout,
    state: str,
    reason: str,
    *,
    roles: Mapping[int, tuple[str, float]],
    actor: str = "",
) -> Rollout:
    """End a rollout by hand (abort), with the role changes that go with it."""
    return _end(store, rollout, state, reason, roles=roles, actor=actor)


def rollback_roles(rollout: Rollout) -> dict[int, tuple[str, float]]:
    """The role changes that undo what a rollout did so far."""
    return _rollback_roles(rollout)
