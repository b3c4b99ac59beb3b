"""Shipyard's pipeline figures: cache-hit overhead, a 1,000-step DAG, parallel steps, and the
same small pipeline beside Metaflow's.

    .venv/bin/python benchmarks/pipelines.py            # full sizes, installs Metaflow on first use
    .venv/bin/python benchmarks/pipelines.py --quick    # smoke run, under a minute
    .venv/bin/python benchmarks/pipelines.py --json --skip-peer

Shipyard runs with this interpreter in a fresh process per figure on a fresh store in a
temporary folder (benchmarks/_pipelines_shipyard.py); Metaflow in its own venv .bench/metaflow
(benchmarks/_pipelines_metaflow.py, a flow run with ``python flow.py run``). Both run the
functions of benchmarks/_pipelines_work.py. Nothing runs concurrently. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tracking import _has_module, fmt, git_state, import_time, log, ok, run_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
METAFLOW_VENV = ROOT / ".bench" / "metaflow"
# Metaflow runs locally, without a service: its datastore and metadata in the run's folder.
LOCAL_METAFLOW = {
    "METAFLOW_DEFAULT_DATASTORE": "local",
    "METAFLOW_DEFAULT_METADATA": "local",
    "USERNAME": "bench",
}
HIT_TARGET_MS = 2.0  # per cache-hit step
DAG_TARGET_S = 3.0  # total overhead of a 1,000-step DAG run inline
PARALLEL_TARGET = 1.7  # inline time / processes time, two CPU-bound steps on 2 cores
TARGET_DAG_STEPS, TARGET_PARALLEL_S = 1_000, 3.0  # the sizes the targets are stated for


@dataclass(frozen=True)
class Sizes:
    hit_steps: int  # figure 1: steps per pipeline (a chain, and a fan of independent steps)
    hit_reruns: int  # figure 1: all-hit reruns after the run that fills the cache; median
    dag_steps: int  # figure 2: steps of the layered DAG
    dag_width: int  # figure 2: steps per layer
    spin_s: float  # figure 3: each CPU-bound step's work, in seconds (calibrated)
    parallel_repeat: int  # figure 3: rounds of (inline, processes); medians
    small_repeat: int  # figure 4: rounds of every variant, each a fresh process; medians
    import_repeat: int  # figure 4: python -c "import ..." for scale


FULL = Sizes(200, 5, 1_000, 10, 3.5, 3, 5, 5)
QUICK = Sizes(30, 2, 100, 10, 0.3, 1, 1, 1)


# -- running the two sides ------------------------------------------------------------------


def shipyard(measurement: str, **args: Any) -> dict:
    """One Shipyard measurement in a fresh process on a fresh store; ``process_s`` is the
    wall time of the whole process (interpreter start and imports included)."""
    log.print(f"[bold]shipyard[/] {measurement} {args}")
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp:
        env = {
            **os.environ,
            "SHIPYARD_URI": f"sqlite:///{tmp}/shipyard.db",
            "SHIPYARD_ARTIFACTS": f"{tmp}/artifacts",
        }
        env.pop("SHIPYARD_CAPTURE", None)  # its default, on: as in a user's project
        # cwd is the repository, as for a user's script: capture records its git state.
        cmd = [sys.executable, str(HERE / "_pipelines_shipyard.py"), measurement, json.dumps(args)]
        load = os.getloadavg()[0]  # other work on these shared cores skews the figures
        start = time.perf_counter()
        result = run_json(cmd, env, ROOT)
        result |= {"process_s": time.perf_counter() - start, "load_before": load}
    log.print(f"  -> {_short(result)}")
    return result


def _short(result: dict) -> str:
    text = str(result)
    return text if len(text) < 400 else text[:397] + "..."


def metaflow_python(args: argparse.Namespace) -> tuple[Path | None, str]:
    """Metaflow's interpreter, installing it on first use; or None and the reason."""
    python = METAFLOW_VENV / "bin" / "python"
    if args.skip_peer:
        return None, "skipped (--skip-peer)"
    if python.exists() and _has_module(python, "metaflow"):
        return python, ""
    if args.quick:
        return None, "not installed and --quick does not install it (run once without --quick)"
    log.print("installing Metaflow into .bench/metaflow (once; under a minute)")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(METAFLOW_VENV)], check=True)
    subprocess.run([str(METAFLOW_VENV / "bin" / "pip"), "install", "-q", "metaflow"], check=True)
    return python, ""


def metaflow(python: Path, shape: str) -> dict:
    """``python flow.py run`` of the small pipeline in a fresh folder; its wall time."""
    log.print(f"[bold]metaflow[/] {shape}")
    with tempfile.TemporaryDirectory(prefix="metaflow-bench-") as tmp:
        out = Path(tmp) / "result.json"
        env = {
            **os.environ,
            **LOCAL_METAFLOW,
            "BENCH_FLOW": shape,
            "BENCH_OUT": str(out),
            "PYTHONPATH": str(HERE),
        }
        cmd = [str(python), str(HERE / "_pipelines_metaflow.py"), "--no-pylint", "run"]
        load = os.getloadavg()[0]
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        if done.returncode != 0 or not out.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            result = {"error": f"metaflow run exited {done.returncode}: {' | '.join(tail)}"}
        else:
            result = {"process_s": seconds, "value": json.loads(out.read_text())}
        result["load_before"] = load
    log.print(f"  -> {_short(result)}")
    return result


def measure(args: argparse.Namespace, sizes: Sizes) -> dict[str, Any]:
    """Every measurement, one after the other; the raw figures, in seconds."""
    raw: dict[str, Any] = {"shipyard": {}, "metaflow": {}, "notes": []}
    sy = raw["shipyard"]
    hit = dict(n=sizes.hit_steps, reruns=sizes.hit_reruns)
    sy["hit_chain"] = shipyard("cache_hit", shape="chain", **hit)
    sy["hit_fan"] = shipyard("cache_hit", shape="fan", **hit)
    dag = dict(n=sizes.dag_steps, width=sizes.dag_width)
    sy["dag_cache"] = shipyard("dag", cache=True, rerun=True, **dag)
    sy["dag_nocache"] = shipyard("dag", cache=False, rerun=False, **dag)
    sy["fixed"] = shipyard("fixed_cost")

    # Two CPU-bound steps need both cores: the load average says how free they were.
    raw["parallel_load"] = os.getloadavg()
    log.print(f"load average before the parallel figure: {raw['parallel_load']}")
    calibrated = shipyard("calibrate", seconds=sizes.spin_s)
    sy["calibrate"] = calibrated
    iterations = calibrated.get("iterations", 10_000_000)
    rounds: dict[str, list[dict]] = {}
    for _ in range(sizes.parallel_repeat):  # interleaved, so that bursts of load hit all alike
        for warm in (False, True):
            for executor in ("inline", "processes"):
                spin = dict(iterations=iterations, executor=executor, max_workers=2, warm=warm)
                key = f"{executor}_{'warm' if warm else 'cold'}"
                rounds.setdefault(key, []).append(shipyard("parallel", **spin))
        rounds.setdefault("ceiling", []).append(shipyard("ceiling", iterations=iterations))
    sy["parallel"] = rounds

    python, why = metaflow_python(args)
    if python is None:
        raw["notes"].append(f"Metaflow {why}")
    else:
        code = "import importlib.metadata as m; print(m.version('metaflow'))"
        done = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
        raw["metaflow"]["version"] = done.stdout.strip()
    small: dict[str, list[dict]] = {}
    for _ in range(sizes.small_repeat):  # interleaved rounds of every variant
        for shape in ("linear", "fan"):
            for executor in ("inline", "processes"):
                key = f"{shape}_{executor}"
                small.setdefault(key, []).append(shipyard("small", shape=shape, executor=executor))
            if python is not None:
                raw["metaflow"].setdefault(shape, []).append(metaflow(python, shape))
    sy["small"] = small
    env = {**os.environ, "SHIPYARD_CAPTURE": "false"}
    sy["import"] = import_time(sys.executable, "import shipyard", sizes.import_repeat, env)
    if python is not None:
        env = {**os.environ, **LOCAL_METAFLOW}
        raw["metaflow"]["import"] = import_time(python, "import metaflow", sizes.import_repeat, env)
    return raw


# -- turning figures into rows ----------------------------------------------------------------


@dataclass
class Row:
    figure: str
    shipyard: str
    peer: str = "-"
    ratio: str = "-"  # how many times faster; > 1: Shipyard (or the processes executor) wins
    target: str = "-"
    verdict: str = "-"


def seconds(value: float | None) -> str:
    return fmt(value, "{:.2f} s")


def times(value: float | None) -> str:
    return fmt(value, "{:.2f}x")


def good(results: list[dict]) -> list[dict]:
    return [r for r in results if "error" not in r]


def median_of(results: list[dict], key: str) -> float | None:
    values = [r[key] for r in good(results)]
    return statistics.median(values) if values else None


def hit_rows(raw: dict, sizes: Sizes) -> list[Row]:
    """Figure 1: a rerun in which every step is a cache hit, per step."""
    rows = []
    for key, what in (("hit_chain", "a chain"), ("hit_fan", "a fan of independent steps")):
        res = raw["shipyard"][key]
        if "error" in res:
            rows.append(Row(f"cache-hit step ({what})", res["error"]))
            continue
        n = res["n"]
        per_step = res["median_s"] / n * 1e3
        wrong = "" if res["all_hits"] else " NOT ALL HITS"
        rows += [
            Row(
                f"cache-hit step, {n} steps in {what}",
                f"{per_step:.2f} ms ({res['median_s']:.2f} s a run){wrong}",
                target=f"≤ {HIT_TARGET_MS:g} ms",
                verdict=ok(per_step <= HIT_TARGET_MS and res["all_hits"]),
            ),
            Row(
                "  first run of those steps (fills the cache), per step",
                f"{res['fill_s'] / n * 1e3:.2f} ms ({res['fill_s']:.2f} s)",
            ),
        ]
    return rows


def dag_rows(raw: dict, sizes: Sizes) -> list[Row]:
    """Figure 2: the first run of a layered DAG of trivial steps, inline."""
    full = sizes.dag_steps >= TARGET_DAG_STEPS
    rows = []
    for key, what in (("dag_cache", "cache=True, empty store"), ("dag_nocache", "cache=False")):
        res = raw["shipyard"][key]
        if "error" in res:
            rows.append(Row(f"DAG ({what})", res["error"]))
            continue
        n, total = res["n"], res["total_s"]
        overhead = total - res["plain_s"]
        checks = "" if res["same_value"] else " WRONG VALUE"
        if res["statuses"] != {"finished": n}:
            checks += f" {res['statuses']}"
        rows.append(
            Row(
                f"{n:,}-step DAG, first run inline ({what})",
                f"{total:.2f} s ({overhead / n * 1e3:.1f} ms a step){checks}",
                target=f"≤ {DAG_TARGET_S:g} s overhead" + ("" if full else " (1,000 steps)"),
                verdict=ok(overhead <= DAG_TARGET_S and not checks) if full else "-",
            )
        )
        if "rerun_s" in res:
            hits = "" if res["rerun_statuses"] == {"cached": n} else f" {res['rerun_statuses']}"
            rows.append(Row("  rerun of that DAG, all cache hits", seconds(res["rerun_s"]) + hits))
    fixed = raw["shipyard"]["fixed"]
    if "error" not in fixed:
        first, second = seconds(fixed["first_s"]), seconds(fixed["second_s"])
        rows += [
            Row("  a process's first 1-step pipeline run (one-time costs)", first),
            Row("  a second 1-step pipeline run in that process", second),
        ]
    res = raw["shipyard"]["dag_cache"]
    if "error" not in res:
        rows.append(
            Row(
                "  the same calls as plain Python; building the DAG",
                f"{res['plain_s'] * 1e3:.2f} ms; {res['build_s'] * 1e3:.0f} ms",
            )
        )
    return rows


def parallel_rows(raw: dict, sizes: Sizes) -> list[Row]:
    """Figure 3: two CPU-bound independent steps, inline and under the processes executor."""
    rounds = raw["shipyard"]["parallel"]
    full = sizes.spin_s >= TARGET_PARALLEL_S
    target = f"≥ {PARALLEL_TARGET:g}x" + ("" if full else " (3-4 s steps)")
    rows = []
    warm_what = "after a warm-up run of the same executor"
    for when, what in (("cold", "first run in a fresh process"), ("warm", warm_what)):
        inline, processes = good(rounds[f"inline_{when}"]), good(rounds[f"processes_{when}"])
        if not inline or not processes:
            errors = [r["error"] for r in rounds[f"inline_{when}"] + rounds[f"processes_{when}"]]
            rows.append(Row(f"two CPU-bound steps, {what}", errors[0] if errors else "no run"))
            continue
        t_inline = statistics.median(r["total_s"] for r in inline)
        t_proc = statistics.median(r["total_s"] for r in processes)
        speedup = t_inline / t_proc
        per_round = [a["total_s"] / b["total_s"] for a, b in zip(inline, processes, strict=False)]
        step_inline = statistics.median(s for r in inline for s in r["steps_s"])
        step_proc = statistics.median(s for r in processes for s in r["steps_s"])
        rows += [
            Row(
                f"two CPU-bound steps, {what}: inline; processes",
                f"{t_inline:.2f} s; {t_proc:.2f} s",
                ratio=times(speedup),
                target=target,
                verdict=ok(speedup >= PARALLEL_TARGET) if full else "-",
            ),
            Row("  speed-up in each round", ", ".join(f"{r:.2f}x" for r in per_round)),
            Row(
                "  one step's duration: inline; in its process",
                f"{step_inline:.2f} s; {step_proc:.2f} s",
            ),
        ]
        if when == "warm":
            warm_inline = statistics.median(r["warmup_s"] for r in inline)
            warm_proc = statistics.median(r["warmup_s"] for r in processes)
            rows.append(
                Row(
                    "  the warm-up run (one trivial step): inline; processes (starts the "
                    "forkserver)",
                    f"{warm_inline:.2f} s; {warm_proc:.2f} s",
                )
            )
    ceiling = good(rounds.get("ceiling", []))
    if ceiling:
        seq = statistics.median(r["sequential_s"] for r in ceiling)
        forked = statistics.median(r["forked_s"] for r in ceiling)
        per_round = ", ".join(f"{r['sequential_s'] / r['forked_s']:.2f}x" for r in ceiling)
        rows.append(
            Row(
                "  same work without Shipyard: in turn; 2 forked processes",
                f"{seq:.2f} s; {forked:.2f} s ({per_round})",
                ratio=times(seq / forked),
            )
        )
    return rows


def small_rows(raw: dict) -> list[Row]:
    """Figure 4: the small pipeline end to end, beside Metaflow's flow."""
    small = raw["shipyard"]["small"]
    rows = []
    labels = {"linear": "load -> transform -> evaluate", "fan": "load -> 2 branches -> compare"}
    for shape, label in labels.items():
        peer = good(raw["metaflow"].get(shape, []))
        t_peer = median_of(peer, "process_s")
        peer_text = f"{seconds(t_peer)} metaflow run" if t_peer else "-"
        for executor in ("inline", "processes"):
            results = small[f"{shape}_{executor}"]
            ours = good(results)
            if not ours:
                rows.append(Row(f"small pipeline {shape}, {executor}", results[0]["error"]))
                continue
            t_ours = median_of(ours, "process_s")
            t_run = median_of(ours, "run_s")
            same = all(_same(r["value"], p["value"]) for r in ours for p in peer)
            wrong = "" if same else " WRONG RESULT"
            rows.append(
                Row(
                    f"{label}, end to end, Shipyard {executor}",
                    f"{seconds(t_ours)} ({seconds(t_run)} in run()){wrong}",
                    peer_text,
                    times(t_peer / t_ours) if t_peer and t_ours else "-",
                )
            )
    ours_import = raw["shipyard"]["import"]["median_s"]
    peer_import = raw["metaflow"].get("import", {}).get("median_s")
    rows.append(
        Row(
            "  python -c 'import shipyard' / 'import metaflow'",
            seconds(ours_import),
            seconds(peer_import),
        )
    )
    return rows


def _same(a: Any, b: Any) -> bool:
    """The same fits up to float noise (both sides run the same code on the same data)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return isinstance(a, float) and isinstance(b, float) and abs(a - b) <= 1e-9 * max(1, abs(a))


def notes(raw: dict, sizes: Sizes) -> list[str]:
    spin = raw["shipyard"]["calibrate"]
    out = [
        f"cache-hit: {sizes.hit_steps} trivial steps (each returns a small int), one run fills "
        f"the cache, then the median of {sizes.hit_reruns} reruns of the whole run(), / steps. "
        "In the chain each step takes the previous one's output; in the fan none takes any.",
        f"DAG: {sizes.dag_steps:,} trivial steps in layers of {sizes.dag_width}, each taking two "
        "outputs of the layer before; the first run() in a fresh process on an empty store "
        "(one-time costs included: imports, opening the store, the environment digest). "
        "Overhead = that time - the same calls as plain Python (under a millisecond).",
        f"parallel: two steps of {spin.get('iterations', 0):,} pure-Python iterations "
        f"(calibrated to ~{sizes.spin_s:g} s each), cache=False, max_workers=2, each run a "
        f"fresh process, medians of {sizes.parallel_repeat} interleaved rounds; warm = after "
        "a one-step pipeline run with the same executor in that process (each executor's "
        "one-time costs paid: imports, store, environment digest, and for processes its "
        "forkserver, which imports Shipyard and pandas once). Load average before: "
        f"{', '.join(f'{x:.2f}' for x in raw['parallel_load'])} (1, 5, 15 min).",
        "small pipeline: 2,000 (x, y) rows, stdlib only; a first run on an empty store/folder. "
        "End to end = the wall time of `python script.py` (Shipyard, capture on) or "
        "`python flow.py --no-pylint run` (Metaflow local datastore and metadata), "
        f"median of {sizes.small_repeat}. Metaflow needs start and end steps and its end may "
        "not be a join, so its fan has 5 tasks to Shipyard's 4 steps; it runs every task in a "
        "new process and its two branches at once.",
    ]
    if raw["metaflow"].get("version"):
        out.append(f"Metaflow {raw['metaflow']['version']}, in .bench/metaflow.")
    return out + raw["notes"]


# -- output -------------------------------------------------------------------------------------


def print_table(rows: list[Row], notes: list[str], title: str) -> None:
    table = Table(title=title, title_justify="left")
    for name in ("figure", "Shipyard", "peer", "ratio", "target", "verdict"):
        table.add_column(name, justify="left" if name in ("figure", "peer", "verdict") else "right")
    for row in rows:
        bad = "MISS" in row.verdict or "WRONG" in row.shipyard or "NOT ALL" in row.shipyard
        table.add_row(*asdict(row).values(), style="red" if bad else None)
    console = Console(width=None if sys.stdout.isatty() else 170)
    console.print(table)
    console.print(
        "ratio: how many times faster (> 1 is better): Metaflow's time / Shipyard's; for the "
        "CPU-bound rows, inline's time / the processes executor's (without Shipyard: in turn / "
        "forked)."
    )
    for note in notes:
        console.print(f"- {note}")


def tests_running() -> bool:
    """Whether a test suite runs beside us (another engineer's), which skews every figure."""
    return subprocess.run(["pgrep", "-f", "pytest"], capture_output=True).returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Shipyard's pipeline figures beside Metaflow's.")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--skip-peer", action="store_true", help="Shipyard's figures only")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    load_before = os.getloadavg()
    busy = tests_running()
    if busy:
        log.print("[red]a pytest process is running: the figures will be skewed[/]")
    raw = measure(args, sizes)
    if busy:
        raw["notes"].append("a pytest process was running when the benchmark started")
    rows = hit_rows(raw, sizes) + dag_rows(raw, sizes) + parallel_rows(raw, sizes)
    rows += small_rows(raw)
    all_notes = notes(raw, sizes)
    meta = {
        "date": datetime.date.today().isoformat(),
        "shipyard_commit": git_state(),
        "mode": "quick" if args.quick else "full",
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "load_before": load_before,
        "load_average": os.getloadavg(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.json:
        out = {**meta, "sizes": asdict(sizes), "rows": [asdict(r) for r in rows]}
        print(json.dumps({**out, "notes": all_notes, "raw": raw}, indent=2))
    else:
        print_table(
            rows,
            all_notes,
            f"Shipyard pipelines, {meta['date']}, {meta['mode']} run, {meta['seconds']} s, "
            f"load {load_before[0]:.2f} before, {meta['load_average'][0]:.2f} after",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
