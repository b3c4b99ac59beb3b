"""The serving half of the Store contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from shipyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from shipyard.store.base import Store
from shipyard.store.entities import ArtifactEntry

FILES = [ArtifactEntry("model/model.skops", "a" * 64, 10)]


@pytest.fixture
def served(store: Store) -> Store:
    for _ in range(3):
        store.create_model_version("iris-clf", files=FILES, flavor="sklearn")
    store.create_endpoint("iris", model_name="iris-clf", model_version=1, actor="ann")
    return store


def _canary(store: Store, version: int = 2):  # type: ignore[no-untyped-def]
    return store.start_rollout(
        "iris",
        model_name="iris-clf",
        model_version=version,
        strategy="canary",
        spec={"steps": [0.1, 0.5, 1.0]},
        role="canary",
        weight=0.1,
        actor="ann",
    )


def _promote(store: Store, rollout, old: str = "standby", **extra):  # type: ignore[no-untyped-def]
    """End ``rollout`` as succeeded, its candidate the primary, as the controller does."""
    return store.update_rollout(
        rollout.id,
        expect_state="running",
        expect_step=0,
        state="succeeded",
        roles={rollout.candidate_id: ("primary", 1.0), rollout.baseline_id: (old, 0.0)},
        promote=True,
        **extra,
    )


def test_endpoint_is_created_with_its_primary(served: Store) -> None:
    endpoint = served.get_endpoint("iris")
    assert endpoint.primary.label == "iris-clf/1" and endpoint.primary.weight == 1.0
    assert endpoint.created_by == "ann"
    assert [e.name for e in served.list_endpoints()] == ["iris"]
    assert [e.kind for e in served.list_events("iris")] == ["created"]


def test_endpoint_mistakes_are_named(served: Store) -> None:
    with pytest.raises(AlreadyExists, match="'iris' already exists"):
        served.create_endpoint("iris", model_name="iris-clf", model_version=1)
    with pytest.raises(NotFound, match="iris-clf/9"):
        served.create_endpoint("other", model_name="iris-clf", model_version=9)
    with pytest.raises(NotFound, match="no endpoint named 'nope'"):
        served.get_endpoint("nope")
    with pytest.raises(InvalidInput, match="endpoint name"):
        served.get_endpoint("a/b")


def test_every_change_moves_the_revision(served: Store) -> None:
    before = served.serving_revision()
    served.update_endpoint("iris", config={"log_sample": 0.5})
    assert served.get_endpoint("iris").config == {"log_sample": 0.5}
    after_update = served.serving_revision()
    assert after_update > before
    rollout = _canary(served)
    assert served.serving_revision() > after_update
    assert rollout.state == "running" and rollout.step == 0 and rollout.step_started_at is None


def test_a_second_rollout_or_the_primary_itself_is_refused(served: Store) -> None:
    with pytest.raises(Conflict, match="already the primary"):
        _canary(served, version=1)
    rollout = _canary(served)
    with pytest.raises(Conflict, match=f"already has rollout {rollout.id}"):
        _canary(served, version=3)
    assert served.active_rollout("iris") == rollout


def test_update_rollout_is_compare_and_set(served: Store) -> None:
    rollout = _canary(served)
    moved = served.update_rollout(
        rollout.id,
        expect_state="running",
        expect_step=0,
        step=1,
        step_started_at=123.0,
        roles={rollout.candidate_id: ("canary", 0.5)},
        analysis=("pass", {"reason": "fine"}),
        event=("step", "step 2", {}),
    )
    assert (moved.step, moved.step_started_at) == (1, 123.0)
    assert served.get_deployment(rollout.candidate_id).weight == 0.5
    assert [a.outcome for a in served.list_analyses(rollout.id)] == ["pass"]
    with pytest.raises(Conflict, match="changed meanwhile"):
        served.update_rollout(rollout.id, expect_state="running", expect_step=0, step=1)


def test_concurrent_advances_have_one_winner(served: Store) -> None:
    rollout = _canary(served)
    outcomes: list[str] = []

    def advance() -> None:
        try:
            served.update_rollout(rollout.id, expect_state="running", expect_step=0, step=1)
            outcomes.append("won")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=advance) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * 5 + ["won"]


def test_promotion_remembers_the_previous_primary(served: Store) -> None:
    rollout = _canary(served)
    _promote(served, rollout, old="retired")
    endpoint = served.get_endpoint("iris")
    assert endpoint.primary.label == "iris-clf/2"
    assert endpoint.primary.previous_id == rollout.baseline_id
    assert [d.role for d in served.list_deployments("iris")] == ["primary", "retired"]
    assert served.get_rollout(rollout.id).ended_at is not None
    assert served.active_rollout("iris") is None


@pytest.mark.parametrize("alias", ["production", "latest"])
def test_promotion_moves_the_alias_in_the_same_transaction(served: Store, alias: str) -> None:
    rollout = _canary(served)
    _promote(served, rollout, set_alias=alias)
    assert served.get_rollout(rollout.id).state == "succeeded"
    last = served.list_events("iris")[-1]
    if alias == "latest":  # not an alias anyone sets: the promotion stands, the move does not
        assert last.kind == "alias_not_moved" and "latest" in last.message
        assert "latest" not in served.get_registered_model("iris-clf").aliases
        return
    assert last.kind == "alias_moved" and last.actor == "ann"
    assert served.get_registered_model("iris-clf").aliases["production"] == 2
    [audit] = served.list_audit("iris-clf", limit=1)
    assert audit.action == "rollout_promote" and audit.details["rollout"] == rollout.id


def test_a_standby_brought_back_remembers_what_it_replaced(served: Store) -> None:
    first = _canary(served)
    _promote(served, first)
    # version 1 deployed again reuses its standby deployment (an older id): promoted, it
    # remembers version 2, so a rollback goes to version 2, not to what preceded version 1
    second = _canary(served, version=1)
    assert second.candidate_id == first.baseline_id
    _promote(served, second)
    assert served.get_endpoint("iris").primary.previous_id == first.candidate_id
    # going back without ``promote`` (a rollback) keeps the restored one's own history
    served.set_roles(
        "iris", {first.candidate_id: ("primary", 1.0), first.baseline_id: ("retired", 0.0)}
    )
    assert served.get_endpoint("iris").primary.previous_id == first.baseline_id


def test_update_rollout_expect_unstarted(served: Store) -> None:
    rollout = _canary(served)
    served.update_rollout(rollout.id, expect_state="running", expect_step=0, step_started_at=5.0)
    with pytest.raises(Conflict, match="changed meanwhile"):
        served.update_rollout(
            rollout.id, expect_state="running", expect_step=0, expect_unstarted=True, step=1
        )
    assert served.get_rollout(rollout.id).step == 0


def test_roles_cannot_change_under_a_rollout(served: Store) -> None:
    primary = served.get_endpoint("iris").primary
    rollout = _canary(served)
    with pytest.raises(Conflict, match=f"rollout {rollout.id} in progress.*rollouts abort iris"):
        served.set_roles(
            "iris", {primary.id: ("primary", 1.0), rollout.candidate_id: ("retired", 0.0)}
        )
    assert served.get_deployment(rollout.candidate_id).role == "canary"


def test_roles_keep_exactly_one_primary(served: Store) -> None:
    primary = served.get_endpoint("iris").primary
    with pytest.raises(InvalidInput, match="exactly one primary"):
        served.set_roles("iris", {primary.id: ("retired", 0.0)})
    with pytest.raises(InvalidInput, match="weight"):
        served.set_roles("iris", {primary.id: ("primary", 2.0)})
    with pytest.raises(Conflict, match="changed meanwhile"):
        served.set_roles("iris", {primary.id: ("primary", 1.0)}, expect_primary=primary.id + 99)
    assert served.get_endpoint("iris").primary == primary


def test_stats_heartbeats_and_logs(served: Store) -> None:
    primary = served.get_endpoint("iris").primary.id
    served.add_stats("gw-1", [(primary, 10.0, {"requests": 3}), (primary, 11.0, {"requests": 4})])
    served.add_stats("gw-2", [(primary, 11.5, {"requests": 5})])
    assert served.get_stats([primary], since=10.0) == {primary: [{"requests": 4}, {"requests": 5}]}
    assert served.get_stats([primary], since=0.0, until=10.0) == {primary: [{"requests": 3}]}
    assert served.prune_stats(before=11.0) == 1
    served.heartbeat("gw-1", address="127.0.0.1:1", pid=1, started_at=1.0, info={"a": 1})
    served.heartbeat("gw-1", address="127.0.0.1:1", pid=1, started_at=1.0, info={"a": 2})
    [gateway] = served.list_gateways()
    assert gateway.info == {"a": 2} and gateway.started_at == 1.0
    served.remove_gateway("gw-1")
    assert served.list_gateways() == []
    served.add_prediction_log("iris", digest="c" * 64, rows=5, first_time=1.0, last_time=2.0)
    [log] = served.list_prediction_logs("iris")
    assert log.rows == 5 and "c" * 64 in served.referenced_digests()


def test_delete_endpoint_keeps_its_events(served: Store) -> None:
    rollout = _canary(served)
    served.add_stats("gw", [(rollout.candidate_id, 1.0, {"requests": 1})])
    served.delete_endpoint("iris", actor="ann")
    with pytest.raises(NotFound):
        served.get_endpoint("iris")
    assert [e.kind for e in served.list_events("iris")][-1] == "deleted"
    served.create_endpoint("iris", model_name="iris-clf", model_version=3)
    assert served.get_endpoint("iris").primary.label == "iris-clf/3"
