"""The registry half of the Store contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from shipyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from shipyard.store.base import Store
from shipyard.store.entities import ArtifactEntry

FILES = [
    ArtifactEntry("model/model.skops", "a" * 64, 10),
    ArtifactEntry("model/m.json", "b" * 64, 2),
]


def _version(store: Store, name: str = "iris-clf", **kw):  # type: ignore[no-untyped-def]
    return store.create_model_version(name, files=FILES, flavor="sklearn", actor="ann", **kw)


def test_versions_are_numbered_per_name_and_create_the_model(store: Store) -> None:
    v1 = _version(store, signature={"columns": []}, tags={"stage": "dev"})
    v2 = _version(store)
    other = _version(store, "other")
    assert (v1.version, v2.version, other.version) == (1, 2, 1)
    assert v1.uri == "models:/iris-clf/1" and v1.signature == {"columns": []}
    assert v1.tags == {"stage": "dev"} and v1.created_by == "ann"
    assert [f.path for f in v1.files] == ["model/m.json", "model/model.skops"]
    assert v1.digest == v2.digest  # same files, same identity
    model = store.get_registered_model("iris-clf")
    assert model.latest_version == 2 and model.aliases == {}
    assert [m.name for m in store.list_registered_models()] == ["iris-clf", "other"]
    assert [v.version for v in store.list_model_versions("iris-clf")] == [1, 2]
    assert store.get_model_version_by_alias("iris-clf", "latest").version == 2


def test_create_registered_model_and_update(store: Store) -> None:
    store.create_registered_model("m", description="first", tags={"team": "x"}, actor="ann")
    with pytest.raises(AlreadyExists, match="'m'"):
        store.create_registered_model("m")
    model = store.update_registered_model(
        "m", description="second", policy={"required_checks": ["accuracy"]}, actor="bob"
    )
    assert model.description == "second" and model.tags == {"team": "x"}
    assert model.policy == {"required_checks": ["accuracy"]}
    assert model.latest_version is None
    version = _version(store, "m")
    updated = store.update_model_version("m", version.version, description="d", tags={"k": "v"})
    assert updated.description == "d" and updated.tags == {"k": "v"}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.get_registered_model("nope"), "no registered model named 'nope'"),
        (lambda s: s.get_model_version("iris-clf", 9), "has no version 9"),
        (lambda s: s.get_model_version_by_alias("iris-clf", "prod"), "no alias 'prod'"),
        (lambda s: s.set_alias("iris-clf", "prod", 9), "has no version 9"),
        (lambda s: s.delete_alias("iris-clf", "prod"), "no alias 'prod'"),
        (lambda s: s.list_model_versions("nope"), "'nope'"),
    ],
)
def test_unknown_things_are_not_found(store: Store, call, message) -> None:  # type: ignore[no-untyped-def]
    _version(store)
    with pytest.raises(NotFound, match=message):
        call(store)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: _version(s, "a/b"), "model name 'a/b'"),
        (lambda s: _version(s, "a@b"), "model name 'a@b'"),
        (lambda s: _version(s, ""), "non-empty"),
        (lambda s: s.set_alias("iris-clf", "latest", 1), "reserved"),
        (lambda s: s.set_alias("iris-clf", "1st", 1), "must start with a letter"),
        (lambda s: s.get_model_version("iris-clf", 0), "positive integer"),
        (lambda s: s.create_model_version("x", files=[], flavor="sklearn"), "at least one file"),
        (lambda s: _version(s, tags={"bad key!": 1}), "characters outside"),
        (
            lambda s: s.add_validation("iris-clf", 1, status="great", checks=[], report={}),
            "status",
        ),
    ],
)
def test_bad_input_is_refused(store: Store, call, message) -> None:  # type: ignore[no-untyped-def]
    _version(store)
    with pytest.raises(InvalidInput, match=message):
        call(store)


def test_aliases_move_with_compare_and_set(store: Store) -> None:
    for _ in range(3):
        _version(store)
    assert store.set_alias("iris-clf", "production", 1, expected=None, actor="ann") is None
    assert store.set_alias("iris-clf", "production", 2, expected=1) == 1
    with pytest.raises(Conflict, match="expected version 1, it is version 2"):
        store.set_alias("iris-clf", "production", 3, expected=1)
    with pytest.raises(Conflict, match="expected unset"):
        store.set_alias("iris-clf", "production", 3, expected=None)
    assert store.set_alias("iris-clf", "staging", 3) is None
    assert store.get_registered_model("iris-clf").aliases == {"production": 2, "staging": 3}
    assert store.get_model_version("iris-clf", 2).aliases == ["production"]
    assert store.get_model_version_by_alias("iris-clf", "staging").version == 3
    assert store.delete_alias("iris-clf", "staging", expected=3) == 3
    with pytest.raises(NotFound):
        store.get_model_version_by_alias("iris-clf", "staging")


def test_every_change_is_audited(store: Store) -> None:
    _version(store)
    _version(store)
    store.set_alias("iris-clf", "production", 1, actor="ann")
    store.set_alias("iris-clf", "production", 2, actor="bob", details={"reason": "better"})
    store.delete_alias("iris-clf", "production", actor="bob")
    store.add_validation("iris-clf", 2, status="passed", checks=["metric"], report={}, actor="c")
    store.record_audit("iris-clf", "promote_refused", version=2, actor="dan")
    log = store.list_audit("iris-clf")
    assert [e.action for e in reversed(log)] == [
        "create_model",
        "create_version",
        "create_version",
        "set_alias",
        "set_alias",
        "delete_alias",
        "validate",
        "promote_refused",
    ]
    moved = log[3]
    assert moved.actor == "bob" and moved.version == 2
    assert moved.details == {"alias": "production", "from": 1, "to": 2, "reason": "better"}
    assert store.list_audit(limit=2) == log[:2]


def test_validations_are_stored_with_their_baseline(store: Store) -> None:
    _version(store)
    _version(store)
    first = store.add_validation(
        "iris-clf",
        2,
        status="failed",
        checks=["metric:accuracy"],
        report={"status": "failed", "results": [{"name": "metric:accuracy", "x": 0.5}]},
        baseline_version=1,
        baseline_alias="production",
        data_digest="d" * 64,
    )
    second = store.add_validation("iris-clf", 2, status="passed", checks=[], report={})
    assert first.baseline_version == 1 and first.report["results"][0]["x"] == 0.5
    assert [r.id for r in store.list_validations("iris-clf", 2)] == [second.id, first.id]
    assert store.list_validations("iris-clf", 1) == []
    with pytest.raises(InvalidInput, match="plain JSON"):
        store.add_validation("iris-clf", 2, status="passed", checks=[], report={"x": float("nan")})


def test_model_files_keep_their_blobs(store: Store) -> None:
    _version(store)
    assert {"a" * 64, "b" * 64} <= store.referenced_digests()


def test_concurrent_versions_get_distinct_numbers(store: Store) -> None:
    _version(store)  # the model exists; the race is on numbering
    numbers: list[int] = []
    errors: list[BaseException] = []

    def register() -> None:
        try:
            numbers.append(_version(store).version)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=register) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert sorted(numbers) == list(range(2, 10))


def test_concurrent_promotions_leave_one_winner(store: Store) -> None:
    for _ in range(9):
        _version(store)
    store.set_alias("iris-clf", "production", 1)
    won: list[int] = []
    lost: list[int] = []
    barrier = threading.Barrier(8)

    def promote(version: int) -> None:
        barrier.wait()
        try:
            store.set_alias("iris-clf", "production", version, expected=1, actor=f"u{version}")
            won.append(version)
        except Conflict:
            lost.append(version)

    threads = [threading.Thread(target=promote, args=(n,)) for n in range(2, 10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(won) == 1 and len(lost) == 7
    assert store.get_registered_model("iris-clf").aliases == {"production": won[0]}
    moves = [e for e in store.list_audit("iris-clf") if e.action == "set_alias"]
    assert len(moves) == 2  # the first set and the one winner; losers changed nothing


def test_step_cache_first_writer_wins(store: Store) -> None:
    run_a, run_b = "a" * 32, "b" * 32
    outputs = [{"name": "0", "files": [{"path": "data.parquet", "digest": "c" * 64, "size": 3}]}]
    assert store.get_step_cache("k" * 64) is None
    assert store.put_step_cache("k" * 64, run_a, "load", outputs) is True
    assert store.put_step_cache("k" * 64, run_b, "load", []) is False
    entry = store.get_step_cache("k" * 64)
    assert entry is not None and entry["run_id"] == run_a and entry["outputs"] == outputs
    assert entry["step"] == "load"
