"""MLflow's side of benchmarks/models.py; runs in MLflow's own venv (.bench/mlflow).

Usage: python _models_mlflow.py '{"load": {"repeat": 15}}'  ->  JSON on stdout.
Run it in an empty temporary folder: MLflow writes its database and artifacts there.
The environment (telemetry off) is set by the caller before MLflow is imported.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import cloudpickle
import mlflow
import mlflow.sklearn
import sklearn
import skops
import skops.io as sio
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier

logging.getLogger("mlflow").setLevel(logging.ERROR)  # no notes, nor the pickle warning


def log_forest(model: Any, example: Any, fmt: str, trusted: list[str] | None) -> str:
    """Log and register ``model`` in ``fmt``; its ``models:/NAME/1`` URI."""
    name = f"rf_{fmt}"
    extra = {"skops_trusted_types": trusted} if trusted else {}
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model,
            name="rf",
            input_example=example,
            registered_model_name=name,
            serialization_format=fmt,
            # Listed, so that MLflow does not infer them in a subprocess (untimed, but slow).
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
            **extra,
        )
    return f"models:/{name}/1"


def load(repeat: int) -> dict:
    """``mlflow.sklearn.load_model`` of the same forest in skops (MLflow's default outside
    Databricks) and cloudpickle, beside reading each model file directly, interleaved."""
    mlflow.set_tracking_uri(f"sqlite:///{os.path.abspath('mlflow.db')}")
    mlflow.set_experiment("bench")  # creates the schema (migrations) before any timing
    X, y = load_breast_cancer(return_X_y=True)
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
    out: dict[str, Any] = {
        "mlflow": mlflow.__version__,
        "sklearn": sklearn.__version__,
        "skops": skops.__version__,
    }
    # MLflow's default format refuses types skops does not trust by default (a forest's
    # trees) unless they are listed when logging: try without, to report what users meet.
    try:
        skops_uri = log_forest(model, X[:5], "skops", None)
        out["skops_default_refused"] = None
    except MlflowException as exc:
        out["skops_default_refused"] = str(exc).splitlines()[0][:200]
        trusted = sio.get_untrusted_types(data=sio.dumps(model))
        skops_uri = log_forest(model, X[:5], "skops", trusted)
    pickle_uri = log_forest(model, X[:5], "cloudpickle", None)
    files = {
        uri: mlflow.artifacts.download_artifacts(uri, dst_path=os.path.abspath(f"direct-{i}"))
        for i, uri in enumerate((skops_uri, pickle_uri))
    }
    skops_file = os.path.join(files[skops_uri], "model.skops")
    pickle_file = os.path.join(files[pickle_uri], "model.pkl")
    # What MLflow passes skops when it loads: the list it stored in the MLmodel file.
    trusted_stored = (
        mlflow.models.Model.load(files[skops_uri]).flavors["sklearn"].get("skops_trusted_types")
    )

    def read_pickle() -> Any:
        with open(pickle_file, "rb") as f:
            return cloudpickle.load(f)

    steps: dict[str, Callable[[], Any]] = {
        "skops": lambda: mlflow.sklearn.load_model(skops_uri),
        "cloudpickle": lambda: mlflow.sklearn.load_model(pickle_uri),
        "skops_file": lambda: sio.load(skops_file, trusted=trusted_stored),
        "pickle_file": read_pickle,
    }
    start = time.perf_counter()
    loaded = steps["skops"]()  # the process's first load: imports what loading needs
    out["first_s"] = time.perf_counter() - start
    out["same_predictions"] = bool((loaded.predict_proba(X) == model.predict_proba(X)).all())
    for step in steps.values():
        step()
    times: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeat):  # interleaved, as on Shipyard's side
        for key, step in steps.items():
            start = time.perf_counter()
            step()
            times[key].append(time.perf_counter() - start)
    out.update({f"{key}_s": statistics.median(values) for key, values in times.items()})
    out["repeat"] = repeat
    out["file_bytes"] = {
        "skops": os.path.getsize(skops_file),
        "cloudpickle": os.path.getsize(pickle_file),
    }
    return out


MEASUREMENTS: dict[str, Callable[..., dict]] = {"load": load}

if __name__ == "__main__":
    # One process for every measurement: importing MLflow alone takes seconds here.
    plan = json.loads(sys.argv[1])  # {measurement: {argument: value}}
    results = {}
    for name, args in plan.items():
        try:
            results[name] = MEASUREMENTS[name](**args)
        except Exception as exc:  # report it and go on with the other measurements
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"mlflow {name}: {results[name]}", file=sys.stderr)
    print(json.dumps(results))
