"""The registry as users call it: log_model, load by URI, aliases, policy and promotion."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import shipyard as sy
from shipyard.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from shipyard.registry import api
from shipyard.registry.policy import Policy

X, Y = load_iris(return_X_y=True, as_frame=True)


@pytest.fixture
def as_user(monkeypatch):  # type: ignore[no-untyped-def]
    """Act as an OS user (getpass reads LOGNAME first)."""

    def switch(name: str) -> None:
        monkeypatch.setenv("LOGNAME", name)

    switch("alice")
    return switch


def _log(c: float = 1.0, register: bool = True, name: str = "iris-clf"):  # type: ignore[no-untyped-def]
    model = LogisticRegression(C=c, max_iter=500).fit(X, Y)
    with sy.start_run(params={"C": c}) as run:
        run.log_metric("acc", float(model.score(X, Y)))
        return run, model, run.log_model(model, name, input_example=X[:5], register=register)


def test_log_model_registers_versions_and_loads_by_every_uri(tracking, as_user) -> None:  # type: ignore[no-untyped-def]
    run, model, logged = _log()
    _, _, second = _log(0.5)
    assert logged.uri == "models:/iris-clf/1" and second.uri == "models:/iris-clf/2"
    assert logged.version.run_id == run.id and logged.version.created_by == "alice"
    assert logged.signature["columns"][0] == {
        "name": "sepal length (cm)",
        "dtype": "float64",
        "required": True,
    }
    expected = model.predict(X)
    for uri in (
        "models:/iris-clf/1",
        "iris-clf/1",
        f"runs:/{run.id}/iris-clf",
    ):
        np.testing.assert_array_equal(api.load_model(uri).predict(X), expected)
    api.set_alias("iris-clf/1", "staging")
    np.testing.assert_array_equal(api.load_model("models:/iris-clf@staging").predict(X), expected)
    assert api.get_model_version("iris-clf@latest").version == 2
    # the signature is enforced by the loaded model
    with pytest.raises(InvalidInput, match="petal width"):
        api.load_model("iris-clf/1").predict(X.drop(columns=["petal width (cm)"]))


def test_log_model_without_registering(tracking) -> None:  # type: ignore[no-untyped-def]
    run, model, logged = _log(register=False)
    assert logged.version is None and logged.uri == f"runs:/{run.id}/iris-clf"
    paths = [a.path for a in sy.open_store(tracking.uri).list_artifacts(run.id)]
    assert "iris-clf/shipyard-model.json" in paths and "iris-clf/model.skops" in paths
    version = api.register_model(logged.uri, "later")
    assert version.uri == "models:/later/1" and version.run_id == run.id
    np.testing.assert_array_equal(api.load_model("later/1").predict(X), model.predict(X))


def test_loading_copies_files_once(tracking) -> None:  # type: ignore[no-untyped-def]
    _log()
    first = api.model_folder("iris-clf/1")
    stamp = (first / "model.skops").stat().st_mtime_ns
    assert api.model_folder("models:/iris-clf@latest") == first
    assert (first / "model.skops").stat().st_mtime_ns == stamp


@pytest.mark.parametrize(
    ("uri", "error", "message"),
    [
        ("models:/nope/1", NotFound, "no registered model named 'nope'"),
        ("models:/iris-clf/7", NotFound, "has no version 7"),
        ("models:/iris-clf@prod", NotFound, "no alias 'prod'"),
        ("models:/iris-clf", InvalidInput, "names no version"),
        ("models:/iris-clf/x", InvalidInput, "positive number"),
        ("runs:/abc/model", InvalidInput, "not a run id"),
        (f"runs:/{'0' * 32}/", InvalidInput, "names no model folder"),
        (f"runs:/{'0' * 32}/model", NotFound, "run '0+' does not exist"),
        ("runs:/RUN/model", NotFound, "no model at 'model'"),
    ],
)
def test_bad_uris(tracking, uri, error, message) -> None:  # type: ignore[no-untyped-def]
    run, _, _ = _log()
    with pytest.raises(error, match=message):
        api.load_model(uri.replace("RUN", run.id))


def test_blobs_of_versions_survive_gc_of_deleted_runs(tracking) -> None:  # type: ignore[no-untyped-def]
    from shipyard.artifacts.gc import collect_garbage

    run, _, _ = _log()
    sy.delete_run(run.id)
    store = sy.open_store(tracking.uri)
    report = collect_garbage(tracking.blobs, store.referenced_digests(), grace_seconds=0)
    version = store.get_model_version("iris-clf", 1)
    assert not {f.digest for f in version.files} & set(report.deleted)


def test_protected_alias_moves_only_by_promotion(tracking, as_user) -> None:  # type: ignore[no-untyped-def]
    _log()
    with pytest.raises(PermissionDenied, match="protected"):
        api.set_alias("iris-clf/1", "production")
    with pytest.raises(ValidationFailed, match="no passing validation"):
        api.promote("iris-clf/1", "production")
    with pytest.raises(InvalidInput, match="needs --reason"):
        api.promote("iris-clf/1", "production", force=True)
    as_user("mallory")
    with pytest.raises(PermissionDenied, match="maintainers \\(alice\\)"):
        api.promote("iris-clf/1", "production", force=True, reason="because")
    as_user("alice")
    done = api.promote("iris-clf/1", "production", force=True, reason="first model")
    assert done.forced and done.previous is None
    actions = [e.action for e in sy.open_store(tracking.uri).list_audit("iris-clf")]
    assert actions[:4] == ["force_promote", "promote_refused", "promote_refused", "create_version"]


def test_promotion_needs_a_passing_validation_against_the_holder(tracking, as_user) -> None:  # type: ignore[no-untyped-def]
    store = sy.open_store(tracking.uri)
    _log()
    _log(0.5)
    _log(0.1)
    api.promote("iris-clf/1", force=True, reason="bootstrap")
    report = {
        "status": "passed",
        "results": [
            {"name": "metric:accuracy", "status": "passed"},
            {"name": "no_regression:accuracy", "status": "passed"},
        ],
    }
    # passing, but against the wrong holder
    store.add_validation(
        "iris-clf", 2, status="passed", checks=["x"], report=report, baseline_version=None
    )
    with pytest.raises(Conflict, match="validated against no holder"):
        api.promote("iris-clf/2")
    # failing against the right holder
    store.add_validation(
        "iris-clf", 2, status="failed", checks=["x"], report=report, baseline_version=1
    )
    with pytest.raises(ValidationFailed, match="its last one: failed"):
        api.promote("iris-clf/2")
    good = store.add_validation(
        "iris-clf", 2, status="passed", checks=["x"], report=report, baseline_version=1
    )
    done = api.promote("iris-clf/2")
    assert (done.previous, done.validation.id) == (1, good.id)
    # v3 validated against v1; production moved to v2 meanwhile -> Conflict
    store.add_validation(
        "iris-clf", 3, status="passed", checks=["x"], report=report, baseline_version=1
    )
    with pytest.raises(
        Conflict, match="validated against iris-clf/1, but 'production' now has iris-clf/2"
    ):
        api.promote("iris-clf/3")
    # required checks must be among the passed ones
    api.set_policy("iris-clf", required_checks=["latency"])
    store.add_validation(
        "iris-clf", 3, status="passed", checks=["x"], report=report, baseline_version=2
    )
    with pytest.raises(ValidationFailed, match="that includes latency"):
        api.promote("iris-clf/3")


def _spec_report(**limits):  # type: ignore[no-untyped-def]
    spec = {"metric": "accuracy", "min": None, "max": None, "min_rows": 30, **limits}
    return {
        "status": "passed",
        "results": [{"name": "metric:accuracy", "status": "passed", "slice": None, "spec": spec}],
    }


def test_the_floor_and_required_specs(tracking, as_user) -> None:  # type: ignore[no-untyped-def]
    store = sy.open_store(tracking.uri)
    _log()
    custom_only = {"status": "passed", "results": [{"name": "looks_fine", "status": "passed"}]}
    store.add_validation("iris-clf", 1, status="passed", checks=["x"], report=custom_only)
    with pytest.raises(ValidationFailed, match="includes a metric check"):
        api.promote("iris-clf/1")
    api.set_policy("iris-clf", required_checks=[{"metric": "accuracy", "min": 0.9}])
    assert Policy.of(store.get_registered_model("iris-clf")).required_checks == [
        {"metric": "accuracy", "min": 0.9, "max": None, "min_rows": 30}
    ]
    store.add_validation("iris-clf", 1, status="passed", checks=["x"], report=_spec_report(min=0.5))
    with pytest.raises(ValidationFailed, match=r"metric=accuracy, min=0\.9"):
        api.promote("iris-clf/1")
    store.add_validation(
        "iris-clf", 1, status="passed", checks=["x"], report=_spec_report(min=0.95)
    )
    assert api.promote("iris-clf/1").version == 1  # stricter than required is fine


@pytest.mark.parametrize(
    ("required", "message"),
    [
        (["metrc:acc"], "unknown required check 'metrc:acc'"),
        (["metric:acc"], "unknown metric 'acc'"),
        ([{"metric": "accuracy", "min": "high"}], "min"),
        ([{"speed": 1}], "must name one check"),
    ],
)
def test_bad_required_checks(tracking, as_user, required, message) -> None:  # type: ignore[no-untyped-def]
    _log()
    with pytest.raises(InvalidInput, match=message):
        api.set_policy("iris-clf", required_checks=required)


def test_policy_is_changed_by_maintainers_only(tracking, as_user) -> None:  # type: ignore[no-untyped-def]
    _log()
    policy = api.set_policy("iris-clf", maintainers=["alice", "bob"], protected_aliases=["prod"])
    assert policy.maintainers == ["alice", "bob"] and policy.protected_aliases == ["prod"]
    as_user("bob")
    api.set_alias("iris-clf/1", "production")  # no longer protected
    as_user("mallory")
    with pytest.raises(PermissionDenied, match="not a maintainer"):
        api.set_policy("iris-clf", maintainers=["mallory"])
    as_user("alice")
    with pytest.raises(InvalidInput, match="must be a list of strings"):
        api.set_policy("iris-clf", maintainers="alice")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="no maintainers"):
        api.set_policy("iris-clf", maintainers=[])


def test_removing_a_protected_alias_needs_a_reason(tracking, as_user) -> None:  # type: ignore[no-untyped-def]
    _log()
    api.promote("iris-clf/1", force=True, reason="r")
    with pytest.raises(InvalidInput, match="needs a reason"):
        api.delete_alias("iris-clf", "production")
    assert api.delete_alias("iris-clf", "production", reason="retired") == 1
