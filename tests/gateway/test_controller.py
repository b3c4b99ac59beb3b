"""The controller on its own, ticked by hand at chosen times: no gateway needed."""

from __future__ import annotations

import pytest
from gateway_helpers import Models

from shipyard.errors import Conflict
from shipyard.gateway import api, controller


def test_a_candidate_never_ready_fails_the_rollout_in_time(models: Models, tracking) -> None:  # type: ignore[no-untyped-def]
    api.create_endpoint("iris", "iris-clf/1")
    rollout = api.deploy("iris", "iris-clf/2", strategy="canary", steps="10,100")
    store = tracking.store
    # a gateway that reports the candidate still loading
    store.heartbeat("gw-slow", address="127.0.0.1:1", pid=1, started_at=0.0, info={})
    controller.tick_all(store, now=rollout.created_at + 5)
    assert store.get_rollout(rollout.id).state == "running"  # waiting, as it should
    # ten minutes on, that gateway is gone too (its heartbeat is old): nothing will load it
    controller.tick_all(store, now=rollout.created_at + controller.LOAD_TIMEOUT_S + 1)
    ended = store.get_rollout(rollout.id)
    assert ended.state == "failed"
    assert "not ready within 10 minutes" in ended.reason and "no live gateway" in ended.reason
    assert store.get_deployment(rollout.candidate_id).role == "retired"


def test_rollback_during_a_rollout_is_refused_with_the_remedy(models: Models, tracking) -> None:  # type: ignore[no-untyped-def]
    api.create_endpoint("iris", "iris-clf/1")
    api.deploy("iris", "iris-clf/2", strategy="canary", steps="10,100")
    with pytest.raises(Conflict, match="rollouts abort iris"):
        api.rollback("iris")


@pytest.mark.parametrize(
    ("failed", "early"), [("prediction_shift", False), ("error_rate", True), ("p99_ms", True)]
)
def test_only_client_facing_figures_fail_a_step_before_its_interval(  # type: ignore[no-untyped-def]
    models: Models, tracking, failed: str, early: bool
) -> None:
    from shipyard.gateway.analysis import Analysis, Figure

    api.create_endpoint("iris", "iris-clf/1")
    rollout = api.deploy("iris", "iris-clf/2", strategy="canary", steps="10,100", interval="60s")
    store = tracking.store
    started = store.update_rollout(
        rollout.id, expect_state="running", expect_step=0, step_started_at=1000.0
    )
    spec = controller.RolloutSpec.from_dict(started.spec)
    analysis = Analysis("fail", (Figure(failed, 0.5, None, 0.2, False),), f"{failed} over")
    controller._decide(store, started, spec, analysis, 1000.0 + 10, spec.interval)
    assert store.get_rollout(rollout.id).state == ("failed" if early else "running")
    if not early:  # judged once the interval is over
        controller._decide(store, started, spec, analysis, 1000.0 + 61, spec.interval)
        assert store.get_rollout(rollout.id).state == "failed"
