"""How the serving commands show endpoints, rollouts, analyses and prediction logs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.text import Text

from shipyard.cli import render

if TYPE_CHECKING:
    from rich.console import Group
    from rich.table import Table

    from shipyard.store.entities import AnalysisRecord, Endpoint, Rollout

ROLE_STYLES = {"primary": "bold green", "canary": "yellow", "shadow": "cyan", "standby": "dim"}
STATE_STYLES = {
    "running": "bold blue",
    "paused": "yellow",
    "succeeded": "green",
    "failed": "bold red",
    "aborted": "yellow",
}
ACTIVE_STATES = ("running", "paused")


def format_ms(value: float | None) -> str:
    """A latency in milliseconds with 2 decimals; ``-`` when there is none."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.2f}"


# -- rollouts -------------------------------------------------------------------------------


def rollout_line(rollout: Mapping[str, Any]) -> Text:
    """``rollout 3 (canary): running, step 2/3 at 50% — reason``: where the rollout stands
    is said only while it can still move (running or paused)."""
    text = Text(f"rollout {rollout['id']} ({rollout['strategy']}): ")
    text.append(rollout["state"], style=STATE_STYLES.get(rollout["state"], ""))
    if rollout["state"] in ACTIVE_STATES:
        text.append(_progress(rollout))
    if rollout.get("reason"):
        text.append(f" — {rollout['reason']}")
    return text


def _progress(rollout: Mapping[str, Any]) -> str:
    if rollout["strategy"] == "blue-green":
        # step 0: loading on every gateway; step 1: it took all traffic and is being watched
        return ", switched" if rollout["step"] >= 1 else ", warming up on every gateway"
    where = ""
    if rollout["strategy"] == "canary":
        steps, step = rollout["spec"]["steps"], rollout["step"]
        where = f", step {step + 1}/{len(steps)} at {steps[step]:.0%}"
    loaded = rollout["step_started_at"] is not None
    return where + ("" if loaded else " (waiting for the candidate to load)")


def rollouts_table(rollouts: Sequence[Rollout], candidates: Mapping[int, str]) -> Table:
    """One row per rollout; ``candidates`` maps deployment ids to their ``NAME/N``."""
    t = render.table("id", "endpoint", "candidate", "strategy", "state", "started", "reason")
    for r in rollouts:
        t.add_row(
            str(r.id),
            r.endpoint,
            candidates[r.candidate_id],
            r.strategy,
            Text(r.state, style=STATE_STYLES.get(r.state, "")),
            render.format_time(r.created_at),
            r.reason,
        )
    return t


def analysis_heading(a: AnalysisRecord) -> Text:
    return Text(
        f"step {a.step + 1} at {render.iso_time(a.time)}: {a.outcome} — {a.data.get('reason', '')}"
    )


def analysis_table(a: AnalysisRecord) -> Table:
    """Each figure an analysis judged, beside the baseline's and its limit."""
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
    return t


# -- endpoints ------------------------------------------------------------------------------


def endpoints_table(endpoints: Sequence[Endpoint], active: Mapping[str, Rollout]) -> Table:
    """Endpoints with their primary, other deployments, rollout in progress and last change."""
    t = render.table("endpoint", "primary", "others", "rollout", "updated")
    for e in endpoints:
        others = ", ".join(
            f"{d.label} {d.role}" + (f" {d.weight:.0%}" if d.weight else "")
            for d in e.deployments
            if d.role != "primary"
        )
        rollout = active.get(e.name)
        # rollouts and rollbacks change the deployments' roles, not the endpoint's row
        updated = max([e.updated_at, *(d.updated_at for d in e.deployments)])
        t.add_row(
            e.name,
            e.primary.label,
            others or "-",
            f"{rollout.id} {rollout.strategy} {rollout.state}" if rollout else "-",
            render.format_time(updated),
        )
    return t


def status_view(data: Mapping[str, Any]) -> Group:
    """What ``api.status`` found, as a table of deployments and the rollout below it."""
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
            format_ms(f.get("p50_ms")),
            format_ms(f.get("p99_ms")),
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


# -- prediction logs ------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    """None, NaN (pandas 3 reads a null string as NaN) and pandas' NA and NaT."""
    if value is None:
        return True
    if isinstance(value, float):
        return not math.isfinite(value)
    return type(value).__name__ in ("NAType", "NaTType")


def log_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A prediction log row as JSON data: missing values become null, the time a string."""
    return {k: None if _missing(v) else str(v) if k == "time" else v for k, v in row.items()}


def log_line(row: Mapping[str, Any]) -> Text:
    """One prediction log row as a line: time, full request id, version, status, latency."""

    def shown(value: Any) -> str:
        return "-" if _missing(value) else str(value)

    ok = row["status"] == 200
    line = Text(f"{row['time']:%Y-%m-%d %H:%M:%S.%f}"[:-3] + f" {row['request_id']} ")
    line.append(f"{row['version']} ({row['role']}) ")
    line.append(str(row["status"]), style="green" if ok else "bold red")
    line.append(
        f" {format_ms(row['latency_ms'])} ms  in={shown(row['inputs'])} out={shown(row['outputs'])}"
    )
    if isinstance(row["error"], str) and row["error"]:
        line.append(f"  {row['error']}", style="red")
    return line
