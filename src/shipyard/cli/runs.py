"""`shipyard runs ...`: list, show, compare, plot a metric, delete and restore runs."""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from shipyard.cli import render
from shipyard.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from rich.table import Table

    from shipyard.store.base import Store
    from shipyard.store.entities import Run

app = typer.Typer(
    help="List, inspect, compare, delete and restore runs.",
    no_args_is_help=True,
)

RUN_ARG_HELP = "Run id, or a unique prefix of it (at least 4 hex characters)."
_PREFIX_RE = re.compile(r"[0-9a-f]{4,32}")
MAX_AUTO_COLUMNS = 8
MAX_TEXT_WIDTH = 32  # longer names and param values wrap within their column
# Metric keys whose name says smaller is better; every other metric is maximised.
_LOWER_IS_BETTER = {
    "loss",
    "error",
    "err",
    "mse",
    "rmse",
    "mae",
    "mape",
    "perplexity",
    "ppl",
    "latency",
    "time",
    "duration",
    "seconds",
    "wer",
    "cer",
    "fpr",
    "fnr",
    "nll",
    "runtime",
    "regret",
}


# -- shared helpers (artifacts.py uses them too) ---------------------------------------------


@contextlib.contextmanager
def open_cli_store(create: bool = False) -> Iterator[Store]:
    """The configured store (``--uri`` / SHIPYARD_URI), closed when the command ends.

    Only commands that create something may create a missing SQLite store: anything else in
    the wrong folder would leave an empty ``.shipyard/`` behind and answer "no runs".
    """
    from shipyard.config import get_settings
    from shipyard.store import open_store

    if not create:
        require_store()
    store = open_store(get_settings().store_uri())
    try:
        yield store
    finally:
        store.close()


def require_store() -> None:
    """NotFound unless the configured store exists (a SQLite file; other backends always do).

    Commands that create nothing call it before they touch the store; ``open_cli_store`` does.
    """
    from shipyard.config import get_settings
    from shipyard.store.sql.engine import sqlite_path

    path = sqlite_path(get_settings().store_uri())
    if path is not None and not os.path.exists(path):
        raise NotFound(
            f"no Shipyard store at {path}; run in the folder that holds .shipyard/, "
            "or point --uri / SHIPYARD_URI at the store"
        )


def resolve_run(store: Store, ref: str) -> Run:
    """The run a full id or a unique id prefix names, deleted runs included."""
    prefix = ref.strip().lower()
    # Checked before it reaches the filter, so only hex characters are ever interpolated.
    if not _PREFIX_RE.fullmatch(prefix):
        raise InvalidInput(f"not a run id or id prefix (4 to 32 hex characters): {ref!r}")
    if len(prefix) == 32:
        return store.get_run(prefix)
    page = store.search_runs(None, f"run_id LIKE '{prefix}%'", max_results=6, include_deleted=True)
    if not page.runs:
        raise NotFound(f"no run id starts with {prefix!r}")
    if len(page.runs) > 1:
        shown = ", ".join(f"{r.id} ({r.name})" for r in page.runs[:5])
        more = " and more" if len(page.runs) > 5 else ""
        raise InvalidInput(f"run id prefix {prefix!r} is ambiguous: {shown}{more}")
    return page.runs[0]


def experiment_names(store: Store) -> dict[int, str]:
    return {e.id: e.name for e in store.list_experiments(include_deleted=True)}


def run_record(run: Run, experiments: dict[int, str]) -> dict[str, Any]:
    """``Run.to_dict()`` plus the experiment's name and the duration, for --json."""
    record = run.to_dict()
    record["experiment_name"] = experiments.get(run.experiment_id)
    record["duration"] = run.duration
    return record


# -- runs ls ---------------------------------------------------------------------------------


def pick_columns(runs: Sequence[Run], wanted: str | None) -> list[tuple[str, str]]:
    """(kind, key) pairs to show: those named in ``wanted``, else the most common keys.

    Automatic picks come most important first (metrics and params alternating), so a
    narrow terminal can drop them from the end.
    """
    if wanted:
        return [_column(runs, name.strip()) for name in wanted.split(",") if name.strip()]
    metrics = Counter(k for r in runs for k in r.metrics)
    params = Counter(k for r in runs for k in r.params)
    ranked_m = [k for k, _ in sorted(metrics.items(), key=lambda kv: (-kv[1], kv[0]))]
    ranked_p = [k for k, _ in sorted(params.items(), key=lambda kv: (-kv[1], kv[0]))]
    # Metrics get five places and params three; a side with fewer keys lends the rest.
    n_params = min(len(ranked_p), max(3, MAX_AUTO_COLUMNS - len(ranked_m)))
    n_metrics = min(len(ranked_m), MAX_AUTO_COLUMNS - n_params)
    m = [("metrics", k) for k in ranked_m[:n_metrics]]
    p = [("params", k) for k in ranked_p[:n_params]]
    return [pair for i in range(max(len(m), len(p))) for pair in (m[i : i + 1] + p[i : i + 1])]


def _column(runs: Sequence[Run], name: str) -> tuple[str, str]:
    kind, _, key = name.partition(".")
    if kind in ("metrics", "params", "tags") and key:
        return kind, key
    for kind in ("metrics", "params", "tags"):
        if any(name in getattr(r, kind) for r in runs):
            return kind, name
    return "metrics", name


def _cell(run: Run, kind: str, key: str) -> str:
    if kind == "metrics":
        return render.format_number(run.metrics.get(key))
    return getattr(run, kind).get(key, "")


@app.command("ls")
def list_runs(
    experiment: Annotated[
        list[str] | None,
        typer.Option(
            "--experiment",
            "-e",
            help="Experiment name or id; repeat for several. Default: every active experiment.",
        ),
    ] = None,
    filter: Annotated[
        str,
        typer.Option(
            "--filter",
            "-f",
            help="Filter expression, e.g. \"metrics.acc > 0.9 and params.model = 'rf'\".",
        ),
    ] = "",
    order_by: Annotated[
        list[str] | None,
        typer.Option("--order-by", "-o", help="Sort key, e.g. 'metrics.acc DESC'; repeatable."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=50_000, help="Most runs to list.")
    ] = 50,
    all_: Annotated[bool, typer.Option("--all", help="Include deleted runs.")] = False,
    page_token: Annotated[
        str | None, typer.Option("--page-token", help="Continue from a previous listing's token.")
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            "-c",
            help="Comma-separated keys to show, e.g. "
            "'metrics.acc,params.lr' (bare names: metrics, then params, then tags).",
        ),
    ] = None,
    iso: Annotated[bool, typer.Option("--iso", help="Show start times as ISO 8601 UTC.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of runs.")] = False,
) -> None:
    """List runs, newest first unless --order-by says otherwise."""
    with open_cli_store() as store:
        ids = [store.get_experiment(e).id for e in experiment] if experiment else None
        page = store.search_runs(ids, filter, order_by or [], limit, page_token, all_)
        names = experiment_names(store)
    if as_json:
        render.print_json([run_record(r, names) for r in page.runs])
    else:
        console = render.out()
        picked = pick_columns(page.runs, columns)
        t = runs_table(page.runs, picked, names, iso)
        if console.is_terminal and not columns:
            # Keys picked automatically give way until the table fits: the least common
            # first, and of those the widest.
            while picked and _full_width(console, t) > console.width:
                picked.remove(max(picked[::-1], key=lambda pair: _drop_rank(page.runs, *pair)))
                t = runs_table(page.runs, picked, names, iso)
        else:
            # Columns the user named, and output to a pipe or file, are never cut: the
            # table is printed at its full width.
            console = render.out(width=max(console.width, _full_width(console, t)))
        if page.runs:
            console.print(t)
        else:
            console.print("no runs", style="dim")
    if page.next_page_token:
        render.print_notice(f"more runs: --page-token {page.next_page_token}")


def runs_table(
    runs: Sequence[Run], picked: Sequence[tuple[str, str]], names: dict[int, str], iso: bool
) -> Table:
    """One row per run: attributes, then the picked metrics, then the picked params."""
    ordered = sorted(picked, key=lambda pair: pair[0] != "metrics")
    keys = Counter(key for _, key in ordered)
    t = render.table("run", "name", "experiment", "status", "started", "duration")
    for i in (0, 3, 4, 5):  # short fixed-width cells: names and params give way instead
        t.columns[i].no_wrap = True
    for i in (1, 2):
        t.columns[i].max_width = MAX_TEXT_WIDTH
    for kind, key in ordered:
        header = f"{kind}.{key}" if keys[key] > 1 else key
        if kind == "metrics":
            # a number is never cut: its column is as wide as its widest value
            widest = max((len(_cell(run, kind, key)) for run in runs), default=0)
            t.add_column(
                header, justify="right", style="cyan", no_wrap=True,
                min_width=max(widest, min(len(header), 12)),
            )  # fmt: skip
        else:
            t.add_column(header, style="magenta", overflow="fold", max_width=MAX_TEXT_WIDTH)
    for run in runs:
        status = render.status_text(run.status)
        if run.lifecycle == "deleted":
            status.append(" (deleted)", style="dim")
        t.add_row(
            render.short_id(run.id),
            run.name,
            names.get(run.experiment_id, "?"),
            status,
            render.format_time(run.start_time, iso=iso),
            render.format_duration(run.duration),
            *(_cell(run, kind, key) for kind, key in ordered),
        )
    return t


def _full_width(console: Any, t: Table) -> int:
    from rich.measure import Measurement

    # Measured without the console's limit, which would cap the answer at its width.
    unbounded = console.options.update_width(1_000_000)
    return Measurement.get(console, unbounded, t).maximum


def _drop_rank(runs: Sequence[Run], kind: str, key: str) -> tuple[int, int]:
    having = sum(key in getattr(run, kind) for run in runs)
    width = max([len(key)] + [len(_cell(run, kind, key)) for run in runs])
    return -having, min(width, MAX_TEXT_WIDTH)


# -- runs show -------------------------------------------------------------------------------


@app.command("show")
def show_run(
    run: Annotated[str, typer.Argument(help=RUN_ARG_HELP)],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Everything about one run: attributes, params, metrics, tags, data, artifacts, children."""
    with open_cli_store() as store:
        record = resolve_run(store, run)
        names = experiment_names(store)
        datasets = store.list_datasets(record.id)
        artifacts = store.list_artifacts(record.id)
        children = store.search_runs(
            None, f"parent_id = '{record.id}'", max_results=1000, include_deleted=True
        ).runs
        environment = None
        env_digest = record.tags.get("shipyard.env.digest")
        if env_digest:
            with contextlib.suppress(NotFound):
                environment = store.get_environment(env_digest)
    if as_json:
        data = run_record(record, names)
        data["datasets"] = [d.to_dict() for d in datasets]
        data["artifacts"] = [vars(a) for a in artifacts]
        data["children"] = [{"id": c.id, "name": c.name, "status": c.status} for c in children]
        data["environment"] = environment.to_dict() if environment else None
        render.print_json(data)
        return
    console = render.out()
    status = render.status_text(record.status)
    if record.lifecycle == "deleted":
        status.append(" (deleted)", style="dim")
    attributes: list[tuple[str, Any]] = [
        ("run", record.id),
        ("name", record.name),
        ("experiment", f"{names.get(record.experiment_id, '?')} ({record.experiment_id})"),
        ("status", status),
        ("started", render.iso_time(record.start_time)),
        ("ended", render.iso_time(record.end_time) or "-"),
        ("duration", render.format_duration(record.duration)),
    ]
    if record.user:
        attributes.append(("user", record.user))
    if record.parent_id:
        attributes.append(("parent", record.parent_id))
    console.print(render.key_value_table(attributes))
    _print_section(console, "params", sorted(record.params.items()))
    _print_section(
        console,
        "metrics (latest)",
        [(k, render.format_number(v)) for k, v in sorted(record.metrics.items())],
    )
    _print_section(
        console,
        "tags",
        sorted((k, v) for k, v in record.tags.items() if not k.startswith("shipyard.")),
    )
    system = [
        (k.removeprefix("shipyard."), v)
        for k, v in sorted(record.tags.items())
        if k.startswith("shipyard.")
    ]
    if environment is not None:
        system.append(
            (
                "environment",
                f"{environment.python} on {environment.platform}, "
                f"{len(environment.packages)} packages",
            )
        )
    _print_section(console, "system", system)
    if datasets:
        t = render.table("name", "context", "rows", "digest", "source")
        for d in datasets:
            t.add_row(d.name, d.context, str(d.rows), d.digest[:12], d.source)
        render.section(console, "datasets", t)
    if artifacts:
        render.section(console, "artifacts", artifact_table(artifacts))
    if children:
        t = render.table("run", "name", "status")
        for c in children:
            t.add_row(render.short_id(c.id), c.name, render.status_text(c.status))
        render.section(console, "child runs", t)
    if record.error:
        render.section(console, "error", Text(record.error.rstrip(), style="red"))


def _print_section(console: Any, title: str, rows: list[tuple[str, Any]]) -> None:
    if rows:
        render.section(console, title, render.key_value_table(rows))


def artifact_table(entries: Sequence[Any]) -> Table:
    t = render.table("path", "size", "digest")
    t.columns[1].justify = "right"
    for e in entries:
        t.add_row(e.path, render.format_size(e.size), e.digest[:12])
    return t


# -- runs compare ----------------------------------------------------------------------------


def lower_is_better(key: str) -> bool:
    """Whether a metric named ``key`` improves downwards (loss, error, latency...)."""
    for word in re.split(r"[^a-z0-9]+", key.lower()):
        singulars = {word, word.removesuffix("s"), word.removesuffix("es")}  # errors, losses
        if singulars & _LOWER_IS_BETTER or any(w.endswith("loss") for w in singulars):
            return True
    return False


def best_index(values: Sequence[float | None], minimize: bool) -> int | None:
    """Position of the best finite value; None when fewer than two differ."""
    finite = [(v, i) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if len(finite) < 2 or len({v for v, _ in finite}) < 2:
        return None
    return (min(finite) if minimize else max(finite, key=lambda vi: (vi[0], -vi[1])))[1]


def compare_rows(
    runs: Sequence[Run], minimize: set[str], maximize: set[str]
) -> list[dict[str, Any]]:
    """One row per param and per metric: the values of each run, whether they differ, best."""
    rows: list[dict[str, Any]] = []
    for kind in ("params", "metrics"):
        keys = sorted({k for r in runs for k in getattr(r, kind)})
        for key in keys:
            values = [getattr(r, kind).get(key) for r in runs]
            shown = [render.json_safe(v) for v in values]
            row: dict[str, Any] = {
                "kind": kind[:-1],
                "key": key,
                "values": dict(zip([r.id for r in runs], values, strict=True)),
                "differs": len({repr(v) for v in shown}) > 1,
            }
            if kind == "metrics":
                low = key in minimize or (key not in maximize and lower_is_better(key))
                best = best_index(values, low)
                row["goal"] = "min" if low else "max"
                row["best"] = runs[best].id if best is not None else None
            rows.append(row)
    return rows


@app.command("compare")
def compare_runs(
    runs: Annotated[list[str], typer.Argument(help="Two or more runs (ids or unique prefixes).")],
    only_diff: Annotated[
        bool, typer.Option("--only-diff", help="Show only rows whose values differ.")
    ] = False,
    minimize: Annotated[
        list[str] | None,
        typer.Option(
            "--minimize",
            help="Metric where lower is best (default: guessed from the "
            "name: loss, error, latency... are minimised); repeatable.",
        ),
    ] = None,
    maximize: Annotated[
        list[str] | None,
        typer.Option("--maximize", help="Metric where higher is best; repeatable."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list of rows (kind, key, values...).")
    ] = False,
) -> None:
    """Params and metrics of several runs side by side; differences highlighted, best marked."""
    if len(runs) < 2:
        raise InvalidInput("compare needs at least two runs")
    with open_cli_store() as store:
        records = [resolve_run(store, ref) for ref in runs]
    if len({r.id for r in records}) < len(records):
        raise InvalidInput("the same run is named more than once")
    rows = compare_rows(records, set(minimize or ()), set(maximize or ()))
    if only_diff:
        rows = [row for row in rows if row["differs"]]
    if as_json:
        render.print_json(rows)
        return
    t = render.table("", *(f"{render.short_id(r.id)}\n{r.name}" for r in records))
    kind = None
    for row in rows:
        if row["kind"] != kind:
            kind = row["kind"]
            t.add_row(Text(f"{kind}s", style="bold underline"), *([""] * len(records)))
        style = "bold yellow" if row["differs"] else ""
        cells = []
        for r in records:
            value = row["values"][r.id]
            text = render.format_number(value) if kind == "metric" else (value or "")
            if value is None:
                text = "-"
            if row.get("best") == r.id:
                cells.append(Text(f"{text} ★", style="bold green"))
            else:
                cells.append(Text(text, style=style))
        t.add_row(Text(row["key"], style=style), *cells)
    console = render.out()
    if rows:
        console.print(t)
    else:
        console.print("no differences" if only_diff else "nothing to compare", style="dim")


# -- runs metric -----------------------------------------------------------------------------


@app.command("metric")
def metric_history(
    run: Annotated[str, typer.Argument(help=RUN_ARG_HELP)],
    key: Annotated[str, typer.Argument(help="Metric key.")],
    tail: Annotated[
        int | None, typer.Option("--tail", "-t", min=1, help="Also list the last N points.")
    ] = None,
    width: Annotated[
        int, typer.Option("--width", "-w", min=5, max=1000, help="Sparkline width in characters.")
    ] = render.SPARK_WIDTH,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print every point as JSON (step, value, timestamp).")
    ] = False,
) -> None:
    """A metric's history as a sparkline, with min, max, last value and steps."""
    with open_cli_store() as store:
        record = resolve_run(store, run)
        points = store.get_metric_history(record.id, key)
    if as_json:
        render.print_json(
            [{"step": p.step, "value": p.value, "timestamp": p.timestamp} for p in points]
        )
        return
    console = render.out()
    console.print(Text.assemble((key, "bold"), f" of run {record.id[:8]} ({record.name})"))
    if not points:
        console.print("no points", style="dim")
        return
    values = [p.value for p in points]
    finite = [v for v in values if math.isfinite(v)]
    nans = sum(math.isnan(v) for v in values)
    console.print(render.sparkline(values, width), style="cyan", markup=False)
    summary = [
        ("points", str(len(points))),
        ("steps", f"{points[0].step} .. {points[-1].step}"),
        ("min", render.format_number(min(finite)) if finite else "-"),
        ("max", render.format_number(max(finite)) if finite else "-"),
        ("last", f"{render.format_number(values[-1])} (step {points[-1].step})"),
    ]
    if nans:
        summary.append(("NaN", f"{nans} ({render.GAP} marks stretches with no number)"))
    console.print(render.key_value_table(summary))
    if tail:
        t = render.table("step", "value", "time")
        for p in points[-tail:]:
            t.add_row(str(p.step), render.format_number(p.value), render.iso_time(p.timestamp))
        render.section(console, f"last {min(tail, len(points))} points", t)


# -- runs delete / restore -------------------------------------------------------------------


@app.command("delete")
def delete_run(run: Annotated[str, typer.Argument(help=RUN_ARG_HELP)]) -> None:
    """Mark a run deleted (hidden from listings; `runs restore` brings it back)."""
    with open_cli_store() as store:
        record = resolve_run(store, run)
        store.delete_run(record.id)
    render.out().print(f"deleted run {record.id} ({record.name})", markup=False)


@app.command("restore")
def restore_run(run: Annotated[str, typer.Argument(help=RUN_ARG_HELP)]) -> None:
    """Bring back a deleted run."""
    with open_cli_store() as store:
        record = resolve_run(store, run)
        store.restore_run(record.id)
    render.out().print(f"restored run {record.id} ({record.name})", markup=False)
