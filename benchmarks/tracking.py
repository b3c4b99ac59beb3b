"""Shipyard's tracking figures side by side with MLflow's, in one run.

    .venv/bin/python benchmarks/tracking.py            # full sizes, installs MLflow on first use
    .venv/bin/python benchmarks/tracking.py --quick    # smoke run, well under a minute
    .venv/bin/python benchmarks/tracking.py --json --postgres postgresql://postgres@127.0.0.1/test

Each side runs in its own processes on a fresh store in a temporary folder: Shipyard's with
this interpreter (benchmarks/_shipyard_side.py), MLflow's in its own venv .bench/mlflow
(benchmarks/_mlflow_side.py). Nothing runs concurrently. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MLFLOW_VENV = ROOT / ".bench" / "mlflow"
QUIET_MLFLOW = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
log = Console(stderr=True, highlight=False)


@dataclass(frozen=True)
class Sizes:
    metric_points: int  # test 1, Shipyard, points in one run
    metric_repeat: int  # test 1, Shipyard, fresh processes; medians reported
    fluent_points: int  # test 1, Shipyard, sy.log_metric (per-call cost only)
    mlflow_sync_points: int  # test 1, MLflow, extrapolated per call
    mlflow_batch_points: int  # test 1, MLflow log_batch, 1,000 per call
    mlflow_async_points: int  # test 1, MLflow async logging
    runs: int  # test 2, Shipyard
    mlflow_runs: int  # test 2, MLflow
    search_runs: int  # test 3, Shipyard
    mlflow_search_runs: int  # test 3, MLflow
    search_repeat: int
    import_repeat: int
    mlflow_import_repeat: int


FULL = Sizes(1_000_000, 3, 100_000, 2_000, 10_000, 10_000, 2_000, 300, 100_000, 2_000, 20, 10, 3)
QUICK = Sizes(100_000, 1, 10_000, 200, 2_000, 2_000, 100, 30, 10_000, 100, 5, 5, 1)


# -- running the two sides ------------------------------------------------------------------


def run_json(cmd: list[str], env: dict[str, str], cwd: str | Path) -> dict[str, Any]:
    """Run one side's script; its last stdout line is JSON. Failures become {"error": ...}."""
    done = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"{Path(cmd[1]).name} exited {done.returncode} (see stderr above)"}
    return json.loads(lines[-1])


def shipyard(measurement: str, uri: str | None = None, capture: bool = True, **args: Any) -> dict:
    """One Shipyard measurement in a fresh process on a fresh store (SQLite unless ``uri``)."""
    log.print(f"[bold]shipyard[/] {measurement} {args}" + ("" if capture else " (capture off)"))
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp:
        env = {
            **os.environ,
            "SHIPYARD_URI": uri or f"sqlite:///{tmp}/shipyard.db",
            "SHIPYARD_ARTIFACTS": f"{tmp}/artifacts",
            "SHIPYARD_CAPTURE": "true" if capture else "false",
        }
        # cwd is the repository, as for a user's training script: capture records its git state.
        cmd = [sys.executable, str(HERE / "_shipyard_side.py"), measurement, json.dumps(args)]
        load = os.getloadavg()[0]  # other work on these shared cores skews the figures
        result = {**run_json(cmd, env, ROOT), "load_before": load}
    log.print(f"  -> {result}")
    return result


def mlflow_python(args: argparse.Namespace) -> tuple[Path | None, str]:
    """MLflow's interpreter, installing it on first use; or None and the reason."""
    python = MLFLOW_VENV / "bin" / "python"
    if args.skip_mlflow:
        return None, "skipped (--skip-mlflow)"
    installed = python.exists() and _has_module(python, "mlflow")
    if installed:
        return python, ""
    if args.quick:
        return None, "not installed and --quick does not install it (run once without --quick)"
    log.print("installing MLflow into .bench/mlflow (once; about 2 minutes)")
    subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
    subprocess.run([str(MLFLOW_VENV / "bin" / "pip"), "install", "-q", "mlflow"], check=True)
    return python, ""


def _has_module(python: Path, module: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([str(python), "-c", code], check=False).returncode == 0


def mlflow_side(python: Path, sizes: Sizes) -> dict[str, Any]:
    """Every MLflow measurement in one process (its import alone takes seconds)."""
    plan = {
        "metric_sync": {"n": sizes.mlflow_sync_points},
        "metric_batch": {"n": sizes.mlflow_batch_points, "per_call": 1000},
        "metric_async": {"n": sizes.mlflow_async_points},
        "runs": {"n": sizes.mlflow_runs},
        "search": {"n_runs": sizes.mlflow_search_runs, "repeat": sizes.search_repeat},
    }
    log.print(f"[bold]mlflow[/] {plan}")
    # Async logging is slower than sync here unless it buffers; the setting touches nothing else.
    env = {**os.environ, **QUIET_MLFLOW, "MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS": "1"}
    with tempfile.TemporaryDirectory(prefix="mlflow-bench-") as tmp:
        cmd = [str(python), str(HERE / "_mlflow_side.py"), json.dumps(plan)]
        return run_json(cmd, env, tmp)


def import_time(python: Path | str, code: str, repeat: int, env: dict[str, str]) -> dict:
    """Median wall time of ``python -c code`` in fresh processes, after one warm-up."""
    log.print(f"[bold]import[/] {Path(python).parent.parent.name}: {code!r} x{repeat}")
    times = []
    for i in range(repeat + 1):
        t0 = time.perf_counter()
        subprocess.run([str(python), "-c", code], env=env, cwd=ROOT, check=True)
        if i:  # the first run only warms the OS file cache
            times.append(time.perf_counter() - t0)
    return {"repeat": repeat, "median_s": statistics.median(times)}


@contextlib.contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A fresh schema on the server at ``url``; yields a URI whose search_path points at it."""
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    schema = f"shipyard_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(plain, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def measure(args: argparse.Namespace, sizes: Sizes) -> dict[str, Any]:
    """Every measurement, one after the other; the raw figures, in seconds and counts."""
    raw: dict[str, Any] = {"shipyard": {}, "mlflow": {}, "notes": []}
    sy = raw["shipyard"]
    metric = dict(n=sizes.metric_points, fluent_n=sizes.fluent_points)
    sy["metric"] = [shipyard("metric_loop", **metric) for _ in range(sizes.metric_repeat)]
    sy["runs"] = shipyard("runs", n=sizes.runs)
    sy["runs_nocapture"] = shipyard("runs", capture=False, n=sizes.runs)
    sy["runs_batched"] = shipyard("runs", n=sizes.runs, batched=True)
    search = dict(n_runs=sizes.search_runs, repeat=sizes.search_repeat)
    sy["search_sqlite"] = shipyard("search", capture=False, **search)
    if args.postgres:
        try:
            with postgres_schema(args.postgres) as uri:
                sy["search_postgres"] = shipyard("search", uri=uri, capture=False, **search)
        except Exception as exc:  # unreachable server: say so, keep the other figures
            raw["notes"].append(f"PostgreSQL skipped: {type(exc).__name__}: {exc}")
    env = {**os.environ, "SHIPYARD_CAPTURE": "false"}
    sy["import"] = import_time(sys.executable, "import shipyard", sizes.import_repeat, env)
    sy["python_startup"] = import_time(sys.executable, "pass", sizes.import_repeat, env)

    python, why = mlflow_python(args)
    if python is None:
        raw["notes"].append(f"MLflow {why}")
        return raw
    raw["mlflow"] = mlflow_side(python, sizes)
    env = {**os.environ, **QUIET_MLFLOW}
    raw["mlflow"]["import"] = import_time(python, "import mlflow", sizes.mlflow_import_repeat, env)
    return raw


# -- turning figures into rows ----------------------------------------------------------------


@dataclass
class Row:
    measure: str
    shipyard: str
    mlflow: str = "-"
    ratio: str = "-"  # how many times better Shipyard is; > 1 means Shipyard wins
    target: str = "-"
    verdict: str = "-"


def ok(passed: bool) -> str:
    return "ok" if passed else "MISS"


def part(raw: dict, side: str, key: str) -> dict | None:
    """One measurement's figures, or None when it did not run or failed."""
    value = raw[side].get(key)
    return None if not isinstance(value, dict) or "error" in value else value


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else spec.format(value)


def times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:,.1f}x" if ratio < 100 else f"{ratio:,.0f}x"


def per_call_us(res: dict | None) -> float | None:
    return res["loop_s"] / res["n"] * 1e6 if res else None


def points_per_s(res: dict | None) -> float | None:
    return res["n"] / res["total_s"] if res else None


def metric_rows(raw: dict) -> list[Row]:
    """Test 1: log_metric in a loop, and the database size afterwards."""
    good = [m for m in raw["shipyard"]["metric"] if "error" not in m]
    if not good:
        return [Row("log_metric", raw["shipyard"]["metric"][0]["error"])]
    n = good[0]["n"]
    call = statistics.median(m["loop_s"] / m["n"] for m in good) * 1e6
    fluent = statistics.median(m["fluent_loop_s"] / m["fluent_n"] for m in good) * 1e6
    rate = statistics.median(m["n"] / m["total_s"] for m in good)
    sync, batch, asyn = (
        part(raw, "mlflow", k) for k in ("metric_sync", "metric_batch", "metric_async")
    )
    sync_call, async_call = per_call_us(sync), per_call_us(asyn)
    ratio = sync_call / call if sync_call else None
    rows = [
        Row(
            "log_metric, per call",
            f"{call:.2f} µs",
            fmt(sync_call, "{:,.0f} µs sync"),
            times(ratio),
            "≤ 3 µs; ≥ 1,000x",
            ok(call <= 3) + ("" if ratio is None else f"; {ok(ratio >= 1000)}"),
        ),
        Row(
            "sy.log_metric (fluent), per call",
            f"{fluent:.2f} µs",
            fmt(sync_call, "{:,.0f} µs sync"),
            times(sync_call / fluent if sync_call else None),
        ),
    ]
    if asyn:
        rows.append(
            Row(
                "log_metric, per call, vs async",
                f"{call:.2f} µs",
                f"{async_call:,.0f} µs async",
                times(async_call / call if async_call else None),
            )
        )
    for res, label in ((sync, "sync"), (batch, "log_batch"), (asyn, "async")):
        other = points_per_s(res)
        if other is None and label != "sync":  # comparisons only; the sync row has the target
            continue
        rows.append(
            Row(
                f"persisted points/s, vs {label}",
                f"{rate:,.0f}",
                fmt(other, "{:,.0f} " + label),
                times(rate / other if other else None),
                "≥ 300,000/s" if label == "sync" else "-",
                ok(rate >= 300_000) if label == "sync" else "-",
            )
        )
    stored = [m["stored"] for m in good]
    mlflow_stored = ", ".join(f"{r['stored']:,} of {r['n']:,}" for r in (sync, batch, asyn) if r)
    rows.append(
        Row(
            "points in the DB, of those logged",
            f"{n:,} of {n:,}" + (f" (x{len(stored)})" if len(stored) > 1 else "")
            if all(s == n for s in stored)
            else ", ".join(f"{s:,}" for s in stored) + f" of {n:,}",
            mlflow_stored or "-",
            "-",
            "all",
            ok(all(s == n for s in stored)),
        )
    )
    size = good[-1]["db_bytes"]
    rows.append(Row("SQLite DB size after test 1", f"{size / 2**20:.1f} MiB, {size / n:.0f} B/pt"))
    return rows


def runs_rows(raw: dict) -> list[Row]:
    """Test 2: many small runs, with and without capture."""
    theirs = part(raw, "mlflow", "runs")
    their_rate = theirs["n"] / theirs["elapsed_s"] if theirs else None
    rows = []
    labels = (
        ("runs", "capture on"),
        ("runs_nocapture", "capture off"),
        ("runs_batched", "capture on, in sy.batched()"),
    )
    for key, label in labels:
        if key not in raw["shipyard"]:
            continue
        res = raw["shipyard"][key]
        if "error" in res:
            rows.append(Row(f"runs/s ({label})", res["error"]))
            continue
        rate = res["n"] / res["elapsed_s"]
        ratio = rate / their_rate if their_rate else None
        complete = res["stored"] == res["n"]
        shown = f"{rate:,.1f}" + ("" if complete else f" ({res['stored']:,} stored!)")
        targeted = key == "runs" and ratio is not None
        rows.append(
            Row(
                f"runs/s, 5 params + 3 metrics ({label})",
                shown,
                fmt(their_rate, "{:,.1f}"),
                times(ratio),
                "≥ 100x" if key == "runs" else "-",
                ok(ratio >= 100 and complete) if targeted else "-",
            )
        )
    on, off = raw["shipyard"]["runs"], raw["shipyard"]["runs_nocapture"]
    if "first_start_s" in on and "first_start_s" in off:
        # Capture (git, environment, source) runs in the background; this is what it adds
        # to the first start_run of a process, where it costs the most.
        added = (on["first_start_s"] - off["first_start_s"]) * 1e3
        rows.append(
            Row(
                "capture's cost at the first run start",
                f"{added:+.1f} ms ({on['first_start_s'] * 1e3:.1f} vs "
                f"{off['first_start_s'] * 1e3:.1f} ms)",
                "-",
                "-",
                "≤ 50 ms",
                ok(added <= 50),
            )
        )
    return rows


def search_rows(raw: dict) -> list[Row]:
    """Test 3: a filtered, ordered search; MLflow's store holds fewer runs (see the notes)."""
    theirs = part(raw, "mlflow", "search")
    their_ms = theirs["median_s"] * 1e3 if theirs else None
    rows = []
    for key, label in (("search_sqlite", "SQLite"), ("search_postgres", "PostgreSQL")):
        res = raw["shipyard"].get(key)
        if res is None:
            continue
        if "error" in res:
            rows.append(Row(f"search_runs, {label}", res["error"]))
            continue
        ms = res["median_s"] * 1e3
        wrong = "" if res["correct"] else " WRONG RESULT"
        sqlite = label == "SQLite"
        rows += [
            Row(
                f"search_runs top 100, {label}",
                f"{ms:.1f} ms, {res['runs']:,} runs{wrong}",
                fmt(their_ms, "{:,.1f} ms, ") + (f"{theirs['runs']:,} runs" if theirs else ""),
                times(their_ms / ms if their_ms else None) + (" (sizes differ)" if theirs else ""),
                "≤ 20 ms" if sqlite else "-",
                ok(ms <= 20 and res["correct"]) if sqlite else "-",
            ),
            Row(
                f"  loading those runs, {label}",
                f"{res['runs'] / res['load_s']:,.0f} runs/s, 2,000/batch",
                fmt(
                    theirs["runs"] / theirs["load_s"] if theirs else None, "{:,.0f} runs/s, 1/call"
                ),
            ),
        ]
    return rows


def import_rows(raw: dict) -> list[Row]:
    """Test 4: wall time of a fresh interpreter importing the package."""
    ours = raw["shipyard"]["import"]["median_s"] * 1e3
    theirs = part(raw, "mlflow", "import")
    their_ms = theirs["median_s"] * 1e3 if theirs else None
    bare = raw["shipyard"]["python_startup"]["median_s"] * 1e3
    return [
        Row(
            "import wall time (python -c)",
            f"{ours:.0f} ms",
            fmt(their_ms, "{:,.0f} ms"),
            times(their_ms / ours if their_ms else None),
            "≤ 150 ms",
            ok(ours <= 150),
        ),
        Row("  bare interpreter start (-c pass)", f"{bare:.0f} ms"),
    ]


def size_notes(raw: dict, sizes: Sizes) -> list[str]:
    notes = [
        f"log_metric: Shipyard {sizes.metric_points:,} points in one run, median of "
        f"{sizes.metric_repeat} fresh processes (fluent: {sizes.fluent_points:,}); persisted = "
        "points / (loop + with-block exit, which flushes everything).",
        f"runs: Shipyard {sizes.runs:,} runs; SQLite search over {sizes.search_runs:,} runs x "
        f"(10 params, 10 metrics), median of {sizes.search_repeat} after a warm-up.",
    ]
    if raw["mlflow"]:
        notes.append(
            f"MLflow, SQLite: sync log_metric {sizes.mlflow_sync_points:,} calls (per-call cost "
            f"extrapolates); log_batch {sizes.mlflow_batch_points:,} points, 1,000 per call; "
            f"async (MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS=1) {sizes.mlflow_async_points:,} "
            f"points; {sizes.mlflow_runs:,} runs; search over {sizes.mlflow_search_runs:,} runs "
            "only (loading 100,000 takes too long): the search ratio compares different sizes."
        )
    return notes + raw["notes"]


# -- output -------------------------------------------------------------------------------------


def print_table(rows: list[Row], notes: list[str], title: str) -> None:
    table = Table(title=title, title_justify="left")
    for name in ("measure", "Shipyard", "MLflow", "ratio", "target", "verdict"):
        table.add_column(name, justify="left" if name in ("measure", "verdict") else "right")
    for row in rows:
        style = "red" if "MISS" in row.verdict or "WRONG" in row.shipyard else None
        table.add_row(*asdict(row).values(), style=style)
    console = Console(width=None if sys.stdout.isatty() else 150)
    console.print(table)
    console.print("ratio: how many times faster Shipyard is (higher is better).")
    for note in notes:
        console.print(f"- {note}")


def git_state() -> str:
    """The commit measured, marked when the work tree had changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    return git("rev-parse", "--short", "HEAD") + (
        " (dirty)" if git("status", "--porcelain") else ""
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Shipyard's tracking figures beside MLflow's.")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--skip-mlflow", action="store_true", help="Shipyard's figures only")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=os.environ.get("SHIPYARD_TEST_POSTGRES_URL"),
        help="also search on PostgreSQL, in a schema made and dropped for the run",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    raw = measure(args, sizes)
    rows = metric_rows(raw) + runs_rows(raw) + search_rows(raw) + import_rows(raw)
    notes = size_notes(raw, sizes)
    meta = {
        "date": datetime.date.today().isoformat(),
        "shipyard_commit": git_state(),
        "mode": "quick" if args.quick else "full",
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.json:
        rows_out = [asdict(r) for r in rows]
        print(
            json.dumps(
                {**meta, "sizes": asdict(sizes), "rows": rows_out, "notes": notes, "raw": raw},
                indent=2,
            )
        )
    else:
        print_table(
            rows,
            notes,
            f"Shipyard vs MLflow tracking, {meta['date']}, {meta['mode']} "
            f"run, {meta['seconds']} s, load {meta['load_average'][0]:.2f}",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
