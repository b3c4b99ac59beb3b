"""Fixtures for gateway tests: registered iris models (good, failing, shifted) and real
gateways serving them on loopback ports, in this process (uvicorn in a thread)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import shipyard as sy

pytest.importorskip("uvicorn")

from gateway_helpers import (
    CrashingModel,
    DecimalModel,
    FlakyModel,
    Models,
    Served,
    ShiftedModel,
    StartGateway,
    wait_for,
)


@pytest.fixture
def tracking(store_uri: str, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """The Python API on a fresh store of each backend (SQLite, and PostgreSQL when its URL is
    set): gateways follow the store, so every gateway test runs on both."""
    from shipyard.tracking import fluent, tracker

    monkeypatch.setenv("SHIPYARD_URI", store_uri)
    monkeypatch.setenv("SHIPYARD_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv("SHIPYARD_CAPTURE", "false")
    monkeypatch.chdir(tmp_path)
    t = tracker.get_tracker()
    yield t
    for run in list(t.open_runs.values()):
        run.end("killed")
    fluent._active.set(())
    fluent._process_runs.clear()
    fluent._experiment.pop(t.uri, None)
    t.close()
    t.store.close()
    tracker._trackers.pop((t.uri, t.artifact_root), None)


@pytest.fixture
def models(tracking) -> Models:  # type: ignore[no-untyped-def]
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    first = LogisticRegression(max_iter=500).fit(X, y)
    second = LogisticRegression(C=0.5, max_iter=500).fit(X, y)
    with sy.start_run(name="train") as run:
        for model in (
            first,
            second,
            FlakyModel(first),
            ShiftedModel(first),
            DecimalModel(first),
            CrashingModel(first),
        ):
            run.log_model(model, "iris-clf", input_example=X[:5])
    tracking.writer.flush()
    return Models(X=X)


@pytest.fixture
def start_gateway(tracking) -> Iterator[StartGateway]:  # type: ignore[no-untyped-def]
    """Start a real gateway (uvicorn on a loopback port) on the test's store."""
    import uvicorn

    from shipyard.gateway.app import create_app
    from shipyard.gateway.core import Gateway
    from shipyard.gateway.server import bind

    started: list[Served] = []

    def start(**options: Any) -> Served:
        options.setdefault("trust", True)
        options.setdefault("poll_interval", 0.05)
        options.setdefault("tick_interval", 0.2)
        sock = bind("127.0.0.1", 0)
        address = "{}:{}".format(*sock.getsockname()[:2])
        gateway = Gateway(tracking.store, tracking.blobs, address=address, **options)
        gateway.start()
        config = uvicorn.Config(
            create_app(gateway), log_level="error", access_log=False, lifespan="off"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        wait_for(lambda: server.started, what="uvicorn to start")
        served = Served(f"http://{address}", gateway, server, thread)
        started.append(served)
        return served

    yield start
    for served in started:
        if served.thread.is_alive():
            served.stop()
