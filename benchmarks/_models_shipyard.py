"""Shipyard's side of benchmarks/models.py; runs in Shipyard's venv, one process per figure.

Usage: python _models_shipyard.py MEASUREMENT '{"repeat": ...}'  ->  one JSON object on stdout.
The caller sets SHIPYARD_URI / SHIPYARD_ARTIFACTS (a fresh temporary store).
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

import shipyard as sy
from shipyard.registry import api

TRAIN_ROWS = 5_000  # the validation models are fitted on rows apart from those validated
WARMUP_ROWS = 2_000  # a first, small validation imports what the timed ones use


def fitted_forest() -> tuple[Any, Any]:
    """The model both sides load: 100 trees on the breast cancer data shipped with sklearn."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_breast_cancer(return_X_y=True)
    return RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y), X


def load(repeat: int) -> dict:
    """``api.load_model`` cold and warm, beside skops reading the same file, interleaved."""
    import skops.io as sio

    from shipyard.models.files import read_info

    model, X = fitted_forest()
    with sy.start_run(name="rf") as run:
        logged = run.log_model(model, "rf", input_example=X[:5])
    assert logged.version is not None, "log_model registers the model by default"
    uri = f"models:/rf/{logged.version.version}"
    folder = api.model_folder(uri)
    path = folder / "model.skops"

    t0 = time.perf_counter()
    loaded = api.load_model(uri)  # the process's first: imports skops
    first = time.perf_counter() - t0
    same = bool((loaded.model.predict_proba(X) == model.predict_proba(X)).all())
    trusted = sio.get_untrusted_types(file=path)
    sio.load(path, trusted=trusted)

    times: dict[str, list[float]] = defaultdict(list)

    def timed(key: str, fn: Callable[[], Any]) -> None:
        start = time.perf_counter()
        fn()
        times[key].append(time.perf_counter() - start)

    # Interleaved, so that a burst of other work on these shared cores hits every figure alike.
    for _ in range(repeat):
        shutil.rmtree(folder)  # cold: the files come from the artifact store again
        timed("cold", lambda: api.load_model(uri))
        timed("warm", lambda: api.load_model(uri))
        timed("skops_trusted", lambda: sio.load(path, trusted=trusted))
        timed("skops_checked", lambda: sio.load(path, trusted=sio.get_untrusted_types(file=path)))
        # What a warm load_model does, step by step.
        timed("folder", lambda: api.model_folder(uri))
        timed("manifest", lambda: read_info(folder))
        timed("untrusted", lambda: sio.get_untrusted_types(file=path))
    return {
        "repeat": repeat,
        "file_bytes": path.stat().st_size,
        "untrusted_types": trusted,
        "first_s": first,
        "same_predictions": same,
        **{f"{key}_s": statistics.median(values) for key, values in times.items()},
    }


def classification_data(rows: int) -> pd.DataFrame:
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=rows + TRAIN_ROWS, n_features=10, n_informative=5, random_state=0
    )
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(10)])
    frame["y"] = y
    return frame


def regression_data(rows: int) -> pd.DataFrame:
    from sklearn.datasets import make_regression

    X, y = make_regression(
        n_samples=rows + TRAIN_ROWS, n_features=10, n_informative=5, noise=10.0, random_state=0
    )
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(10)])
    frame["y"] = y
    return frame


def registered_pair(task: str, train: pd.DataFrame) -> tuple[Any, Any]:
    """A candidate and a weaker baseline, logged, registered and loaded back as users do."""
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    candidate: Any
    baseline: Any
    if task == "classification":
        candidate = LogisticRegression(max_iter=1000)
        baseline = DecisionTreeClassifier(max_depth=2, random_state=0)
    else:
        candidate = LinearRegression()
        baseline = DecisionTreeRegressor(max_depth=4, random_state=0)
    X, y = train.drop(columns="y"), train["y"]
    uris = []
    with sy.start_run(name=f"validate-{task}") as run:
        for name, model in (("candidate", candidate), ("baseline", baseline)):
            logged = run.log_model(model.fit(X, y), name, input_example=X.head(5))
            assert logged.version is not None
            uris.append(f"models:/{name}/{logged.version.version}")
    return api.load_model(uris[0]), api.load_model(uris[1])


def validate(task: str, cases: list[list[str]], rows: int, resamples: int, repeat: int) -> dict:
    """The whole ``validate_models`` call for each list of metrics, median of ``repeat``."""
    try:
        from shipyard.validation import checks, validate_models
    except ImportError as exc:  # the package is being written; say so instead of failing
        return {"error": f"shipyard.validation is not usable yet ({exc})"}

    frame = (classification_data if task == "classification" else regression_data)(rows)
    train, data = frame.iloc[:TRAIN_ROWS], frame.iloc[TRAIN_ROWS:].reset_index(drop=True)
    candidate, baseline = registered_pair(task, train)
    # rmse is lower-is-better: a model no better than predicting the mean fails it.
    spread = float(np.std(data["y"]))

    def check_list(metrics: list[str]) -> list[Any]:
        out = []
        for name in metrics:
            bound = {"max": spread} if name == "rmse" else {"min": 0.5}
            out += [
                checks.metric(name, **bound),
                checks.no_regression(name, max_drop=0.01, confidence=0.95, resamples=resamples),
            ]
        return out

    def run_case(metrics: list[str], on: pd.DataFrame) -> Any:
        return validate_models(
            candidate, on, target="y", baseline=baseline, checks=check_list(metrics)
        )

    run_case(sorted({m for case in cases for m in case}), data.head(WARMUP_ROWS))
    results = {}
    for case in cases:
        seconds, report = [], None
        for _ in range(repeat):
            start = time.perf_counter()
            report = run_case(case, data)
            seconds.append(time.perf_counter() - start)
        assert report is not None
        results["+".join(case)] = {
            "median_s": statistics.median(seconds),
            "all_s": seconds,
            "status": report.status,
            "checks": [[r.name, r.status] for r in report.results],
        }
        print(f"  {task} {case}: {seconds} {report.status}", file=sys.stderr)

    # For scale: both models' outputs on every row, which each call computes once.
    X = data.drop(columns="y")
    start = time.perf_counter()
    for model in (candidate, baseline):
        model.predict(X)
        if task == "classification":
            model.predict_proba(X)
    predict = time.perf_counter() - start
    return {"rows": len(data), "resamples": resamples, "cases": results, "predict_s": predict}


MEASUREMENTS: dict[str, Callable[..., dict]] = {"load": load, "validate": validate}

if __name__ == "__main__":
    name, args = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(MEASUREMENTS[name](**args)))
