"""`shipyard gateway`, `shipyard endpoints ...`, `shipyard deploy` and `shipyard rollouts ...`:
serving models and rolling new versions out safely. How they look is in serving_views.py."""

from __future__ import annotations

import contextlib
import re
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.runs import require_store
from shipyard.cli.serving_views import (
    analysis_heading,
    analysis_table,
    endpoints_table,
    log_line,
    log_record,
    rollout_line,
    rollouts_table,
    status_view,
)
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live

    from shipyard.store.base import Store

endpoints_app = typer.Typer(
    help="Inference endpoints: create, inspect, roll back, read prediction logs.",
    no_args_is_help=True,
)
rollouts_app = typer.Typer(
    help="Rollouts in progress: pause, resume, promote or abort them.", no_args_is_help=True
)

JSON_HELP = "Print JSON instead of a table."
MODEL_HELP = "A model version: NAME/VERSION or NAME@ALIAS (models:/... works too)."
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
# RFC 9110 token characters: anything else is not a header a client can send
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _store(*, create: bool = False) -> Store:
    """The configured store; only commands that create something may create a missing one."""
    from shipyard.registry.api import current_tracker

    if not create:
        require_store()
    return current_tracker().store


def _positive(value: int, option: str) -> int:
    if value < 1:
        raise InvalidInput(f"{option} must be at least 1, got {value}")
    return value


def _check_header_name(header: str | None) -> None:
    if header and not _HEADER_NAME.fullmatch(header):
        raise InvalidInput(
            f"--sticky-header {header!r} is not an HTTP header name: use letters, digits and "
            "!#$%&'*+-.^_`|~ only"
        )


@contextlib.contextmanager
def _live(console: Console, first: Any) -> Iterator[Live]:
    from rich.live import Live

    try:
        with Live(first, console=console) as live:
            yield live
    finally:
        if not console.is_terminal:
            console.line()  # Rich ends the last frame with a newline only on a terminal


def gateway(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8000,
    isolated: Annotated[
        bool, typer.Option(help="Run each model version in its own worker process.")
    ] = False,
    trust: Annotated[
        bool,
        typer.Option(help="Serve models whose format runs code when loaded (cloudpickle)."),
    ] = False,
    max_body: Annotated[
        int, typer.Option(help="Largest request body accepted, in bytes (larger: 413).")
    ] = 10 * 1024 * 1024,
    log_level: Annotated[
        str, typer.Option(help=f"uvicorn's log level: {', '.join(LOG_LEVELS)}.")
    ] = "warning",
) -> None:
    """Serve every endpoint in the store; endpoint and rollout changes apply within a second."""
    from shipyard.gateway.server import serve

    if max_body <= 0:
        raise InvalidInput("--max-body must be a positive number of bytes")
    if log_level.lower() not in LOG_LEVELS:
        raise InvalidInput(f"--log-level must be one of {', '.join(LOG_LEVELS)}; got {log_level!r}")
    require_store()  # a gateway on a store that is not there would serve nothing, forever
    if host not in ("127.0.0.1", "localhost", "::1"):
        render.print_notice(
            f"listening on {host}: the gateway has no authentication; put it behind one"
        )
    serve(
        host, port, trust=trust, isolated=isolated, max_body=max_body, log_level=log_level.lower()
    )


# -- endpoints -----------------------------------------------------------------------------


@endpoints_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The endpoint's name (part of its URLs).")],
    model: Annotated[str, typer.Option("--model", "-m", help=MODEL_HELP)],
    description: Annotated[str, typer.Option(help="What the endpoint is for.")] = "",
    sticky_header: Annotated[
        str | None,
        typer.Option(help="Route each client by this request header (same client, same version)."),
    ] = None,
    log_sample: Annotated[
        float, typer.Option(help="Share of requests written to the prediction log.")
    ] = 1.0,
) -> None:
    """Create an endpoint serving a model version (an alias is resolved now)."""
    from shipyard.gateway import api

    _check_header_name(sticky_header)
    endpoint = api.create_endpoint(
        name, model, description=description, sticky_header=sticky_header, log_sample=log_sample
    )
    render.out().print(f"endpoint {endpoint.name} serves {endpoint.primary.label}")


@endpoints_app.command("update")
def update(
    name: Annotated[str, typer.Argument(help="The endpoint.")],
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    sticky_header: Annotated[
        str | None, typer.Option(help="Route by this header ('' turns sticky routing off).")
    ] = None,
    log_sample: Annotated[float | None, typer.Option(help="Share of requests logged.")] = None,
) -> None:
    """Change an endpoint's description, sticky header or log sampling."""
    from shipyard.gateway import api

    _check_header_name(sticky_header)
    require_store()
    endpoint = api.update_endpoint(
        name, description=description, sticky_header=sticky_header, log_sample=log_sample
    )
    render.print_json(endpoint.config)


@endpoints_app.command("ls")
def list_endpoints(
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List endpoints with their deployments and any rollout in progress."""
    store = _store()
    endpoints = store.list_endpoints()
    active = {r.endpoint: r for r in store.list_rollouts(active_only=True)}
    if as_json:
        render.print_json(
            [
                {**e.to_dict(), "rollout": active[e.name].to_dict() if e.name in active else None}
                for e in endpoints
            ]
        )
        return
    shown = endpoints_table(endpoints, active) if endpoints else Text("no endpoints", style="dim")
    render.out().print(shown)


@endpoints_app.command("status")
def status(
    name: Annotated[str, typer.Argument(help="The endpoint.")],
    window: Annotated[str, typer.Option(help="Figures over this much time.")] = "60s",
    watch: Annotated[bool, typer.Option(help="Refresh every second until Ctrl-C.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Versions, weights, req/s, errors, p50/p99 and agreement; the rollout and its analysis."""
    from shipyard.gateway import api

    seconds = api.parse_duration(window, "window")
    require_store()
    if as_json:
        render.print_json(api.status(name, window=seconds))
        return
    console = render.out()
    if not watch:
        console.print(status_view(api.status(name, window=seconds)))
        return
    with _live(console, status_view(api.status(name, window=seconds))) as live:
        try:
            while True:
                time.sleep(1)
                live.update(status_view(api.status(name, window=seconds)))
        except KeyboardInterrupt:
            pass


@endpoints_app.command("rollback")
def rollback(name: Annotated[str, typer.Argument(help="The endpoint.")]) -> None:
    """Make the previous primary the primary again (it stays warm after a rollout)."""
    from shipyard.gateway import api

    require_store()
    endpoint = api.rollback(name)
    render.out().print(f"endpoint {name} serves {endpoint.primary.label} again")


@endpoints_app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="The endpoint.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete an endpoint (its events and prediction logs stay)."""
    from shipyard.tracking.models import current_user

    store = _store()
    store.get_endpoint(name)  # a mistyped name is NotFound before any prompt
    if not yes:
        if not sys.stdin.isatty():  # no one to answer: the prompt would only fail
            raise InvalidInput("pass --yes to delete without a prompt")
        typer.confirm(f"delete endpoint {name}?", abort=True)
    store.delete_endpoint(name, actor=current_user())
    render.out().print(f"endpoint {name} deleted")


@endpoints_app.command("events")
def events(
    name: Annotated[str, typer.Argument(help="The endpoint.")],
    limit: Annotated[int, typer.Option(help="How many of the newest.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """What happened to an endpoint: creations, rollout steps, rollbacks, alias moves."""
    store = _store()
    found = store.list_events(name, limit=_positive(limit, "--limit"))
    if not found:
        store.get_endpoint(name)  # a mistyped name is NotFound; a deleted one keeps its events
    if as_json:
        render.print_json([e.to_dict() for e in found])
        return
    t = render.table("time", "event", "message", "by")
    for e in found:
        t.add_row(render.format_time(e.time), e.kind, e.message, e.actor)
    render.out().print(t if found else Text("no events", style="dim"))


@endpoints_app.command("logs")
def logs(
    name: Annotated[str, typer.Argument(help="The endpoint.")],
    last: Annotated[int, typer.Option("--last", "-n", help="How many of the newest rows.")] = 20,
    tail: Annotated[bool, typer.Option("--tail", "-f", help="Keep printing new rows.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Prediction logs: request id, time, version, latency, inputs and outputs."""
    from shipyard.gateway.logs import follow_logs, read_logs
    from shipyard.registry.api import current_tracker

    if last < 0:
        raise InvalidInput("--last must be 0 or more")
    store = _store()
    blobs = current_tracker().blobs
    if not store.list_prediction_logs(name, limit=1):
        store.get_endpoint(name)  # a mistyped name is NotFound, not "no rows"
        if not as_json:
            render.out().print(Text("no prediction logs yet", style="dim"))
        if not tail:
            return
    if not tail:
        frame, _ = read_logs(store, blobs, name, last=last)
        _print_logs(frame, as_json)
        return
    try:
        for frame in follow_logs(store, blobs, name, last=last):
            _print_logs(frame, as_json)
    except KeyboardInterrupt:
        pass


def _print_logs(frame: Any, as_json: bool) -> None:
    import json

    console = render.out()
    for row in frame.to_dict("records"):
        if as_json:
            record = json.dumps(log_record(row), allow_nan=False, default=str)
            console.print(record, markup=False, soft_wrap=True)
        else:
            console.print(log_line(row), soft_wrap=True)


# -- deploy and rollouts -------------------------------------------------------------------


def deploy(
    endpoint: Annotated[str, typer.Argument(help="The endpoint to deploy to.")],
    model: Annotated[str, typer.Option("--model", "-m", help=MODEL_HELP)],
    strategy: Annotated[str, typer.Option(help="canary, shadow or blue-green.")] = "canary",
    steps: Annotated[
        str, typer.Option(help="Canary: its share of traffic per step, in %.")
    ] = "10,50,100",
    interval: Annotated[
        str, typer.Option(help="Time per canary step; blue-green: watched after the switch.")
    ] = "60s",
    duration: Annotated[str, typer.Option(help="Shadow: how long it runs.")] = "10m",
    max_error_rate: Annotated[float, typer.Option(help="Most errors allowed, as a share.")] = 0.01,
    max_p99_ms: Annotated[float | None, typer.Option(help="Slowest p99 allowed, in ms.")] = None,
    max_p50_ms: Annotated[float | None, typer.Option(help="Slowest p50 allowed, in ms.")] = None,
    max_prediction_shift: Annotated[
        float,
        typer.Option(
            help="Largest shift of predictions vs the primary (PSI; classes: share moved)."
        ),
    ] = 0.2,
    min_agreement: Annotated[
        float | None, typer.Option(help="Shadow: least share of answers equal to the primary's.")
    ] = None,
    min_requests: Annotated[int, typer.Option(help="Requests a step needs to be judged.")] = 100,
    max_wait: Annotated[
        int, typer.Option(help="Extra intervals a step short of requests waits, then pauses.")
    ] = 3,
    set_alias: Annotated[
        str | None, typer.Option(help="Move this registry alias to the version when promoted.")
    ] = None,
    allow_signature_change: Annotated[
        bool,
        typer.Option(help="Deploy a version whose signature refuses requests the primary takes."),
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            help="Follow the rollout until it ends or pauses (exit 1 unless it succeeded)."
        ),
    ] = False,
) -> None:
    """Roll a model version out to an endpoint by canary, shadow or blue-green."""
    from shipyard.gateway import api

    rollout = api.deploy(
        endpoint,
        model,
        strategy=strategy,
        steps=steps,
        interval=interval,
        duration=duration,
        max_error_rate=max_error_rate,
        max_p99_ms=max_p99_ms,
        max_p50_ms=max_p50_ms,
        max_prediction_shift=max_prediction_shift,
        min_agreement=min_agreement,
        min_requests=min_requests,
        max_wait=max_wait,
        set_alias=set_alias,
        allow_signature_change=allow_signature_change,
    )
    console = render.out()
    console.print(rollout_line(rollout.to_dict()))
    if not _store(create=True).list_gateways(seen_since=time.time() - 10):
        render.print_notice(
            "no gateway is running on this store: start one with `shipyard gateway`"
        )
    if not wait:
        console.print(f"follow it with: shipyard endpoints status {endpoint} --watch")
        return
    _follow(endpoint, rollout.id)


NO_GATEWAY_S = 30


def _follow(endpoint: str, rollout_id: int) -> None:
    """A live status until the rollout ends or pauses (a paused one waits for a person, so a
    CI job would hang); exit 1 unless it succeeded."""
    from shipyard.gateway import api

    store = _store(create=True)
    console = render.out()
    last_gateway = time.monotonic()
    alone = False
    with _live(console, status_view(api.status(endpoint))) as live:
        while True:
            time.sleep(1)
            rollout = store.get_rollout(rollout_id)
            live.update(status_view(api.status(endpoint)))
            if rollout.state != "running":
                break
            if store.list_gateways(seen_since=time.time() - 10):
                last_gateway = time.monotonic()
            elif time.monotonic() - last_gateway > NO_GATEWAY_S:
                alone = True  # gateways move rollouts: with none, this one would never end
                break
    console.print(rollout_line(rollout.to_dict()))
    if alone:
        render.print_error(
            f"no gateway has run on this store for {NO_GATEWAY_S}s, so the rollout cannot "
            "move; start one (shipyard gateway) and follow it with shipyard endpoints status "
            f"{endpoint} --watch"
        )
        raise typer.Exit(1)
    if rollout.state != "succeeded":
        raise typer.Exit(1)


def _rollout_command(action: str, doc: str) -> None:
    def command(endpoint: Annotated[str, typer.Argument(help="The endpoint.")]) -> None:
        from shipyard.gateway import api

        require_store()
        rollout = getattr(api, action)(endpoint)
        render.out().print(rollout_line(rollout.to_dict()))

    command.__doc__ = doc
    rollouts_app.command(action)(command)


_rollout_command("pause", "Hold the rollout at its current step (weights stay as they are).")
_rollout_command("resume", "Resume a paused rollout; its step starts over with fresh figures.")
_rollout_command("promote", "Finish now: the candidate becomes the primary, no more analysis.")
_rollout_command("abort", "Stop the rollout and send all traffic back to the primary.")


@rollouts_app.command("ls")
def list_rollouts(
    endpoint: Annotated[str | None, typer.Argument(help="Only this endpoint's.")] = None,
    limit: Annotated[int, typer.Option(help="How many of the newest.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Rollouts, newest first."""
    store = _store()
    found = store.list_rollouts(endpoint, limit=_positive(limit, "--limit"))
    if not found and endpoint is not None:
        store.get_endpoint(endpoint)  # a mistyped name is NotFound, not "no rollouts"
    if as_json:
        render.print_json([r.to_dict() for r in found])
        return
    if not found:
        render.out().print(Text("no rollouts", style="dim"))
        return
    candidates = {r.candidate_id: store.get_deployment(r.candidate_id).label for r in found}
    render.out().print(rollouts_table(found, candidates))


@rollouts_app.command("show")
def show_rollout(
    rollout_id: Annotated[int, typer.Argument(help="The rollout's id.")],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """A rollout with every analysis it made: each figure beside its limit."""
    store = _store()
    rollout = store.get_rollout(rollout_id)
    analyses = store.list_analyses(rollout_id)
    if as_json:
        render.print_json({**rollout.to_dict(), "analyses": [a.to_dict() for a in analyses]})
        return
    console = render.out()
    console.print(rollout_line(rollout.to_dict()))
    for a in analyses:
        console.print(analysis_heading(a))
        console.print(analysis_table(a))
