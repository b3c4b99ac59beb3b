"""`--isolated`: each version in its own worker process behind the gateway."""

from __future__ import annotations

import os
import pickle

import httpx
from gateway_helpers import ROW, Models, StartGateway, wait_for

from shipyard.gateway import api
from shipyard.gateway.isolated import IsolatedPredictor, isolated_opener


def test_versions_run_in_their_own_processes(
    models: Models, start_gateway: StartGateway, tracking, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    # the flaky model's class lives beside this test; its worker must be able to import it
    monkeypatch.setenv("PYTHONPATH", os.path.dirname(__file__))
    api.create_endpoint("iris", "iris-clf/1")
    api.create_endpoint("flaky", f"iris-clf/{models.flaky}")
    opener = isolated_opener(tracking.uri, tracking.artifact_root, trust=True)
    served = start_gateway(opener=opener)
    assert served.gateway.wait_ready(timeout=120)
    predictors = [s.predictor for s in served.gateway.served.values()]
    assert all(isinstance(p, IsolatedPredictor) for p in predictors)
    pids = {p.process.pid for p in predictors}  # type: ignore[union-attr]
    assert len(pids) == 2 and os.getpid() not in pids
    # a worker unpickles what it is sent: only the gateway that started it, with its
    # secret, may call it
    stranger = httpx.post(predictors[0].url, content=pickle.dumps([ROW]))  # type: ignore[union-attr]
    assert stranger.status_code == 403

    answer = httpx.post(f"{served.url}/endpoints/iris/predict", json={"records": [ROW]})
    assert answer.status_code == 200 and answer.json() == {"predictions": [0]}
    bad = httpx.post(f"{served.url}/endpoints/iris/predict", json={"records": [{"x": 1}]})
    assert bad.status_code == 422  # checked in the gateway, never sent to the worker
    row = dict(ROW, **{"sepal length (cm)": 5.3})  # the flaky model raises on it
    failed = httpx.post(f"{served.url}/endpoints/flaky/predict", json={"records": [row]})
    assert failed.status_code == 500 and "flaky model failed" in failed.json()["message"]

    served.stop()
    for predictor in predictors:
        assert predictor.process.wait(timeout=10) is not None  # type: ignore[union-attr]


def test_a_worker_that_cannot_load_fails_the_deployment(
    models: Models, start_gateway: StartGateway, tracking
) -> None:  # type: ignore[no-untyped-def]
    api.create_endpoint("flaky", f"iris-clf/{models.flaky}")
    opener = isolated_opener(tracking.uri, tracking.artifact_root, trust=False)
    served = start_gateway(opener=opener)
    served.gateway.wait_ready(timeout=120)
    [deployment] = served.gateway.served.values()
    assert deployment.state == "failed" and "trust" in deployment.error


def test_a_worker_that_dies_is_started_again(
    models: Models, start_gateway: StartGateway, tracking, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PYTHONPATH", os.path.dirname(__file__))
    api.create_endpoint("crash", f"iris-clf/{models.crashing}")
    opener = isolated_opener(tracking.uri, tracking.artifact_root, trust=True)
    served = start_gateway(opener=opener)
    assert served.gateway.wait_ready(timeout=120)
    [deployment] = served.gateway.served.values()
    first = deployment.predictor.process.pid  # type: ignore[union-attr]
    deadly = dict(ROW, **{"sepal length (cm)": 9.9})
    answer = httpx.post(f"{served.url}/endpoints/crash/predict", json={"records": [deadly]})
    assert answer.status_code == 500 and "did not answer" in answer.json()["message"]
    # out of the routes at once (not "ready" with a dead worker), then back with a new one
    assert httpx.get(f"{served.url}/readyz").status_code == 503
    wait_for(lambda: served.gateway.ready(), timeout=120, what="the worker to start again")
    again = httpx.post(f"{served.url}/endpoints/crash/predict", json={"records": [ROW]})
    assert again.status_code == 200
    assert deployment.predictor.process.pid != first  # type: ignore[union-attr]
