"""The ray executor on a real local Ray instance (started once for these tests)."""

from __future__ import annotations

import os
import time

import pytest

import shipyard as sy

ray = pytest.importorskip("ray", reason="the ray executor needs ray (pip install 'shipyard[ray]')")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def local_ray():  # type: ignore[no-untyped-def]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@sy.step(cpus=1)
def square(x: int) -> int:
    sy.log_metric("pid", os.getpid())
    return x * x


@sy.step
def add(a: int, b: int) -> int:
    return a + b


@sy.pipeline
def squares(a: int = 3, b: int = 4):  # type: ignore[no-untyped-def]
    return add(square(a), square(b))


def test_steps_run_as_ray_tasks_and_cache(tracking) -> None:  # type: ignore[no-untyped-def]
    result = squares.run(executor="ray")
    assert result.status == "finished" and result.value == 25
    first = sy.get_run(result.steps["square"].run_id)
    assert first.parent_id == result.run_id and first.metrics["pid"] != os.getpid()
    again = squares.run(executor="ray")
    assert {o.status for o in again.steps.values()} == {"cached"} and again.value == 25


def test_failures_and_timeouts(tracking) -> None:  # type: ignore[no-untyped-def]
    @sy.step(cache=False)
    def boom() -> int:
        raise RuntimeError("no luck")

    @sy.step(cache=False, timeout=2.0)
    def hang() -> int:
        time.sleep(60)
        return 1

    @sy.pipeline
    def bad():  # type: ignore[no-untyped-def]
        return [add(boom(), 1), hang(), square(2)]

    result = bad.run(executor="ray")
    statuses = {k: o.status for k, o in result.steps.items()}
    assert statuses == {"boom": "failed", "add": "skipped", "hang": "failed", "square": "finished"}
    assert "RuntimeError: no luck" in (result.steps["boom"].error or "")
    assert "timed out after 2 s" in (result.steps["hang"].error or "")
    assert sy.get_run(result.steps["boom"].run_id).status == "failed"
