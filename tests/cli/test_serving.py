"""`shipyard gateway`, `endpoints`, `deploy` and `rollouts`: a real gateway process started by
the CLI, and every command against it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import shipyard as sy

pytest.importorskip("uvicorn")

X, Y = load_iris(return_X_y=True, as_frame=True)
ROW = {str(k): float(v) for k, v in X.iloc[0].items()}


@pytest.fixture
def two_versions(tracking):  # type: ignore[no-untyped-def]
    for c in (1.0, 0.5):
        with sy.start_run() as run:
            run.log_model(
                LogisticRegression(C=c, max_iter=500).fit(X, Y), "iris-clf", input_example=X[:5]
            )
    return tracking


def _poll(condition, timeout: float = 60.0, what: str = "it"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def _gateway() -> Iterator[str]:
    """`shipyard gateway --port 0` as a user runs it, in its own process."""
    env = dict(os.environ, SHIPYARD_CAPTURE="false")
    with subprocess.Popen(
        [sys.executable, "-m", "shipyard.cli.main", "gateway", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert "listening on" in line, process.stderr.read() if process.stderr else line
            url = line.split()[-1]
            _poll(lambda: httpx.get(f"{url}/readyz").status_code == 200, what="the gateway")
            yield url
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
        assert process.returncode == 0, process.stderr.read() if process.stderr else ""


@pytest.fixture
def gateway_process(two_versions, cli) -> Iterator[str]:  # type: ignore[no-untyped-def]
    assert cli("endpoints", "create", "iris", "--model", "iris-clf/1").exit_code == 0
    with _gateway() as url:
        yield url


def test_two_gateway_processes_agree_on_weights_and_deploy_waits(cli, two_versions) -> None:  # type: ignore[no-untyped-def]
    cli("endpoints", "create", "iris", "--model", "iris-clf/1", "--sticky-header", "x-user")
    with _gateway() as first, _gateway() as second:
        cli("deploy", "iris", "--model", "iris-clf/2", "--steps", "40,100", "--interval", "1h")

        def version(url: str, user: int) -> str:
            answer = httpx.post(
                f"{url}/endpoints/iris/predict",
                json={"records": [ROW]},
                headers={"x-user": f"user-{user}"},
            )
            return answer.headers["x-shipyard-model-version"]

        def both_split() -> bool:
            seen = {version(url, u) for url in (first, second) for u in range(30)}
            return seen == {"iris-clf/1", "iris-clf/2"}

        _poll(both_split, what="both gateways to take the canary")
        for user in range(30):
            assert version(first, user) == version(second, user), f"user-{user}"
        assert cli("rollouts", "promote", "iris").exit_code == 0
        stop = threading.Event()

        def traffic() -> None:
            with httpx.Client() as client:
                while not stop.is_set():
                    client.post(f"{first}/endpoints/iris/predict", json={"records": [ROW]})

        sender = threading.Thread(target=traffic, daemon=True)
        sender.start()
        try:
            waited = cli(
                "deploy",
                "iris",
                "--model",
                "iris-clf/1",
                "--strategy",
                "blue-green",
                "--interval",
                "1s",
                "--min-requests",
                "20",
                "--wait",
            )
        finally:
            stop.set()
            sender.join(timeout=10)
        assert waited.exit_code == 0, waited.stdout + waited.stderr
        assert "succeeded" in waited.stdout
        gateways = cli("endpoints", "status", "iris", "--json").json()["gateways"]
        assert len(gateways) == 2


def test_gateway_serves_and_deploy_follows_to_the_end(cli, gateway_process, two_versions) -> None:  # type: ignore[no-untyped-def]
    url = gateway_process
    answer = httpx.post(f"{url}/endpoints/iris/predict", json={"records": [ROW]})
    assert answer.status_code == 200 and answer.headers["x-shipyard-model-version"] == "iris-clf/1"
    listing = cli("endpoints", "ls", "--json").json()
    assert listing[0]["name"] == "iris" and listing[0]["rollout"] is None
    started = cli(
        "deploy",
        "iris",
        "--model",
        "iris-clf/2",
        "--steps",
        "50,100",
        "--interval",
        "1s",
        "--min-requests",
        "20",
    )
    assert started.exit_code == 0 and "rollout 1 (canary): running" in started.stdout
    with httpx.Client() as client:

        def done() -> bool:
            for _ in range(20):
                client.post(f"{url}/endpoints/iris/predict", json={"records": [ROW]})
            return cli("rollouts", "ls", "--json").json()[0]["state"] == "succeeded"

        _poll(done, what="the rollout to succeed")
    status = cli("endpoints", "status", "iris", "--json").json()
    roles = {d["model"]: d["role"] for d in status["deployments"]}
    assert roles == {"iris-clf/1": "standby", "iris-clf/2": "primary"}
    assert status["gateways"] and status["deployments"][0]["figures"]["requests"] > 0
    table = cli("endpoints", "status", "iris").stdout
    assert "iris-clf/2" in table and "primary" in table and "succeeded" in table
    shown = cli("rollouts", "show", "1").stdout
    assert "error_rate" in shown and "pass" in shown
    events = cli("endpoints", "events", "iris", "--json").json()
    assert [e["kind"] for e in events][-1] == "rollout_succeeded"
    assert "iris-clf/1 again" in cli("endpoints", "rollback", "iris").stdout
    _poll(
        lambda: (
            httpx.post(f"{url}/endpoints/iris/predict", json={"records": [ROW]}).headers[
                "x-shipyard-model-version"
            ]
            == "iris-clf/1"
        ),
        what="the rollback to reach the gateway",
    )
    logs = _poll(
        lambda: cli("endpoints", "logs", "iris", "-n", "3", "--json").stdout.splitlines(),
        what="logs",
    )
    assert len(logs) == 3 and '"endpoint": "iris"' in logs[0]


def test_rollout_commands(cli, two_versions) -> None:  # type: ignore[no-untyped-def]
    cli("endpoints", "create", "iris", "--model", "iris-clf/1", "--sticky-header", "X-User")
    assert cli("endpoints", "ls", "--json").json()[0]["config"]["sticky_header"] == "x-user"
    started = cli("deploy", "iris", "--model", "iris-clf/2", "--interval", "1h")
    assert "no gateway is running" in started.stderr
    assert "paused" in cli("rollouts", "pause", "iris").stdout
    assert "running" in cli("rollouts", "resume", "iris").stdout
    assert "aborted" in cli("rollouts", "abort", "iris").stdout
    again = cli("rollouts", "abort", "iris")
    assert again.exit_code == 1 and "no running or paused rollout" in again.stderr
    assert cli("rollouts", "ls", "iris", "--json").json()[0]["state"] == "aborted"
    assert cli("endpoints", "update", "iris", "--log-sample", "0.5").exit_code == 0
    assert cli("endpoints", "delete", "iris", "--yes").exit_code == 0
    assert "no endpoints" in cli("endpoints", "ls").stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("endpoints", "create", "a/b", "--model", "iris-clf/1"), 2, "endpoint name"),
        (("endpoints", "create", "x", "--model", "iris-clf/9"), 1, "no version 9"),
        (("endpoints", "status", "nope"), 1, "no endpoint named 'nope'"),
        (("deploy", "iris", "--model", "iris-clf/2", "--strategy", "yolo"), 2, "strategy"),
        (("deploy", "iris", "--model", "iris-clf/2", "--steps", "0,50"), 2, "percentage"),
        (("deploy", "iris", "--model", "iris-clf/2", "--interval", "1y"), 2, "duration"),
        (("deploy", "iris", "--model", "iris-clf/1"), 1, "already the primary"),
        (("endpoints", "rollback", "iris"), 1, "no other primary"),
        (("endpoints", "logs", "nope"), 1, "no endpoint named 'nope'"),
        (
            ("endpoints", "create", "iris2", "--model", "iris-clf/1", "--log-sample", "2"),
            2,
            "log sample",
        ),
        (("gateway", "--port", "-1"), 2, "cannot listen on port -1"),
    ],
)
def test_mistakes_are_one_line_with_exit_codes(cli, two_versions, args, code, message) -> None:  # type: ignore[no-untyped-def]
    cli("endpoints", "create", "iris", "--model", "iris-clf/1")
    result = cli(*args)
    assert result.exit_code == code, result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1
