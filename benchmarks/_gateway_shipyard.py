"""Shipyard's side of benchmarks/gateway.py; runs in Shipyard's venv.

Usage: python _gateway_shipyard.py setup '{"folder": ...}'   ->  JSON on stdout
       python _gateway_shipyard.py inproc '{"n": 5000}'       ->  JSON on stdout
       python _gateway_shipyard.py served '{}'                ->  JSON on stdout
The caller sets SHIPYARD_URI / SHIPYARD_ARTIFACTS (a fresh temporary store).

``setup`` fits the model, registers three versions of it and creates the endpoints the way a
user would (gateway.api), except for the shadow kept beside a canary (see ``mixed_endpoint``).
``inproc`` times the model's predict on one row in this process, the baseline of the
overhead figure, and the gateway's own parse and encode calls on the same request. ``served``
reads what the running gateway reported in its heartbeat: each deployment's warm-up time,
which decided whether its predictions run on the event loop or in a thread.
"""

from __future__ import annotations

import json
import pickle
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import shipyard as sy
from shipyard.gateway import api
from shipyard.registry.api import current_tracker

MODEL = "iris-clf"
# version 1 serves; 2 is the canary and 3 the shadow on the mixed endpoint
VERSIONS = {1: 1.0, 2: 0.5, 3: 2.0}  # version -> LogisticRegression's C


def iris() -> tuple[pd.DataFrame, Any]:
    return load_iris(return_X_y=True, as_frame=True)


def fitted(c: float) -> LogisticRegression:
    X, y = iris()
    return LogisticRegression(C=c, max_iter=1000).fit(X, y)


def payloads(X: pd.DataFrame) -> dict[str, str]:
    """One row as both wire formats; the first iris flower."""
    row = [float(v) for v in X.iloc[0]]
    names = list(X.columns)
    split = {"dataframe_split": {"columns": names, "data": [row]}}
    columns = {"columns": {name: [value] for name, value in zip(names, row, strict=True)}}
    return {"dataframe_split": json.dumps(split), "shipyard_columns": json.dumps(columns)}


def mixed_endpoint(name: str) -> dict[str, Any]:
    """Primary v1, a 10% canary (v2) and a shadow (v3) on one endpoint.

    Only one rollout runs per endpoint, so the shadow is started as a shadow rollout and that
    rollout is then ended without touching roles: the deployment stays a shadow, with no
    rollout to end it. The canary is then deployed as a user would, with steps 10,100 and a
    24 h interval: the gateway's controller sets it to 10% once it is warm and judges it every
    second, but never moves it on during a benchmark.
    """
    store = current_tracker().store
    api.create_endpoint(name, f"{MODEL}/1")
    shadow = api.deploy(name, f"{MODEL}/3", strategy="shadow", duration="24h")
    store.update_rollout(
        shadow.id,
        expect_state="running",
        expect_step=0,
        state="aborted",
        reason="benchmark: the shadow stays, without a rollout, beside the canary",
    )
    canary = api.deploy(
        name, f"{MODEL}/2", strategy="canary", steps="10,100", interval="24h", min_requests=10**9
    )
    return {"shadow_rollout": shadow.id, "canary_rollout": canary.id}


def setup(folder: str) -> dict[str, Any]:
    X, _ = iris()
    for version, c in VERSIONS.items():
        model = fitted(c)
        with sy.start_run(name=f"iris-C{c}") as run:
            logged = run.log_model(model, MODEL, input_example=X[:5])
        assert logged.version is not None and logged.version.version == version, logged
        if version == 1:  # the same fitted model for MLflow to log
            Path(folder, "model.pkl").write_bytes(pickle.dumps(model))
    api.create_endpoint("iris", f"{MODEL}/1")  # prediction logs on (the default, log_sample=1)
    api.create_endpoint("iris-nolog", f"{MODEL}/1", log_sample=0.0)
    rollouts = mixed_endpoint("iris-mixed")
    return {"model": MODEL, "versions": list(VERSIONS), "payloads": payloads(X), **rollouts}


def per_call(fn: Callable[[], Any], n: int) -> list[float]:
    clock = time.perf_counter
    out = []
    for _ in range(n):
        started = clock()
        fn()
        out.append(clock() - started)
    return out


def inproc(n: int) -> dict[str, Any]:
    """Per-call times of predict on one row, shipyard.load_model's and scikit-learn's, and of
    what the gateway does with a request body before and after predict; interleaved blocks."""
    from shipyard.gateway import protocols as p

    X, _ = iris()
    row = X.iloc[:1].reset_index(drop=True)
    body = payloads(X)["dataframe_split"].encode()
    loaded = sy.load_model(f"models:/{MODEL}/1")
    model, signature = loaded.model, loaded.signature
    parsed = p.mlflow_input(body, "application/json", signature)
    answer = model.predict(parsed)
    cases: dict[str, Callable[[], Any]] = {
        "shipyard_predict": lambda: loaded.predict(row),
        "sklearn_predict": lambda: model.predict(row),
        "parse_dataframe_split": lambda: p.mlflow_input(body, "application/json", signature),
        "sklearn_predict_parsed": lambda: model.predict(parsed),
        "encode_answer": lambda: p.encode({"predictions": p.predictions_json(answer)}),
    }
    for fn in cases.values():
        per_call(fn, 200)  # warm-up: lazy imports, caches
    times: dict[str, list[float]] = {key: [] for key in cases}
    blocks = 10
    for _ in range(blocks):
        for key, fn in cases.items():
            times[key] += per_call(fn, max(1, n // blocks))
    return {
        "n": n,
        "same_answer": bool((loaded.predict(row) == model.predict(row)).all()),
        **{f"{key}_p50_ms": statistics.median(v) * 1e3 for key, v in times.items()},
        **{f"{key}_mean_ms": statistics.fmean(v) * 1e3 for key, v in times.items()},
    }


def served() -> dict[str, Any]:
    """Per deployment: endpoint, role, version, warm-up and whether it predicts inline."""
    from shipyard.gateway.loading import INLINE_BELOW_S

    store = current_tracker().store
    where = {d.id: d for e in store.list_endpoints() for d in e.deployments}
    out = {}
    for gateway in store.list_gateways(seen_since=time.time() - 10):
        for key, info in gateway.info.get("deployments", {}).items():
            deployment = where.get(int(key))
            warmup = info.get("warmup_ms")
            out[key] = {
                "endpoint": deployment.endpoint if deployment else None,
                "role": deployment.role if deployment else None,
                "model": info.get("model"),
                "state": info.get("state"),
                "warmup_ms": warmup,
                "inline": None if warmup is None else warmup < INLINE_BELOW_S * 1e3,
            }
    return {"deployments": out}


def main() -> int:
    measurement, args = sys.argv[1], json.loads(sys.argv[2])
    run = {"setup": setup, "inproc": inproc, "served": served}[measurement]
    result = run(**args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
