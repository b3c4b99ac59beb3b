"""MLflow's side of benchmarks/tracking.py; runs in MLflow's own venv (.bench/mlflow).

Usage: python _mlflow_side.py '{"metric_sync": {"n": 2000}, ...}'  ->  JSON on stdout.
Run it in an empty temporary folder: MLflow writes its database and artifacts there.
The environment (telemetry off, async buffering) is set by the caller before MLflow is imported.
"""

from __future__ import annotations

import json
import logging
import os
import random
import statistics
import sys
import time

import mlflow
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

logging.getLogger("mlflow").setLevel(logging.WARNING)  # no "creating experiment" notes

SEARCH_FILTER = "metrics.acc > 0.5 AND params.model = 'rf'"
SEARCH_ORDER = ["metrics.loss ASC"]


def connect(name: str) -> MlflowClient:
    """A fresh database per measurement, in the current (temporary) folder."""
    mlflow.set_tracking_uri(f"sqlite:///{os.path.abspath(name + '.db')}")
    mlflow.set_experiment("bench")  # creates the schema (migrations) before any timing
    return MlflowClient()


def history_len(client: MlflowClient, run_id: str, key: str) -> int:
    return len(client.get_metric_history(run_id, key))


def metric_sync(n: int) -> dict:
    """``mlflow.log_metric`` in a loop: one SQL transaction per call."""
    client = connect("metric_sync")
    with mlflow.start_run() as run:
        t0 = time.perf_counter()
        for i in range(n):
            mlflow.log_metric("loss", i * 0.001, step=i)
        loop = time.perf_counter() - t0
    total = time.perf_counter() - t0
    return {
        "n": n,
        "loop_s": loop,
        "total_s": total,
        "stored": history_len(client, run.info.run_id, "loss"),
    }


def metric_batch(n: int, per_call: int) -> dict:
    """``MlflowClient.log_batch`` with ``per_call`` points of one metric per call."""
    client = connect("metric_batch")
    with mlflow.start_run() as run:
        run_id = run.info.run_id
        t0 = time.perf_counter()
        for start in range(0, n, per_call):
            ts = int(time.time() * 1000)
            points = [Metric("loss", i * 0.001, ts, i) for i in range(start, start + per_call)]
            client.log_batch(run_id, metrics=points)
        loop = time.perf_counter() - t0
    total = time.perf_counter() - t0
    return {"n": n, "loop_s": loop, "total_s": total, "stored": history_len(client, run_id, "loss")}


def metric_async(n: int) -> dict:
    """``mlflow.log_metric(..., synchronous=False)``; the caller sets the buffering seconds."""
    client = connect("metric_async")
    with mlflow.start_run() as run:
        t0 = time.perf_counter()
        for i in range(n):
            mlflow.log_metric("loss", i * 0.001, step=i, synchronous=False)
        loop = time.perf_counter() - t0
        mlflow.flush_async_logging()
    total = time.perf_counter() - t0
    return {
        "n": n,
        "loop_s": loop,
        "total_s": total,
        "stored": history_len(client, run.info.run_id, "loss"),
    }


def runs(n: int) -> dict:
    """``n`` runs, each: start_run, 5 params, 3 metrics, end."""
    client = connect("runs")
    t0 = time.perf_counter()
    for i in range(n):
        with mlflow.start_run(run_name=f"run-{i}"):
            mlflow.log_params(
                {"lr": 0.01, "depth": i % 10, "model": "rf", "seed": i, "opt": "adam"}
            )
            mlflow.log_metrics({"acc": 0.9, "loss": 0.1, "f1": 0.8})
    elapsed = time.perf_counter() - t0
    exp = client.get_experiment_by_name("bench")
    stored = len(client.search_runs([exp.experiment_id], max_results=n + 10))
    return {"n": n, "elapsed_s": elapsed, "stored": stored}


def fake_run(i: int, rng: random.Random) -> tuple[dict[str, str], dict[str, float]]:
    """Same shape and distribution as the Shipyard side: 10 params, 10 metrics."""
    params = {"model": rng.choice(["rf", "gb", "lr", "svm"])}
    params.update({f"p{j}": str(rng.randint(0, 1000)) for j in range(1, 10)})
    metrics = {"acc": rng.random(), "loss": rng.random()}
    metrics.update({f"m{j}": rng.random() for j in range(2, 10)})
    return params, metrics


def search(n_runs: int, repeat: int) -> dict:
    """search_runs with a metric and a param filter, ordered by a metric, top 100."""
    client = connect("search")
    exp_id = client.get_experiment_by_name("bench").experiment_id
    rng = random.Random(42)
    expected = []
    t0 = time.perf_counter()
    for i in range(n_runs):
        params, metrics = fake_run(i, rng)
        run = client.create_run(exp_id, run_name=f"run-{i}")
        ts = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, ts, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
        )
        client.set_terminated(run.info.run_id)
        if metrics["acc"] > 0.5 and params["model"] == "rf":
            expected.append((metrics["loss"], run.info.run_id))
    load = time.perf_counter() - t0
    want = [run_id for _, run_id in sorted(expected)[:100]]

    def once() -> list[str]:
        found = client.search_runs([exp_id], SEARCH_FILTER, order_by=SEARCH_ORDER, max_results=100)
        return [r.info.run_id for r in found]

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


MEASUREMENTS = {
    "metric_sync": metric_sync,
    "metric_batch": metric_batch,
    "metric_async": metric_async,
    "runs": runs,
    "search": search,
}

if __name__ == "__main__":
    # One process for every measurement: importing MLflow alone takes ~3 s here.
    plan = json.loads(sys.argv[1])  # {measurement: {argument: value}}
    results = {}
    for name, args in plan.items():
        try:
            results[name] = MEASUREMENTS[name](**args)
        except Exception as exc:  # report it and go on with the other measurements
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"mlflow {name}: {results[name]}", file=sys.stderr)
    print(json.dumps(results))
