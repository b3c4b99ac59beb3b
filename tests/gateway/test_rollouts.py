"""Rollouts end to end: real gateways, real traffic, the controller deciding by itself."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from gateway_helpers import ROW, Models, Served, StartGateway, wait_for

import shipyard as sy
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.gateway import api
from shipyard.gateway.logs import read_logs

VERSION = "x-shipyard-model-version"
FAST = {"interval": "1s", "min_requests": 30, "max_wait": 20}


class Traffic:
    """Single-row requests from a background thread, with what each answer was."""

    def __init__(self, url: str, rows: Any, *, endpoint: str = "iris", headers: Any = None):
        self.url = f"{url}/endpoints/{endpoint}/predict"
        self.rows = [r for _, r in rows.iterrows()]
        self.headers = headers or {}
        self.answers: list[tuple[str, int]] = []  # (version, status)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _send(self) -> None:
        with httpx.Client() as client:
            i = 0
            while not self._stop.is_set():
                row = self.rows[i % len(self.rows)].to_dict()
                i += 1
                r = client.post(self.url, json={"records": [row]}, headers=self.headers)
                self.answers.append((r.headers.get(VERSION, ""), r.status_code))


def _state(tracking, rollout_id: int) -> str:  # type: ignore[no-untyped-def]
    return tracking.store.get_rollout(rollout_id).state


def _ended(tracking, rollout_id: int) -> str | None:  # type: ignore[no-untyped-def]
    state = _state(tracking, rollout_id)
    return state if state not in ("running", "paused") else None


@pytest.fixture
def served(models: Models, start_gateway: StartGateway) -> Served:
    api.create_endpoint("iris", "iris-clf/1")
    served = start_gateway()
    served.gateway.wait_ready()
    return served


@pytest.fixture
def gateway_url(served: Served) -> str:
    return served.url


def _primary_only(served: Served, traffic: Traffic) -> int:
    """Wait until the gateway routes everything to the primary; the index of the first answer
    sent after that."""
    wait_for(
        lambda: (
            (r := served.gateway.routes.get("iris")) is not None
            and r.canary is None
            and r.primary.label == "iris-clf/1"
        ),
        what="the route back to the primary",
    )
    start = len(traffic.answers) + 1  # the request in flight may have been routed before
    wait_for(lambda: len(traffic.answers) > start + 50, what="traffic after the rollback")
    return start


def test_a_good_canary_is_promoted_through_every_step(
    gateway_url: str, models: Models, tracking
) -> None:  # type: ignore[no-untyped-def]
    rollout = api.deploy("iris", "iris-clf/2", steps="10,50,100", **FAST)
    with Traffic(gateway_url, models.X) as traffic:
        ended = wait_for(lambda: _ended(tracking, rollout.id), what="the rollout")
    assert ended == "succeeded", tracking.store.get_rollout(rollout.id).reason
    steps = [
        e.data.get("step") for e in tracking.store.list_events("iris") if e.kind == "rollout_step"
    ]
    assert steps == [0, 1, 2]
    endpoint = tracking.store.get_endpoint("iris")
    assert endpoint.primary.label == "iris-clf/2"
    assert [d.label for d in endpoint.with_role("standby")] == ["iris-clf/1"]
    assert {v for v, _ in traffic.answers} == {"iris-clf/1", "iris-clf/2"}
    assert all(status == 200 for _, status in traffic.answers)
    outcomes = [a.outcome for a in tracking.store.list_analyses(rollout.id)]
    assert outcomes == ["pass", "pass", "pass"]


def test_a_canary_that_raises_is_rolled_back_by_itself(
    served: Served, models: Models, tracking
) -> None:  # type: ignore[no-untyped-def]
    rollout = api.deploy("iris", f"iris-clf/{models.flaky}", steps="10,50,100", **FAST)
    with Traffic(served.url, models.X.sample(frac=1, random_state=0)) as traffic:
        assert wait_for(lambda: _ended(tracking, rollout.id), what="the rollback") == "failed"
        after_rollback = _primary_only(served, traffic)
    stored = tracking.store.get_rollout(rollout.id)
    assert stored.step == 0 and "error rate" in stored.reason
    errors = sum(status == 500 for _, status in traffic.answers)
    canary = sum(version == f"iris-clf/{models.flaky}" for version, _ in traffic.answers)
    # clients saw at most the canary's share of errors: a fifth of its 10%
    assert 0 < errors <= canary and errors / len(traffic.answers) < 0.1
    assert {v for v, _ in traffic.answers[after_rollback:]} == {"iris-clf/1"}
    assert tracking.store.get_endpoint("iris").primary.label == "iris-clf/1"
    kinds = [e.kind for e in tracking.store.list_events("iris")]
    assert kinds[-1] == "rolled_back"


def test_a_canary_with_shifted_predictions_is_rolled_back(
    gateway_url: str, models: Models, tracking
) -> None:  # type: ignore[no-untyped-def]
    rollout = api.deploy(
        "iris", f"iris-clf/{models.shifted}", steps="50,100", max_prediction_shift=0.2, **FAST
    )
    with Traffic(gateway_url, models.X.sample(frac=1, random_state=1)):
        assert wait_for(lambda: _ended(tracking, rollout.id), what="the rollback") == "failed"
    stored = tracking.store.get_rollout(rollout.id)
    assert "prediction_shift" in stored.reason or "shift" in stored.reason
    [analysis] = tracking.store.list_analyses(rollout.id)
    shift = next(f for f in analysis.data["figures"] if f["name"] == "prediction_shift")
    assert shift["passed"] is False and shift["candidate"] > 0.2


def test_too_little_traffic_pauses_then_resume_and_abort(
    gateway_url: str, models: Models, tracking
) -> None:  # type: ignore[no-untyped-def]
    rollout = api.deploy("iris", "iris-clf/2", interval="0.3s", min_requests=10_000, max_wait=1)
    assert wait_for(lambda: _state(tracking, rollout.id) == "paused", what="the pause")
    assert (
        "too few" in tracking.store.get_rollout(rollout.id).reason
        or tracking.store.get_rollout(rollout.id).reason
    )
    with pytest.raises(Conflict, match="already paused"):
        api.pause("iris")
    assert api.resume("iris").state == "running"
    aborted = api.abort("iris")
    assert aborted.state == "aborted"
    endpoint = tracking.store.get_endpoint("iris")
    assert endpoint.primary.label == "iris-clf/1" and endpoint.with_role("canary") == []
    with pytest.raises(NotFound, match="no running or paused rollout"):
        api.abort("iris")


def test_manual_promote_moves_the_alias_with_an_audit_entry(
    gateway_url: str, models: Models, tracking
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(sy.errors.ValidationFailed, match="no passing validation"):
        api.deploy("iris", "iris-clf/2", set_alias="production", **FAST)
    holdout = models.X.assign(target=__import__("sklearn.datasets").datasets.load_iris().target)
    sy.validate(
        "iris-clf/2",
        data=holdout,
        target="target",
        baseline=None,
        checks=[sy.checks.metric("accuracy", min=0.8)],
    )
    api.deploy("iris", "iris-clf/2", set_alias="production", interval="1h")
    promoted = api.promote("iris")
    assert promoted.state == "succeeded"
    assert tracking.store.get_model_version_by_alias("iris-clf", "production").version == 2
    audit = tracking.store.list_audit("iris-clf", limit=5)
    assert audit[0].action == "rollout_promote" and audit[0].details["endpoint"] == "iris"
    assert api.rollback("iris").primary.label == "iris-clf/1"


def test_shadow_compares_on_the_same_requests_and_keeps_the_pairs(
    gateway_url: str, models: Models, tracking
) -> None:  # type: ignore[no-untyped-def]
    rollout = api.deploy(
        "iris", "iris-clf/2", strategy="shadow", duration="2s", min_agreement=0.8, min_requests=30
    )
    with Traffic(gateway_url, models.X) as traffic:
        assert wait_for(lambda: _ended(tracking, rollout.id), what="the shadow") == "succeeded"
    assert {v for v, _ in traffic.answers} == {"iris-clf/1"}  # a shadow never answers
    [analysis] = tracking.store.list_analyses(rollout.id)
    agreement = next(f for f in analysis.data["figures"] if f["name"] == "agreement")
    assert agreement["candidate"] >= 0.8 and agreement["passed"] is True
    assert tracking.store.get_endpoint("iris").primary.label == "iris-clf/1"

    def pairs() -> Any:
        frame, _ = read_logs(tracking.store, tracking.blobs, "iris")
        shadow = frame[frame.role == "shadow"]
        return len(shadow) >= 30 and frame, shadow

    frame, shadow = wait_for(lambda: pairs()[0] is not False and pairs(), what="shadow logs")
    primary_ids = set(frame[frame.role == "primary"].request_id)
    assert set(shadow.request_id) <= primary_ids


def test_blue_green_switches_and_switches_back_on_errors(
    served: Served, models: Models, tracking
) -> None:  # type: ignore[no-untyped-def]
    rollout = api.deploy("iris", f"iris-clf/{models.flaky}", strategy="blue-green", **FAST)
    with Traffic(served.url, models.X.sample(frac=1, random_state=2)) as traffic:
        assert wait_for(lambda: _ended(tracking, rollout.id), what="blue-green") == "failed"
        after_rollback = _primary_only(served, traffic)
    versions = [v for v, _ in traffic.answers]
    assert f"iris-clf/{models.flaky}" in versions  # it did take all traffic for a while
    assert set(versions[after_rollback:]) == {"iris-clf/1"}  # and gave it back
    assert tracking.store.get_endpoint("iris").primary.label == "iris-clf/1"


def test_a_gateway_restarted_mid_rollout_resumes_at_the_same_step(
    models: Models, start_gateway: StartGateway, tracking
) -> None:  # type: ignore[no-untyped-def]
    api.create_endpoint("iris", "iris-clf/1")
    first = start_gateway()
    first.gateway.wait_ready()
    # this test is about resuming: the shift test, repeated every second on a few dozen
    # requests of each version, is judged in its own tests (here it can reject by chance)
    rollout = api.deploy(
        "iris",
        "iris-clf/2",
        steps="10,50,100",
        interval="1s",
        min_requests=30,
        max_wait=30,
        max_prediction_shift=None,
    )
    with Traffic(first.url, models.X):
        wait_for(lambda: tracking.store.get_rollout(rollout.id).step == 1, what="step 2")
    first.stop()
    at_stop = tracking.store.get_rollout(rollout.id)
    assert at_stop.state == "running" and at_stop.step == 1
    second = start_gateway()
    second.gateway.wait_ready()
    route = wait_for(
        lambda: (
            second.gateway.routes.get("iris")
            if second.gateway.routes.get("iris") and second.gateway.routes["iris"].canary
            else None
        ),
        what="the canary route",
    )
    assert route.canary_weight == 0.5  # the same step's weight, from the store
    with Traffic(second.url, models.X):
        ended = wait_for(lambda: _ended(tracking, rollout.id), what="the rollout")
    assert ended == "succeeded", tracking.store.get_rollout(rollout.id).reason
    steps = [
        e.data.get("step") for e in tracking.store.list_events("iris") if e.kind == "rollout_step"
    ]
    assert steps == [0, 1, 2]  # no step was started twice


def test_two_gateways_agree_on_weights_and_sticky_clients(
    models: Models, start_gateway: StartGateway, tracking
) -> None:  # type: ignore[no-untyped-def]
    api.create_endpoint("iris", "iris-clf/1", sticky_header="x-user")
    a, b = start_gateway(), start_gateway()
    a.gateway.wait_ready() and b.gateway.wait_ready()
    api.deploy("iris", "iris-clf/2", steps="30,100", interval="1h")
    for served in (a, b):
        wait_for(lambda s=served: s.gateway.routes["iris"].canary is not None, what="canaries")
        assert served.gateway.routes["iris"].canary_weight == 0.3
    for user in range(40):
        headers = {"x-user": f"user-{user}"}
        got = {
            httpx.post(
                f"{s.url}/endpoints/iris/predict", json={"records": [ROW]}, headers=headers
            ).headers[VERSION]
            for s in (a, b)
            for _ in range(2)
        }
        assert len(got) == 1, f"user-{user} was sent to {got}"


def test_deploy_mistakes_are_named(gateway_url: str, models: Models) -> None:
    with pytest.raises(InvalidInput, match="strategy"):
        api.deploy("iris", "iris-clf/2", strategy="yolo")
    with pytest.raises(InvalidInput, match="percentage"):
        api.deploy("iris", "iris-clf/2", steps="10,500")
    with pytest.raises(InvalidInput, match="duration such as"):
        api.deploy("iris", "iris-clf/2", interval="soon")
    with pytest.raises(NotFound, match="no version 99"):
        api.deploy("iris", "iris-clf/99")
    with pytest.raises(Conflict, match="already the primary"):
        api.deploy("iris", "iris-clf/1")
    with pytest.raises(NotFound, match="no endpoint named 'nope'"):
        api.deploy("nope", "iris-clf/2")


def test_a_shadow_that_raises_fails_on_its_own_errors_only(
    gateway_url: str, models: Models, tracking
) -> None:  # type: ignore[no-untyped-def]
    # the shadow answers queued requests in batches; one raising row must not make the
    # rest of its batch count as errors
    rollout = api.deploy(
        "iris",
        f"iris-clf/{models.flaky}",
        strategy="shadow",
        duration="2s",
        min_requests=50,
        max_error_rate=0.5,
    )
    with Traffic(gateway_url, models.X.sample(frac=1, random_state=3)) as traffic:
        assert wait_for(lambda: _ended(tracking, rollout.id), what="the shadow") == "succeeded"
    assert all(status == 200 for _, status in traffic.answers)  # clients never saw it
    [analysis] = tracking.store.list_analyses(rollout.id)
    errors = next(f for f in analysis.data["figures"] if f["name"] == "error_rate")
    # iris rows whose first feature is 3 mod 5 in tenths: 31 of 150
    assert 0.1 < errors["candidate"] < 0.35


def test_a_candidate_that_refuses_what_the_primary_takes(
    served: Served, models: Models, tracking
) -> None:  # type: ignore[no-untyped-def]
    from sklearn.datasets import load_breast_cancer
    from sklearn.tree import DecisionTreeClassifier

    Xc, yc = load_breast_cancer(return_X_y=True, as_frame=True)
    with sy.start_run() as run:
        logged = run.log_model(
            DecisionTreeClassifier(max_depth=2).fit(Xc, yc), "iris-clf", input_example=Xc[:5]
        )
    tracking.writer.flush()
    assert logged.version is not None
    with pytest.raises(InvalidInput, match="would refuse requests iris-clf/1 takes"):
        api.deploy("iris", logged.version.uri, **FAST)
    rollout = api.deploy(
        "iris", logged.version.uri, steps="20,100", allow_signature_change=True, **FAST
    )
    with Traffic(served.url, models.X) as traffic:
        assert wait_for(lambda: _ended(tracking, rollout.id), what="the rollback") == "failed"
    assert "error rate" in tracking.store.get_rollout(rollout.id).reason
    refused = [s for v, s in traffic.answers if v == logged.version.uri.removeprefix("models:/")]
    assert refused and set(refused) == {422}


@pytest.mark.parametrize(
    ("steps", "shares"),
    [("10,50,100", (0.1, 0.5, 1.0)), ("10,50", (0.1, 0.5, 1.0)), ([25], (0.25, 1.0))],
)
def test_a_canary_always_ends_at_all_traffic(steps: Any, shares: tuple[float, ...]) -> None:
    assert api.parse_steps(steps) == shares


def test_shares_given_as_steps_are_refused() -> None:
    with pytest.raises(InvalidInput, match="percentages"):
        api.parse_steps([0.1, 0.5, 1.0])
