"""The processes executor: independent steps at once, timeouts, crashes, pickling errors."""

from __future__ import annotations

import os
import threading
import time

import pytest

import shipyard as sy


@sy.step
def spin(seconds: float, label: str) -> dict[str, float]:
    start = time.time()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pass
    sy.log_metric("pid", os.getpid())
    return {"label_len": len(label), "start": start, "end": time.time()}


@sy.step
def both(a: dict[str, float], b: dict[str, float]) -> float:
    return a["label_len"] + b["label_len"]


@sy.pipeline
def fan(seconds: float = 0.5):  # type: ignore[no-untyped-def]
    return both(spin(seconds, "left"), spin(seconds, "right-side"))


def test_independent_steps_run_at_once_in_their_own_processes(tracking) -> None:  # type: ignore[no-untyped-def]
    result = fan.run(executor="processes", max_workers=2, seconds=1.0)
    assert result.status == "finished" and result.value == 14
    left, right = (sy.get_run(result.steps[n].run_id) for n in ("spin", "spin_2"))
    assert left.parent_id == result.run_id and right.parent_id == result.run_id
    assert left.metrics["pid"] != right.metrics["pid"] != os.getpid()
    # each step's run was open while the other ran: they overlapped
    assert left.start_time < right.end_time and right.start_time < left.end_time
    again = fan.run(executor="processes", max_workers=2, seconds=1.0)
    assert {o.status for o in again.steps.values()} == {"cached"} and again.value == 14


@sy.step(cache=False)
def sweep(n: int) -> int:
    for i in range(n):  # quick run ends: group commit leaves the later ones to the writer
        with sy.start_run(name=f"trial-{i}", nested=True) as trial:
            trial.log_metric("i", float(i))
    return n


@sy.pipeline
def sweeping(n: int = 30):  # type: ignore[no-untyped-def]
    return sweep(n)


def test_runs_a_step_ends_in_quick_succession_are_all_stored(tracking) -> None:  # type: ignore[no-untyped-def]
    # the step's process ends without exit handlers: it must store them before it reports
    result = sweeping.run(executor="processes", n=30)
    assert result.status == "finished"
    trials = sy.search_runs("name LIKE 'trial-%'")
    assert len(trials) == 30 and {r.status for r in trials} == {"finished"}


def test_a_step_past_its_timeout_is_stopped(tracking, capsys) -> None:  # type: ignore[no-untyped-def]
    @sy.step(timeout=1.0, cache=False)
    def hang() -> int:
        time.sleep(60)
        return 1

    @sy.step(cache=False)
    def quick() -> int:
        return 2

    @sy.pipeline
    def stuck():  # type: ignore[no-untyped-def]
        return [hang(), quick()]

    started = time.monotonic()
    result = stuck.run(executor="processes")
    assert time.monotonic() - started < 30
    assert result.steps["hang"].status == "failed" and result.steps["quick"].status == "finished"
    assert "timed out after 1 s" in (result.steps["hang"].error or "")
    run = sy.get_run(result.steps["hang"].run_id)
    assert run.status == "failed" and "timed out" in (run.error or "")


def test_a_crashing_step_fails_alone(tracking) -> None:  # type: ignore[no-untyped-def]
    @sy.step(cache=False)
    def crash() -> int:
        os._exit(3)

    @sy.pipeline
    def crashing():  # type: ignore[no-untyped-def]
        return crash()

    result = crashing.run(executor="processes")
    assert result.status == "failed"
    assert "exited with code 3" in (result.steps["crash"].error or "")


def test_values_that_cannot_travel_are_named(tracking) -> None:  # type: ignore[no-untyped-def]
    @sy.step(cache=False)
    def make_lock() -> object:
        return threading.Lock()

    @sy.step(cache=False, environment_in_key=False)
    def take(lock: object) -> int:
        return 1

    @sy.pipeline
    def locks():  # type: ignore[no-untyped-def]
        return make_lock()

    result = locks.run(executor="processes")
    assert result.steps["make_lock"].status == "failed"
    assert "lock" in (result.steps["make_lock"].error or "").lower()


def test_bad_max_workers(tracking) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(sy.InvalidInput, match="max_workers"):
        fan.run(executor="processes", max_workers=0)


SCRIPT = """
import pathlib, time
import shipyard as sy

@sy.step
def slow(n: int) -> int:
    pathlib.Path("started").write_text("1")
    time.sleep(60)
    return n

@sy.pipeline
def waiting(n: int = 1):
    return slow(n)

waiting.run(executor="{executor}")
"""


@pytest.mark.parametrize("executor", ["inline", "processes"])
def test_ctrl_c_marks_the_running_step_and_the_pipeline_killed(tmp_path, executor) -> None:  # type: ignore[no-untyped-def]
    import signal
    import subprocess
    import sys

    (tmp_path / "flow.py").write_text(SCRIPT.replace("{executor}", executor))
    env = {
        **os.environ,
        "SHIPYARD_URI": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "SHIPYARD_ARTIFACTS": str(tmp_path / "artifacts"),
        "SHIPYARD_CAPTURE": "false",
    }
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "flow.py"], cwd=tmp_path, env=env, stderr=err)
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists():
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    store = sy.open_store(env["SHIPYARD_URI"])
    runs = store.search_runs(None, "").runs
    statuses = {r.name: r.status for r in runs}
    assert statuses == {"waiting": "killed", "slow": "killed"}, statuses
