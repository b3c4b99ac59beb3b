"""`shipyard gateway`, `shipyard endpoints ...`, `shipyard deploy` and `shipyard rollouts ...`:
serving models and rolling new versions out safely."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.text import Text

from shipyard.cli import render
from shipyard.errors import InvalidInput

endpoints_app = typer.Typer(
    help="Inference endpoints: create, inspect, roll back, read prediction logs.",
    no_args_is_help=True,
)
rollouts_app = typer.Typer(
    help="Rollouts in progress: pause, resume, promote or abort them.", no_args_is_help=True
)

JSON_HELP = "Print JSON instead of a table."
MODEL_HELP = "A model version: NAME/VERSION or NAME@ALIAS (models:/... works too)."
ROLE_STYLES = {"primary": "bold green", "canary": "yellow", "shadow": "cyan", "standby": "dim"}
STATE_STYLES = {
    "running": "bold blue",
    "paused": "yellow",
    "succeeded": "green",
    "failed": "bold red",
    "aborted": "yellow",
}


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
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "warning",
) -> None:
    """Serve every endpoint in the store; endpoint and rollout changes apply within a second."""
    from shipyard.gateway.server import serve

    if host not in ("127.0.0.1", "localhost", "::1"):
        render.print_notice(
            f"listening on {host}: the gateway has no authentication; put it behind one"
        )
    if max_body <= 0:
        raise InvalidInput("--max-body must be a positive number of bytes")
    serve(host, port, trust=trust, isolated=isolated, max_body=max_body, log_level=log_level)


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

    endpoint = api.update_endpoint(
        name, description=description, sticky_header=sticky_header, log_sample=log_sample
    )
    render.print_json(endpoint.config)


@endpoints_app.command("ls")
def list_endpoints(
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List endpoints with their deployments and any rollout in progress."""
    from shipyard.registry.api import current_tracker

    store = current_tracker().store
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
    t = render.table("endpoint", "primary", "others", "rollout", "updated")
    for e in endpoints:
        others = ", ".join(
            f"{d.label} {d.role}" + (f" {d.weight:.0%}" if d.weight else "")
            for d in e.deployments
            if d.role != "primary"
        )
        rollout = active.get(e.name)
        t.add_row(
            e.name,
            e.primary.label,
            others or "-",
            f"{rollout.id} {rollout.strategy} {rollout.state}" if rollout else "-",
            render.format_time(e.updated_at),
        )
    render.out().print(t if endpoints else Text("no endpoints", style="dim"))


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
    if as_json:
        render.print_json(api.status(name, window=seconds))
        return
    if not watch:
        render.out().print(status_view(api.status(name, window=seconds)))
        return
    from rich.live import Live

    with Live(status_view(api.status(name, window=seconds)), console=render.out()) as live:
        try:
            while True:
                time.sleep(1)
                live.update(status_view(api.status(name, window=seconds)))
        except KeyboardInterrupt:
            pass


def status_view(data: dict[str, Any]) -> Any:
    from rich.console import Group

    t = render.table(
        "version", "role", "weight", "req/s", "errors", "p50 ms", "p99 ms", "agree", "gateways"
    )
    for d in data["deployments"]:
        f = d["figures"]
        rate = f.get("error_rate")
        agreement = f.get("agreement")
        t.add_row(
            d["model"],
            Text(d["role"], style=ROLE_STYLES.get(d["role"], "")),
            f"{d['weight']:.0%}",
            f"{f['requests_per_s']:.1f}",
            "-" if rate is None else f"{f['errors']} ({rate:.1%})",
            render.format_number(f.get("p50_ms")),
            render.format_number(f.get("p99_ms")),
            "-" if agreement is None else f"{agreement:.1%}",
            ", ".join(f"{s}" for s in d["gateways"].values()) or "no gateway",
        )
    parts: list[Any] = [
        Text(f"endpoint {data['endpoint']['name']} (last {data['window_s']:g}s)", style="bold"),
        t,
    ]
    rollout = data.get("rollout")
    if rollout:
        parts.append(rollout_line(rollout))
        analyses = data.get("analyses") or []
        if analyses:
            last = analyses[-1]
            parts.append(
                Text(
                    f"  last analysis (step {last['step'] + 1}): {last['outcome']}: "
                    f"{last['data'].get('reason', '')}"
                )
            )
    if not data["gateways"]:
        parts.append(Text("no gateway is running on this store (shipyard gateway)", style="yellow"))
    return Group(*parts)


def rollout_line(rollout: dict[str, Any]) -> Text:
    spec = rollout["spec"]
    text = Text(f"rollout {rollout['id']} ({rollout['strategy']}): ")
    text.append(rollout["state"], style=STATE_STYLES.get(rollout["state"], ""))
    if rollout["strategy"] == "canary":
        steps = spec["steps"]
        text.append(
            f", step {rollout['step'] + 1}/{len(steps)} at {steps[rollout['step']]:.0%}"
            + ("" if rollout["step_started_at"] else " (waiting for the candidate to load)")
        )
    if rollout.get("reason"):
        text.append(f" — {rollout['reason']}")
    return text


@endpoints_app.command("rollback")
def rollback(name: Annotated[str, typer.Argument(help="The endpoint.")]) -> None:
    """Make the previous primary the primary again (it stays warm after a rollout)."""
    from shipyard.gateway import api

    endpoint = api.rollback(name)
    render.out().print(f"endpoint {name} serves {endpoint.primary.label} again")


@endpoints_app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="The endpoint.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete an endpoint (its events and prediction logs stay)."""
    from shipyard.registry.api import current_tracker
    from shipyard.tracking.models import current_user

    if not yes:
        typer.confirm(f"delete endpoint {name}?", abort=True)
    current_tracker().store.delete_endpoint(name, actor=current_user())
    render.out().print(f"endpoint {name} deleted")


@endpoints_app.command("events")
def events(
    name: Annotated[str, typer.Argument(help="The endpoint.")],
    limit: Annotated[int, typer.Option(help="How many of the newest.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """What happened to an endpoint: creations, rollout steps, rollbacks, alias moves."""
    from shipyard.registry.api import current_tracker

    found = current_tracker().store.list_events(name, limit=limit)
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

    tracker = current_tracker()
    if not tracker.store.list_prediction_logs(name, limit=1):
        tracker.store.get_endpoint(name)  # a mistyped name is NotFound, not "no rows"
    if last < 0:
        raise InvalidInput("--last must be 0 or more")
    if not tail:
        frame, _ = read_logs(tracker.store, tracker.blobs, name, last=last)
        _print_logs(frame, as_json)
        return
    try:
        for frame in follow_logs(tracker.store, tracker.blobs, name, last=last):
            _print_logs(frame, as_json)
    except KeyboardInterrupt:
        pass


def _print_logs(frame: Any, as_json: bool) -> None:
    import json

    console = render.out()
    for row in frame.itertuples(index=False):
        if as_json:
            record = {k: (str(v) if k == "time" else v) for k, v in row._asdict().items()}
            console.print(json.dumps(record, default=str), markup=False, soft_wrap=True)
            continue
        status = Text(str(row.status), style="green" if row.status == 200 else "bold red")
        line = Text(f"{row.time:%Y-%m-%d %H:%M:%S.%f}"[:-3] + f" {row.request_id[:12]} ")
        line.append(f"{row.version} ({row.role}) ").append(status)
        line.append(f" {row.latency_ms:.2f} ms  in={row.inputs} out={row.outputs}")
        if isinstance(row.error, str) and row.error:
            line.append(f"  {row.error}", style="red")
        console.print(line, soft_wrap=True)


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
    wait: Annotated[
        bool, typer.Option(help="Follow the rollout until it ends (exit 1 if it fails).")
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
    )
    console = render.out()
    console.print(rollout_line(rollout.to_dict()))
    from shipyard.registry.api import current_tracker

    if not current_tracker().store.list_gateways(seen_since=time.time() - 10):
        render.print_notice(
            "no gateway is running on this store: start one with `shipyard gateway`"
        )
    if not wait:
        console.print(f"follow it with: shipyard endpoints status {endpoint} --watch")
        return
    _follow(endpoint, rollout.id)


def _follow(endpoint: str, rollout_id: int) -> None:
    from rich.live import Live

    from shipyard.gateway import api
    from shipyard.registry.api import current_tracker

    store = current_tracker().store
    with Live(status_view(api.status(endpoint)), console=render.out()) as live:
        while True:
            time.sleep(1)
            live.update(status_view(api.status(endpoint)))
            rollout = store.get_rollout(rollout_id)
            if rollout.state not in ("running", "paused"):
                break
    render.out().print(rollout_line(rollout.to_dict()))
    if rollout.state != "succeeded":
        raise typer.Exit(1)


def _rollout_command(action: str, doc: str) -> None:
    def command(endpoint: Annotated[str, typer.Argument(help="The endpoint.")]) -> None:
        from shipyard.gateway import api

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
    from shipyard.registry.api import current_tracker

    store = current_tracker().store
    found = store.list_rollouts(endpoint, limit=limit)
    if as_json:
        render.print_json([r.to_dict() for r in found])
        return
    t = render.table("id", "endpoint", "candidate", "strategy", "state", "started", "reason")
    for r in found:
        candidate = store.get_deployment(r.candidate_id).label
        t.add_row(
            str(r.id),
            r.endpoint,
            candidate,
            r.strategy,
            Text(r.state, style=STATE_STYLES.get(r.state, "")),
            render.format_time(r.created_at),
            r.reason,
        )
    render.out().print(t if found else Text("no rollouts", style="dim"))


@rollouts_app.command("show")
def show_rollout(
    rollout_id: Annotated[int, typer.Argument(help="The rollout's id.")],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """A rollout with every analysis it made: each figure beside its limit."""
    from shipyard.registry.api import current_tracker

    store = current_tracker().store
    rollout = store.get_rollout(rollout_id)
    analyses = store.list_analyses(rollout_id)
    if as_json:
        render.print_json({**rollout.to_dict(), "analyses": [a.to_dict() for a in analyses]})
        return
    console = render.out()
    console.print(rollout_line(rollout.to_dict()))
    for a in analyses:
        t = render.table("figure", "candidate", "baseline", "limit", "ok")
        for f in a.data.get("figures", []):
            ok = {True: Text("yes", style="green"), False: Text("no", style="bold red")}.get(
                f.get("passed"), Text("not judged", style="dim")
            )
            t.add_row(
                f["name"],
                render.format_number(f.get("candidate")),
                render.format_number(f.get("baseline")),
                render.format_number(f.get("limit")),
                ok,
            )
        console.print(
            Text(
                f"step {a.step + 1} at {render.iso_time(a.time)}: {a.outcome} — "
                f"{a.data.get('reason', '')}"
            )
        )
        console.print(t)
