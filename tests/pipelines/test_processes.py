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
