"""Endpoints and rollouts as users drive them, from Python or the CLI. Everything here only
writes the Store; running gateways pick the change up within a second."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from shipyard.errors import Conflict, InvalidInput, NotFound, ShipyardError
from shipyard.gateway import controller
from shipyard.gateway.analysis import Limits
from shipyard.gateway.controller import RolloutSpec
from shipyard.gateway.stats import merge
from shipyard.models.signature import Signature
from shipyard.registry.api import check_promotion, current_tracker, resolve
from shipyard.registry.uris import parse_model_ref
from shipyard.store.base import Store
from shipyard.store.entities import Endpoint, ModelVersion, Rollout
from shipyard.tracking.models import current_user

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
ROLES_OF = {"canary": "canary", "shadow": "shadow", "blue-green": "standby"}


def parse_duration(text: str | float, what: str = "duration") -> float:
    """Seconds from ``90``, ``90s``, ``10m``, ``1h`` or ``500ms``."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text))
        if match is None:
            raise InvalidInput(f"{what} {text!r} is not a duration such as 90s, 10m or 1h")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise InvalidInput(f"{what} must be longer than zero, got {text!r}")
    return seconds


def parse_steps(steps: str | Sequence[float]) -> tuple[float, ...]:
    """Canary steps in percent (``10,50,100``) as shares of traffic. A canary always ends
    at 100%: it is judged taking all traffic before it becomes the primary."""
    items = steps.split(",") if isinstance(steps, str) else list(steps)
    shares = []
    for item in items:
        try:
            percent = float(item)
        except (TypeError, ValueError):
            raise InvalidInput(f"steps are percentages such as 10,50,100; got {item!r}") from None
        if not 0 < percent <= 100:
            raise InvalidInput(f"each step is a percentage in (0, 100], got {item!r}")
        shares.append(percent / 100)
    if (
        shares
        and all(share <= 0.01 for share in shares)
        and any(float(item) != int(float(item)) for item in items)
    ):
        raise InvalidInput(
            f"steps are percentages (10, 50, 100), not shares; got {list(items)}: "
            f"did you mean {[round(float(i) * 100) for i in items]}?"
        )
    if not shares or shares[-1] < 1.0:
        shares.append(1.0)
    return tuple(shares)


def _store() -> Store:
    return current_tracker().store


def create_endpoint(
    name: str,
    model: str,
    *,
    description: str = "",
    sticky_header: str | None = None,
    log_sample: float = 1.0,
) -> Endpoint:
    """Serve ``model`` (``NAME/N``, ``NAME@ALIAS``, ``models:/...``) at a new endpoint."""
    store = _store()
    version = resolve(store, parse_model_ref(model))
    return store.create_endpoint(
        name,
        model_name=version.name,
        model_version=version.version,
        description=description,
        config=_config(sticky_header, log_sample),
        actor=current_user(),
    )


def update_endpoint(
    name: str,
    *,
    description: str | None = None,
    sticky_header: str | None = None,
    log_sample: float | None = None,
) -> Endpoint:
    store = _store()
    config = dict(store.get_endpoint(name).config)
    if sticky_header is not None:
        config["sticky_header"] = sticky_header or None
    if log_sample is not None:
        config.update(_config(None, log_sample))
    return store.update_endpoint(name, description=description, config=config, actor=current_user())


def _config(sticky_header: str | None, log_sample: float) -> dict[str, Any]:
    if not 0.0 <= log_sample <= 1.0:
        raise InvalidInput(f"log sample must be a share in [0, 1], got {log_sample}")
    config: dict[str, Any] = {"log_sample": log_sample}
    if sticky_header:
        config["sticky_header"] = sticky_header.lower()
    return config


def deploy(
    endpoint: str,
    model: str,
    *,
    strategy: str = "canary",
    steps: str | Sequence[float] = (10, 50, 100),
    interval: str | float = 60.0,
    duration: str | float = 600.0,
    max_error_rate: float | None = 0.01,
    max_p99_ms: float | None = None,
    max_p50_ms: float | None = None,
    max_prediction_shift: float | None = 0.2,
    min_agreement: float | None = None,
    min_requests: int = 100,
    max_wait: int = 3,
    set_alias: str | None = None,
    allow_signature_change: bool = False,
) -> Rollout:
    """Start rolling ``model`` out to ``endpoint`` by canary, shadow or blue-green.

    ``steps`` are percentages of traffic (a canary always ends at 100); a candidate whose
    signature refuses input the primary takes is refused unless ``allow_signature_change``.
    """
    store = _store()
    store.get_endpoint(endpoint)
    if strategy not in ROLES_OF:
        raise InvalidInput(f"unknown strategy {strategy!r}; use one of: {', '.join(ROLES_OF)}")
    version = resolve(store, parse_model_ref(model))
    limits = Limits(
        max_error_rate=max_error_rate,
        max_p99_ms=max_p99_ms,
        max_p50_ms=max_p50_ms,
        max_prediction_shift=max_prediction_shift,
        min_agreement=min_agreement,
        min_requests=min_requests,
    )
    spec = RolloutSpec(
        steps=parse_steps(steps),
        interval=parse_duration(interval, "interval"),
        duration=parse_duration(duration, "duration"),
        limits=Limits.from_dict(limits.to_dict()),
        max_wait=max_wait,
        set_alias=set_alias,
    )
    if not allow_signature_change:
        _check_signature(store, endpoint, version)
    if set_alias is not None:
        if strategy == "shadow":
            raise InvalidInput("a shadow never becomes the primary, so it cannot --set-alias")
        # refused now rather than after a rollout that passed
        try:
            check_promotion(store, version.name, version.version, set_alias)
        except ShipyardError as exc:
            raise type(exc)(
                f"cannot deploy with --set-alias {set_alias}: {exc.message.split('; run')[0]}; "
                f"validate it first (shipyard models validate {version.name}/{version.version}), "
                "or deploy without --set-alias and promote it afterwards"
            ) from None
    return store.start_rollout(
        endpoint,
        model_name=version.name,
        model_version=version.version,
        strategy=strategy,
        spec=spec.to_dict(),
        role=ROLES_OF[strategy],
        weight=0.0,
        actor=current_user(),
    )


def _check_signature(store: Store, endpoint: str, version: ModelVersion) -> None:
    primary = store.get_endpoint(endpoint).primary
    current = store.get_model_version(primary.model_name, primary.model_version)
    if not current.signature:
        return
    if not version.signature:
        raise InvalidInput(
            f"{version.name}/{version.version} has no signature, so nothing says it takes what "
            f"{primary.label} takes; pass --allow-signature-change to deploy it anyway"
        )
    problem = Signature.from_dict(version.signature).refuses(Signature.from_dict(current.signature))
    if problem is not None:
        raise InvalidInput(
            f"{version.name}/{version.version} would refuse requests {primary.label} takes "
            f"({problem}); clients would get errors. Pass --allow-signature-change if they "
            "are changing too"
        )


def _active(store: Store, endpoint: str) -> Rollout:
    rollout = store.active_rollout(endpoint)
    if rollout is None:
        raise NotFound(f"endpoint {endpoint!r} has no running or paused rollout")
    return rollout


def pause(endpoint: str) -> Rollout:
    store = _store()
    rollout = _active(store, endpoint)
    if rollout.state == "paused":
        raise Conflict(f"rollout {rollout.id} is already paused")
    return store.update_rollout(
        rollout.id,
        expect_state="running",
        expect_step=rollout.step,
        state="paused",
        reason="paused by hand",
        event=("rollout_paused", f"rollout {rollout.id} paused by hand", {"rollout": rollout.id}),
        actor=current_user(),
    )


def resume(endpoint: str) -> Rollout:
    """Resume a paused rollout; its current step starts over with fresh figures."""
    store = _store()
    rollout = _active(store, endpoint)
    if rollout.state == "running":
        raise Conflict(f"rollout {rollout.id} is already running")
    started = None if rollout.step_started_at is None else time.time()
    return store.update_rollout(
        rollout.id,
        expect_state="paused",
        expect_step=rollout.step,
        state="running",
        step_started_at=started,
        reason="",
        event=("rollout_resumed", f"rollout {rollout.id} resumed", {"rollout": rollout.id}),
        actor=current_user(),
    )


def promote(endpoint: str) -> Rollout:
    """Finish the rollout now: the candidate becomes the primary without more analysis."""
    store = _store()
    rollout = _active(store, endpoint)
    if rollout.strategy == "shadow":
        raise InvalidInput(
            "a shadow rollout only compares; deploy the version by canary or blue-green "
            "to make it the primary"
        )
    spec = RolloutSpec.from_dict(rollout.spec)
    return controller.promote(store, rollout, spec, reason="promoted by hand", actor=current_user())


def abort(endpoint: str) -> Rollout:
    """Stop the rollout and send all traffic back to the primary it started from."""
    store = _store()
    rollout = _active(store, endpoint)
    return controller.end(
        store,
        rollout,
        "aborted",
        "aborted by hand",
        roles=controller.rollback_roles(rollout),
        actor=current_user(),
    )


def rollback(endpoint: str) -> Endpoint:
    """Make the endpoint's previous primary the primary again."""
    store = _store()
    current = store.get_endpoint(endpoint)
    if store.active_rollout(endpoint) is not None:
        raise Conflict(
            f"endpoint {endpoint!r} has a rollout in progress; abort it instead "
            f"(shipyard rollouts abort {endpoint})"
        )
    primary = current.primary
    if primary.previous_id is None:
        raise Conflict(f"endpoint {endpoint!r} has had no other primary to go back to")
    previous = store.get_deployment(primary.previous_id)
    return store.set_roles(
        endpoint,
        {previous.id: ("primary", 1.0), primary.id: ("standby", 0.0)},
        expect_primary=primary.id,
        event=(
            "rolled_back",
            f"rolled back from {primary.label} to {previous.label}",
            {"from": primary.id, "to": previous.id},
        ),
        actor=current_user(),
    )


def status(endpoint: str, *, window: str | float = 60.0) -> dict[str, Any]:
    """Versions, weights, request rate, errors, latency and agreement over the last
    ``window`` (seconds, or ``"30s"``, ``"5m"``), the rollout in progress with its latest
    analysis, and the gateways."""
    window = parse_duration(window, "window")
    store = _store()
    current = store.get_endpoint(endpoint)
    now = time.time()
    stats = store.get_stats([d.id for d in current.deployments], since=now - window, until=now)
    states = {d.id: controller.candidate_states(store, d.id, now) for d in current.deployments}
    deployments = []
    for d in current.deployments:
        totals = merge(stats[d.id])
        figures = totals.to_dict()
        figures["requests_per_s"] = totals.requests / window
        deployments.append(
            {
                **d.to_dict(),
                "figures": figures,
                "gateways": {
                    g: s["state"] + (f" ({s['error']})" if s.get("error") else "")
                    for g, s in states[d.id].items()
                },
            }
        )
    rollout = store.active_rollout(endpoint) or next(
        iter(store.list_rollouts(endpoint, limit=1)), None
    )
    out: dict[str, Any] = {
        "endpoint": current.to_dict(),
        "deployments": deployments,
        "window_s": window,
        "rollout": rollout.to_dict() if rollout else None,
        "gateways": [g.to_dict() for g in store.list_gateways(seen_since=now - controller.LIVE_S)],
    }
    if rollout is not None:
        analyses = store.list_analyses(rollout.id)
        out["analyses"] = [a.to_dict() for a in analyses]
    return out
