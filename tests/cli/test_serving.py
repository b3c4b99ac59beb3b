"""`shipyard gateway`, `endpoints`, `deploy` and `rollouts`: a real gateway process started by
the CLI, and every command against it."""

from __future__ import annotations

import contextlib
import io
import json
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
        # the live view's last frame ends its line, so the verdict is a line of its own
        assert waited.stdout.splitlines()[-1].startswith("rollout 2 (blue-green): succeeded")
        assert "step" not in waited.stdout.splitlines()[-1]
        gateways = cli("endpoints", "status", "iris", "--json").json()["gateways"]
        assert len(gateways) == 2


def _refuse(constant: str) -> None:
    raise AssertionError(f"{constant} is not JSON")


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
    rows = [json.loads(line, parse_constant=_refuse) for line in logs]
    assert rows[0]["error"] is None and rows[0]["status"] == 200
    text = cli("endpoints", "logs", "iris", "-n", "3").stdout
    # ids share a per-process prefix: only the whole id tells rows apart
    assert all(row["request_id"] in text for row in rows)


@pytest.mark.timeout(120)
def test_deploy_wait_ends_when_the_rollout_pauses(cli, gateway_process) -> None:  # type: ignore[no-untyped-def]
    # no traffic and no extra intervals: the first step is short of requests and pauses
    waited = cli(
        "deploy", "iris", "--model", "iris-clf/2", "--interval", "1s", "--max-wait", "0", "--wait"
    )
    assert waited.exit_code == 1, waited.stdout + waited.stderr
    last = waited.stdout.splitlines()[-1]
    assert last.startswith("rollout 1 (canary): paused, step 1/3 at 10%"), waited.stdout
    assert "requests needed" in last and waited.stdout.endswith("\n")


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
    assert "no prediction logs yet" in cli("endpoints", "logs", "iris").stdout
    assert cli("endpoints", "logs", "iris", "--json").stdout == ""
    unasked = cli("endpoints", "delete", "iris")  # stdin is no terminal: no one to answer
    assert (
        unasked.exit_code == 2
        and unasked.stderr == "error: pass --yes to delete without a prompt\n"
    )
    assert cli("endpoints", "delete", "iris", "--yes").exit_code == 0
    assert "no endpoints" in cli("endpoints", "ls").stdout
    kept = cli("endpoints", "events", "iris", "--json")  # a deleted endpoint's history stays
    assert kept.exit_code == 0 and kept.json()[0]["kind"] == "created"


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
        (("gateway", "--log-level", "bogus"), 2, "--log-level must be one of critical, error"),
        (("endpoints", "events", "nope"), 1, "no endpoint named 'nope'"),
        (("rollouts", "ls", "nope"), 1, "no endpoint named 'nope'"),
        (("endpoints", "events", "iris", "--limit", "-1"), 2, "--limit must be at least 1"),
        (("rollouts", "ls", "--limit", "0"), 2, "--limit must be at least 1"),
        (
            ("endpoints", "create", "x", "-m", "iris-clf/1", "--sticky-header", "bad header"),
            2,
            "not an HTTP header name",
        ),
        (("endpoints", "update", "iris", "--sticky-header", "a:b"), 2, "not an HTTP header name"),
        (("deploy", "iris", "--model", "cancer/1"), 2, "would refuse requests iris-clf/1 takes"),
    ],
)
def test_mistakes_are_one_line_with_exit_codes(cli, two_versions, args, code, message) -> None:  # type: ignore[no-untyped-def]
    cli("endpoints", "create", "iris", "--model", "iris-clf/1")
    if args[-1] == "cancer/1":
        from sklearn.datasets import load_breast_cancer
        from sklearn.tree import DecisionTreeClassifier

        Xc, yc = load_breast_cancer(return_X_y=True, as_frame=True)
        with sy.start_run() as run:
            model = DecisionTreeClassifier(max_depth=2).fit(Xc, yc)
            run.log_model(model, "cancer", input_example=Xc[:5])
        allowed = cli("deploy", "iris", "--model", "cancer/1", "--allow-signature-change")
        assert allowed.exit_code == 0, allowed.stderr
        cli("rollouts", "abort", "iris")
    result = cli(*args)
    assert result.exit_code == code, result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        ("endpoints", "ls"),
        ("endpoints", "status", "iris"),
        ("endpoints", "events", "iris"),
        ("endpoints", "logs", "iris"),
        ("endpoints", "delete", "iris", "--yes"),
        ("rollouts", "ls"),
        ("rollouts", "show", "1"),
        ("rollouts", "abort", "iris"),
        ("gateway", "--port", "0"),
    ],
)
def test_commands_that_create_nothing_need_a_store(cli, tmp_path, monkeypatch, args) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SHIPYARD_URI", f"sqlite:///{tmp_path / 'none' / 'x.db'}")
    result = cli(*args)
    assert result.exit_code == 1 and result.stderr.startswith("error: no Shipyard store at")
    assert not (tmp_path / "none").exists()


def _shown(renderable) -> str:  # type: ignore[no-untyped-def]
    from rich.console import Console

    console = Console(width=200, file=io.StringIO())
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def _rollout(strategy: str, state: str, step: int, started: float | None) -> dict:  # type: ignore[type-arg]
    reason = "" if state == "running" else "why"
    return {
        "id": 7,
        "strategy": strategy,
        "state": state,
        "step": step,
        "step_started_at": started,
        "spec": {"steps": [0.2, 1.0]},
        "reason": reason,
    }


@pytest.mark.parametrize(
    ("rollout", "line"),
    [
        (
            _rollout("canary", "running", 0, None),
            "rollout 7 (canary): running, step 1/2 at 20% (waiting for the candidate to load)",
        ),
        (
            _rollout("canary", "paused", 1, 1.0),
            "rollout 7 (canary): paused, step 2/2 at 100% — why",
        ),
        (_rollout("canary", "failed", 0, None), "rollout 7 (canary): failed — why"),
        (_rollout("canary", "succeeded", 1, 1.0), "rollout 7 (canary): succeeded — why"),
        (
            _rollout("blue-green", "running", 0, None),
            "rollout 7 (blue-green): running, warming up on every gateway",
        ),
        (_rollout("blue-green", "running", 1, 1.0), "rollout 7 (blue-green): running, switched"),
        (_rollout("blue-green", "aborted", 1, 1.0), "rollout 7 (blue-green): aborted — why"),
        (
            _rollout("shadow", "running", 0, None),
            "rollout 7 (shadow): running (waiting for the candidate to load)",
        ),
        (_rollout("shadow", "running", 0, 1.0), "rollout 7 (shadow): running"),
    ],
)
def test_rollout_line_describes_the_step_only_while_it_can_move(rollout, line) -> None:  # type: ignore[no-untyped-def]
    from shipyard.cli.serving_views import rollout_line

    assert rollout_line(rollout).plain == line


def test_status_shows_latency_in_ms_with_two_decimals() -> None:
    from shipyard.cli.serving_views import status_view

    figures = {"requests_per_s": 2.0, "errors": 0, "error_rate": 0.0, "p50_ms": 0.685471}
    data = {
        "endpoint": {"name": "iris"},
        "window_s": 60.0,
        "deployments": [
            {
                "model": "iris-clf/1",
                "role": "primary",
                "weight": 1.0,
                "figures": {**figures, "p99_ms": 12.3456789},
                "gateways": {},
            }
        ],
        "gateways": [{"id": "g"}],
    }
    shown = _shown(status_view(data))
    assert " 0.69 " in shown and " 12.35 " in shown and "0.685" not in shown


def test_endpoints_ls_updated_is_the_newest_change_of_its_deployments() -> None:
    from shipyard.cli.serving_views import endpoints_table
    from shipyard.store.entities import Deployment, Endpoint

    now = time.time()
    endpoint = Endpoint(
        name="iris",
        updated_at=now - 30 * 86400,
        deployments=(
            Deployment(1, "iris", "iris-clf", 1, "primary", 1.0, updated_at=now - 3 * 3600),
            Deployment(2, "iris", "iris-clf", 2, "standby", 0.0, updated_at=now - 5 * 86400),
        ),
    )
    assert "3h ago" in _shown(endpoints_table([endpoint], {}))
