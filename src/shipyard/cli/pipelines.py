"""`shipyard pipeline ...`: run a pipeline with a live view of its steps, list pipeline runs,
and show one run's DAG with each step's status, duration and where cached outputs came from.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.pipeline_loading import load_pipeline, parse_params, project_imports
from shipyard.cli.runs import RUN_ARG_HELP, open_cli_store, resolve_run
from shipyard.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from rich.console import Console, Group
    from rich.table import Table

    from shipyard.pipelines.runner import PipelineResult, StepOutcome
    from shipyard.store.base import Store
    from shipyard.store.entities import Run

app = typer.Typer(
    help="Run pipelines, list pipeline runs, and show a run's DAG with each step's status.",
    no_args_is_help=True,
)

PIPELINE_TAG = "shipyard.pipeline"
DAG_PATH = "shipyard/pipeline.json"
JSON_HELP = "Print JSON instead of a table."
_GLYPHS = {"finished": "✓", "cached": "↺", "failed": "✗", "killed": "✗", "running": "…"}
MAX_INDENT = 12  # levels; deeper steps line up at the last one


# -- progress while it runs ------------------------------------------------------------------


class Progress:
    """The steps as they start and end: a live table on a terminal, otherwise one line per
    step that ended. Called by the runner as its ``on_event`` hook."""

    def __init__(self, console: Console, name: str) -> None:
        self.console = console
        self.name = name
        self.lock = threading.Lock()
        self.started: dict[str, tuple[str, float]] = {}  # node id -> (step name, start)
        self.ended: dict[str, StepOutcome] = {}
        self.live: Any = None

    def __enter__(self) -> Progress:
        if self.console.is_terminal:
            from rich.live import Live

            # Captured stderr (a failing step's traceback) prints above the view only when it
            # goes to the same terminal; redirected, it stays where the user sent it.
            self.live = Live(
                self, console=self.console, refresh_per_second=8, transient=True,
                redirect_stderr=sys.stderr.isatty(),
            )  # fmt: skip
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def __call__(self, event: str, subject: Any) -> None:
        with self.lock:
            if event == "start":
                self.started[subject.id] = (subject.step.name, time.monotonic())
            elif event == "end":
                self.ended[subject.node] = subject
                self.started.setdefault(subject.node, (subject.step, time.monotonic()))
        if event == "end" and self.live is None:
            self.console.print(_progress_line(subject))

    def __rich__(self) -> Group:
        from rich.console import Group
        from rich.spinner import Spinner

        t = render.table("step", "status", "duration")
        t.columns[2].justify = "right"
        now = time.monotonic()
        with self.lock:
            rows = [(node, started, self.ended.get(node)) for node, started in self.started.items()]
        for node, (_, start), outcome in rows:
            if outcome is None:
                status: Any = Spinner("dots", Text("running", style="bold blue"))
                t.add_row(node, status, render.format_duration(now - start))
            else:
                shown = outcome.duration if outcome.run_id else None
                t.add_row(node, render.status_text(outcome.status), render.format_duration(shown))
        done = sum(1 for *_, outcome in rows if outcome is not None)
        head = f"pipeline {self.name}: {done} done, {len(rows) - done} running"
        return Group(Text(head, style="dim"), t)


def _progress_line(outcome: StepOutcome) -> Text:
    line = Text.assemble(f"{outcome.node}: ", render.status_text(outcome.status))
    if outcome.status == "finished":
        line.append(f" in {render.format_duration(outcome.duration)}")
    elif outcome.status == "cached" and outcome.cached_from:
        line.append(f" (from run {render.short_id(outcome.cached_from)})")
    elif outcome.status == "skipped" and outcome.error:
        line.append(f" ({outcome.error})")
    elif outcome.error:
        line.append(f": {error_line(outcome.error)}")
    return line


# -- reading pipeline runs back ------------------------------------------------------------


def error_line(error: str | None) -> str | None:
    """The line that says what went wrong: ``ValueError: bad data`` out of a traceback."""
    if not error:
        return None
    lines = error.strip().splitlines()
    if lines and lines[0].startswith("Traceback"):
        frames = [i for i, line in enumerate(lines) if line.startswith(" ")]
        rest = lines[frames[-1] + 1 :] if frames else lines[1:]
        lines = [line for line in rest if line.strip()] or lines
    return lines[0].strip() if lines else None


def read_dag(store: Store, run_id: str) -> list[dict[str, Any]] | None:
    """The nodes of a pipeline run's DAG (id, step, upstream), from its artifact."""
    from shipyard.cli.artifacts import open_blobs

    entries = store.list_artifacts(run_id, DAG_PATH)
    if not entries:
        return None
    try:
        data = json.loads(open_blobs().read_bytes(entries[0].digest))
    except NotFound:
        render.print_notice(f"the DAG of run {run_id} is missing from the artifact store")
        return None
    return list(data.get("nodes", []))


def search_all(store: Store, filter: str) -> list[Run]:
    """Every run the filter matches, deleted ones too, newest first."""
    runs: list[Run] = []
    token = None
    while True:
        page = store.search_runs(None, filter, [], 50_000, token, True)
        runs.extend(page.runs)
        token = page.next_page_token
        if not token:
            return runs


def children_of(store: Store, run_ids: Sequence[str]) -> list[Run]:
    """The child runs (steps) of these runs."""
    found: list[Run] = []
    for i in range(0, len(run_ids), 500):
        # ids come from the store: 32 hex characters, safe to quote
        quoted = ", ".join(f"'{run_id}'" for run_id in run_ids[i : i + 500])
        found.extend(search_all(store, f"parent_id IN ({quoted})"))
    return found


def step_status(child: Run | None, pipeline_run: Run) -> str:
    if child is None:
        return {"failed": "skipped", "running": "pending"}.get(pipeline_run.status, "not run")
    if "shipyard.cached_from" in child.tags:
        return "cached"
    return child.status


def check_pipeline_run(record: Run) -> None:
    if PIPELINE_TAG in record.tags:
        return
    if record.parent_id and "shipyard.step" in record.tags:
        raise InvalidInput(
            f"run {record.id} is step {record.name!r} of pipeline run {record.parent_id}; "
            "show that one"
        )
    raise InvalidInput(f"run {record.id} ({record.name}) is not a pipeline run")


def pipeline_steps(store: Store, record: Run) -> list[dict[str, Any]]:
    """One record per node of a pipeline run's DAG, with its step run's status and timing."""
    runs: dict[str, Run] = {}
    for run in sorted(children_of(store, [record.id]), key=lambda r: r.start_time):
        runs[run.name] = run  # a node run again (resumed) counts with its last run
    nodes = read_dag(store, record.id)
    if nodes is None:  # no DAG stored: the step runs, without their edges
        nodes = [
            {"id": name, "step": run.tags.get("shipyard.step"), "upstream": []}
            for name, run in runs.items()
        ]
    steps: list[dict[str, Any]] = []
    for node in nodes:
        child = runs.get(node["id"])
        steps.append(
            {
                "node": node["id"],
                "step": node.get("step"),
                "upstream": list(node.get("upstream", [])),
                "status": step_status(child, record),
                "run_id": child.id if child else None,
                "cached_from": child.tags.get("shipyard.cached_from") if child else None,
                "cache_key": child.tags.get("shipyard.cache_key") if child else None,
                "duration": child.duration if child else None,
                "error": error_line(child.error) if child else None,
            }
        )
        if steps[-1]["status"] == "skipped":
            failed = {s["node"] for s in steps if s["status"] in ("failed", "killed", "skipped")}
            blocked = [up for up in steps[-1]["upstream"] if up in failed]
            steps[-1]["error"] = f"upstream failed: {', '.join(blocked)}" if blocked else None
    return steps


# -- pipeline run ----------------------------------------------------------------------------


@app.command("run")
def run_command(
    ref: Annotated[
        str,
        typer.Argument(
            help="The pipeline: MODULE:ATTR (a module importable from here) or FILE.py:ATTR.",
            metavar="MODULE:ATTR",
        ),
    ],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="NAME=VALUE, converted to the parameter's declared type (else read as JSON, "
            "else text); repeatable.",
        ),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Run every step, even unchanged ones.")
    ] = False,
    executor: Annotated[
        str, typer.Option("--executor", help="Where steps run: inline, processes or ray.")
    ] = "inline",
    max_workers: Annotated[
        int | None, typer.Option("--max-workers", help="Steps at once (processes, ray).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run id, status and steps as JSON.")
    ] = False,
) -> None:
    """Run a pipeline: steps as child runs, unchanged ones from the cache. Exit 1 if it failed."""
    with project_imports():
        pipeline = load_pipeline(ref)
        params = parse_params(pipeline, param or [])
        _run_and_report(
            pipeline,
            as_json,
            lambda hook: pipeline.run(
                executor=executor,
                max_workers=max_workers,
                cache=not no_cache,
                on_event=hook,
                **params,
            ),
        )


@app.command("resume")
def resume_command(
    run: Annotated[str, typer.Argument(help="The pipeline run to resume (id or prefix).")],
    ref: Annotated[
        str | None,
        typer.Argument(
            help="MODULE:ATTR of the pipeline, when the one the run recorded cannot be "
            "imported (a pipeline defined in a script run as __main__).",
            metavar="[MODULE:ATTR]",
        ),
    ] = None,
    executor: Annotated[
        str, typer.Option("--executor", help="Where steps run: inline, processes or ray.")
    ] = "inline",
    max_workers: Annotated[
        int | None, typer.Option("--max-workers", help="Steps at once (processes, ray).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run id, status and steps as JSON.")
    ] = False,
) -> None:
    """Run a failed pipeline run again: only the steps that did not finish, and what depends
    on them, run; the others' outputs are reused. Exit 1 if it failed again."""
    with open_cli_store() as store:
        record = resolve_run(store, run)
        check_pipeline_run(record)
    source = ref or record.tags.get("shipyard.pipeline.source", "")
    if not source or source.startswith("__main__:") or "<locals>" in source:
        raise InvalidInput(
            f"run {record.id} recorded its pipeline as {source or 'nothing'!r}, which cannot be "
            "imported again; pass it: shipyard pipeline resume RUN MODULE:ATTR"
        )
    with project_imports():
        pipeline = load_pipeline(source)
        _run_and_report(
            pipeline,
            as_json,
            lambda hook: pipeline.resume(
                record.id, executor=executor, max_workers=max_workers, on_event=hook
            ),
        )


def _run_and_report(pipeline: Any, as_json: bool, call: Any) -> None:
    console = render.out()
    started = time.perf_counter()
    if as_json:
        result = call(None)
    else:
        with Progress(console, pipeline.name) as progress:
            result = call(progress)
    elapsed = time.perf_counter() - started
    outcomes = list(result.steps.values())
    if as_json:
        render.print_json(
            {
                "run_id": result.run_id,
                "pipeline": pipeline.name,
                "status": result.status,
                "steps": [_outcome_record(o) for o in outcomes],
            }
        )
    else:
        console.print(outcomes_table(outcomes))
        cached = sum(o.status == "cached" for o in outcomes)
        console.print(
            Text.assemble(
                f"pipeline {pipeline.name} ",
                render.status_text(result.status),
                f" in {render.format_duration(elapsed)}: {len(outcomes)} steps ({cached} cached),"
                f" run {result.run_id}",
            ),
            soft_wrap=True,
        )
    _exit_if_failed(pipeline.name, result)


def _exit_if_failed(name: str, result: PipelineResult) -> None:
    failed = [o for o in result.steps.values() if o.status == "failed"]
    if not failed:
        return
    what = ", ".join(f"{o.node} ({error_line(o.error)})" for o in failed)
    render.print_error(f"pipeline {name!r} failed: step{'s' * (len(failed) > 1)} {what}")
    raise typer.Exit(1)


def _outcome_record(outcome: StepOutcome) -> dict[str, Any]:
    return {
        "node": outcome.node,
        "step": outcome.step,
        "status": outcome.status,
        "run_id": outcome.run_id,
        "cached_from": outcome.cached_from,
        "cache_key": outcome.cache_key,
        "duration": outcome.duration if outcome.run_id else None,
        "error": error_line(outcome.error),
    }


def outcomes_table(outcomes: Sequence[StepOutcome]) -> Table:
    """step, status, duration, run, cached from (and what went wrong, if anything did)."""
    return steps_table([_outcome_record(o) for o in outcomes])


def steps_table(steps: Sequence[dict[str, Any]]) -> Table:
    notes = any(s["error"] for s in steps)
    t = render.table("step", "status", "duration", "run", "cached from", *(["error"] * notes))
    t.columns[2].justify = "right"
    for s in steps:
        t.add_row(
            s["node"],
            render.status_text(s["status"]),
            render.format_duration(s["duration"]),
            render.short_id(s["run_id"]) if s["run_id"] else "-",
            render.short_id(s["cached_from"]) if s["cached_from"] else "",
            *([Text(s["error"] or "", style="red")] * notes),
        )
    return t


# -- pipeline ls -----------------------------------------------------------------------------


@app.command("ls")
def list_pipeline_runs(
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=50_000, help="Most runs to list.")
    ] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List pipeline runs, newest first, with how many steps ran and how many were cached."""
    with open_cli_store() as store:
        page = store.search_runs(None, f'tags."{PIPELINE_TAG}" IS NOT NULL', [], limit)
        children = children_of(store, [r.id for r in page.runs])
    counts: dict[str, dict[str, int]] = {r.id: {} for r in page.runs}
    for child in children:
        status = "cached" if "shipyard.cached_from" in child.tags else child.status
        tally = counts[child.parent_id or ""]
        tally[status] = tally.get(status, 0) + 1
    rows: list[dict[str, Any]] = [
        {
            "run_id": r.id,
            "pipeline": r.tags[PIPELINE_TAG],
            "status": r.status,
            "start_time": r.start_time,
            "end_time": r.end_time,
            "duration": r.duration,
            "steps": sum(counts[r.id].values()),
            "cached": counts[r.id].get("cached", 0),
            "failed": counts[r.id].get("failed", 0),
        }
        for r in page.runs
    ]
    if as_json:
        render.print_json(rows)
    else:
        t = render.table("run", "pipeline", "status", "started", "duration", "steps", "cached")
        for i in (3, 4, 5, 6):
            t.columns[i].justify = "right"
        for row in rows:
            t.add_row(
                render.short_id(row["run_id"]),
                row["pipeline"],
                render.status_text(row["status"]),
                render.format_time(row["start_time"]),
                render.format_duration(row["duration"]),
                str(row["steps"]),
                str(row["cached"]),
            )
        render.out().print(t if rows else Text("no pipeline runs", style="dim"))
    if page.next_page_token:
        render.print_notice(f"more pipeline runs: raise --limit (now {limit})")


# -- pipeline show ---------------------------------------------------------------------------


@app.command("show")
def show_pipeline_run(
    run: Annotated[str, typer.Argument(help=RUN_ARG_HELP)],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """A pipeline run's DAG: each step with its status, duration, cached-from and error."""
    with open_cli_store() as store:
        record = resolve_run(store, run)
        check_pipeline_run(record)
        steps = pipeline_steps(store, record)
    if as_json:
        render.print_json(
            {
                "run_id": record.id,
                "pipeline": record.tags[PIPELINE_TAG],
                "status": record.status,
                "executor": record.tags.get("shipyard.executor"),
                "resumed_from": record.tags.get("shipyard.resumed_from"),
                "params": record.params,
                "start_time": record.start_time,
                "duration": record.duration,
                "steps": steps,
            }
        )
        return
    console = render.out()
    attributes: list[tuple[str, Any]] = [
        ("pipeline", record.tags[PIPELINE_TAG]),
        ("run", record.id),
        ("status", render.status_text(record.status)),
        ("started", render.iso_time(record.start_time)),
        ("duration", render.format_duration(record.duration)),
        ("executor", record.tags.get("shipyard.executor", "-")),
    ]
    if "shipyard.resumed_from" in record.tags:
        attributes.append(("resumed from", record.tags["shipyard.resumed_from"]))
    if record.params:
        attributes.append(("params", ", ".join(f"{k}={v}" for k, v in record.params.items())))
    console.print(render.key_value_table(attributes))
    render.section(console, "DAG", dag_text(steps))
    render.section(console, "steps", steps_table(steps))


def dag_text(steps: Sequence[dict[str, Any]]) -> Text:
    """The steps in topological order, indented by depth, each with the steps it takes from."""
    depth: dict[str, int] = {}
    out = Text()
    for s in steps:
        depth[s["node"]] = 1 + max((depth.get(up, 0) for up in s["upstream"]), default=-1)
        glyph = _GLYPHS.get(s["status"], "○")
        style = render.STATUS_STYLES.get(s["status"], "dim")
        out.append("  " * min(depth[s["node"]], MAX_INDENT))
        out.append(f"{glyph} ", style=style)
        out.append(s["node"], style="bold")
        if s["upstream"]:
            out.append(f"  ← {', '.join(s['upstream'])}", style="dim")
        out.append("\n")
    out.rstrip()
    return out
