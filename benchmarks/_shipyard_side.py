"""Shipyard's side of benchmarks/tracking.py; runs in Shipyard's venv, one process per figure.

Usage: python _shipyard_side.py MEASUREMENT '{"n": ...}'  ->  one JSON object on stdout.
The caller sets SHIPYARD_URI / SHIPYARD_ARTIFACTS (a fresh temporary store) and
SHIPYARD_CAPTURE, so that no measurement sees another's data, threads or garbage.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
import statistics
import sys
import time
from typing import TYPE_CHECKING

import shipyard as sy

if TYPE_CHECKING:
    from shipyard.store.base import Store

SEARCH_FILTER = "metrics.acc > 0.5 AND params.model = 'rf'"
SEARCH_ORDER = ["metrics.loss ASC"]


def sqlite_file() -> str | None:
    uri = os.environ["SHIPYARD_URI"]
    return uri.removeprefix("sqlite:///") if uri.startswith("sqlite:///") else None


def count_rows(sql: str) -> int:
    """Count with the plain sqlite3 module: an independent check of what Shipyard stored."""
    path = sqlite_file()
    assert path is not None, "row counts are only checked on SQLite"
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchone()[0]


def db_bytes() -> int:
    path = sqlite_file() or ""
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


def close_store() -> None:
    """Close the tracker as interpreter exit would, so SQLite folds its WAL into the file."""
    from shipyard.tracking.tracker import get_tracker

    tracker = get_tracker()
    tracker.close()
    tracker.store.close()


def metric_loop(n: int, fluent_n: int) -> dict:
    """``run.log_metric`` n times in one run; the with-block exit flushes everything."""
    sy.set_experiment("bench")
    with sy.start_run(name="metrics") as run:
        log = run.log_metric
        t0 = time.perf_counter()
        for i in range(n):
            log("loss", i * 0.001, step=i)
        loop = time.perf_counter() - t0
    total = time.perf_counter() - t0
    run_id = run.id
    # The fluent form, in its own run, for the per-call cost only.
    with sy.start_run(name="fluent"):
        t1 = time.perf_counter()
        for i in range(fluent_n):
            sy.log_metric("loss", i * 0.001, step=i)
        fluent = time.perf_counter() - t1
    close_store()
    return {
        "n": n,
        "loop_s": loop,
        "total_s": total,
        "stored": count_rows(
            "SELECT count(*) FROM metrics JOIN runs ON runs.id = metrics.run "
            f"WHERE runs.run_id = '{run_id}' AND metrics.key = 'loss'"
        ),
        "fluent_n": fluent_n,
        "fluent_loop_s": fluent,
        "db_bytes": db_bytes(),
    }


def runs(n: int, batched: bool = False) -> dict:
    """``n`` runs, each: start_run, 5 params, 3 metrics, end (which flushes, except inside
    ``sy.batched()``, whose end commits them all)."""
    sy.set_experiment("bench")  # opens the store, so the first start below is the run's own
    first_start = None
    t0 = time.perf_counter()
    with sy.batched() if batched else contextlib.nullcontext():
        for i in range(n):
            started = time.perf_counter()
            with sy.start_run(name=f"run-{i}") as run:
                if first_start is None:
                    first_start = time.perf_counter() - started
                params = {"lr": 0.01, "depth": i % 10, "model": "rf", "seed": i, "opt": "adam"}
                run.log_params(params)
                run.log_metrics({"acc": 0.9, "loss": 0.1, "f1": 0.8})
    elapsed = time.perf_counter() - t0
    close_store()
    stored = count_rows(
        "SELECT count(*) FROM runs WHERE status = 'finished' "
        "AND (SELECT count(*) FROM params WHERE run = runs.id) = 5 "
        "AND (SELECT count(*) FROM latest_metrics WHERE run = runs.id) = 3"
    )
    return {"n": n, "elapsed_s": elapsed, "stored": stored, "first_start_s": first_start}


def fake_run(i: int, rng: random.Random) -> tuple[dict[str, str], dict[str, float]]:
    """Same shape and distribution as MLflow's side: 10 params, 10 metrics."""
    params = {"model": rng.choice(["rf", "gb", "lr", "svm"])}
    params.update({f"p{j}": str(rng.randint(0, 1000)) for j in range(1, 10)})
    metrics = {"acc": rng.random(), "loss": rng.random()}
    metrics.update({f"m{j}": rng.random() for j in range(2, 10)})
    return params, metrics


def bulk_load(store: Store, exp_id: int, n_runs: int, per_batch: int) -> list[str]:
    """Write n_runs finished runs through ``Store.write``; return the expected top 100."""
    from shipyard.store.entities import Run, WriteBatch

    rng = random.Random(42)
    expected = []
    now = time.time()
    for start in range(0, n_runs, per_batch):
        batch = WriteBatch()
        for i in range(start, min(start + per_batch, n_runs)):
            params, metrics = fake_run(i, rng)
            run = Run.new(exp_id, f"run-{i}", start_time=now + i)
            batch.runs.append(run)
            batch.params += [(run.id, k, v) for k, v in params.items()]
            points = [(k, v, 0, now + i) for k, v in metrics.items()]
            batch.metrics[run.id] = points
            batch.statuses.append((run.id, "finished", now + i + 1, None))
            if metrics["acc"] > 0.5 and params["model"] == "rf":
                expected.append((metrics["loss"], run.id))
        store.write(batch)
    return [run_id for _, run_id in sorted(expected)[:100]]


def search(n_runs: int, repeat: int, per_batch: int = 2000) -> dict:
    """sy.search_runs with a metric and a param filter, ordered by a metric, top 100."""
    from shipyard.store import open_store

    store = open_store(os.environ["SHIPYARD_URI"])
    exp_id = store.create_experiment("bench").id
    t0 = time.perf_counter()
    want = bulk_load(store, exp_id, n_runs, per_batch)
    load = time.perf_counter() - t0
    if store.engine.dialect.name == "postgresql":
        # Fresh statistics, as autovacuum gathers within a minute of a bulk load; without them
        # the planner guesses a handful of rows per key and picks a poor plan.
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    store.close()

    def once() -> list[str]:
        found = sy.search_runs(
            SEARCH_FILTER, experiments=[exp_id], order_by=SEARCH_ORDER, max_results=100
        )
        return [r.id for r in found]

    correct = once() == want  # also the warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        once()
        times.append(time.perf_counter() - t)
    return {
        "runs": n_runs,
        "load_s": load,
        "median_s": statistics.median(times),
        "correct": correct,
    }


MEASUREMENTS = {"metric_loop": metric_loop, "runs": runs, "search": search}

if __name__ == "__main__":
    name, args = sys.argv[1], json.loads(sys.argv[2])
    result = MEASUREMENTS[name](**args)
    print(json.dumps(result))
