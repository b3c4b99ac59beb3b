"""One contract for every Store implementation, run on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import threading
import time

import pytest

from shipyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from shipyard.store.base import Store
from shipyard.store.entities import ArtifactEntry, Dataset, Environment, WriteBatch


def test_is_a_store(store: Store) -> None:
    assert isinstance(store, Store)


def test_experiments_lifecycle(store: Store) -> None:
    exp = store.create_experiment("iris", tags={"team": "fraud"})
    assert exp.name == "iris" and exp.tags == {"team": "fraud"} and exp.lifecycle == "active"
    assert store.get_experiment(exp.id) == exp
    assert store.get_experiment("iris") == exp
    assert store.get_experiment(str(exp.id)) == exp
    with pytest.raises(AlreadyExists, match="iris"):
        store.create_experiment("iris")
    renamed = store.rename_experiment(exp.id, "iris-v2")
    assert renamed.name == "iris-v2"
    store.create_experiment("other")
    with pytest.raises(AlreadyExists, match="other"):
        store.rename_experiment(exp.id, "other")
    store.delete_experiment(exp.id)
    assert [e.name for e in store.list_experiments()] == ["other"]
    assert {e.name for e in store.list_experiments(include_deleted=True)} == {"iris-v2", "other"}
    store.restore_experiment(exp.id)
    assert store.get_experiment(exp.id).lifecycle == "active"


def test_get_or_create_experiment_is_idempotent(store: Store) -> None:
    a = store.get_or_create_experiment("x")
    assert store.get_or_create_experiment("x").id == a.id


@pytest.mark.parametrize("ref", ["nope", 12345])
def test_unknown_experiment_is_named(store: Store, ref: object) -> None:
    with pytest.raises(NotFound, match=str(ref)):
        store.get_experiment(ref)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "   ", "x" * 251, "a\nb"])
def test_bad_experiment_names(store: Store, name: str) -> None:
    with pytest.raises(InvalidInput):
        store.create_experiment(name)


def test_run_round_trip(store: Store) -> None:
    exp = store.create_experiment("e")
    run = store.create_run(exp.id, "r1", user="ana", tags={"t": "1"})
    assert run.status == "running" and run.name == "r1" and run.user == "ana"
    now = time.time()
    store.log_batch(
        run.id,
        metrics=[
            ("loss", 0.5, 0, now),
            ("loss", 0.25, 1, now),
            ("acc", float("nan"), 0, now),
            ("big", float("inf"), 0, now),
        ],
        params={"lr": "0.1", "model": "rf"},
        tags={"t": "2"},
    )
    got = store.get_run(run.id)
    assert got.params == {"lr": "0.1", "model": "rf"}
    assert got.metrics["loss"] == 0.25
    assert math.isnan(got.metrics["acc"])
    assert got.metrics["big"] == math.inf
    assert got.tags == {"t": "2"}
    history = store.get_metric_history(run.id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 0.25)]
    assert math.isnan(store.get_metric_history(run.id, "acc")[0].value)
    store.set_run_status(run.id, "finished", end_time=now + 1)
    done = store.get_run(run.id)
    assert done.status == "finished" and done.end_time == now + 1
    with pytest.raises(Conflict, match="finished"):
        store.log_batch(run.id, params={"x": "1"})


def test_latest_metric_is_highest_step_not_last_written(store: Store) -> None:
    exp = store.create_experiment("e")
    run = store.create_run(exp.id)
    store.log_batch(run.id, metrics=[("m", 3.0, 5, 1.0)])
    store.log_batch(run.id, metrics=[("m", 1.0, 2, 2.0)])
    assert store.get_run(run.id).metrics["m"] == 3.0
    store.log_batch(run.id, metrics=[("m", 7.0, 6, 3.0), ("m", 6.0, 4, 4.0)])
    assert store.get_run(run.id).metrics["m"] == 7.0


def test_param_conflict_names_both_values(store: Store) -> None:
    exp = store.create_experiment("e")
    run = store.create_run(exp.id)
    store.log_batch(run.id, params={"lr": "0.1"})
    store.log_batch(run.id, params={"lr": "0.1"})  # same value: fine
    with pytest.raises(Conflict) as info:
        store.log_batch(run.id, params={"lr": "0.2"})
    assert "0.1" in info.value.message and "0.2" in info.value.message
    assert store.get_run(run.id).params == {"lr": "0.1"}


def test_write_reports_conflicts_and_keeps_the_rest(store: Store) -> None:
    exp = store.create_experiment("e")
    run = store.create_run(exp.id)
    store.log_batch(run.id, params={"lr": "0.1"})
    conflicts = store.write(
        WriteBatch(
            params=[(run.id, "lr", "0.3"), (run.id, "depth", "4")],
            metrics={run.id: [("m", 1.0, 0, 1.0)]},
        )
    )
    assert len(conflicts) == 1 and "lr" in conflicts[0]
    got = store.get_run(run.id)
    assert got.params == {"lr": "0.1", "depth": "4"} and got.metrics == {"m": 1.0}


@pytest.mark.parametrize("key", ["", "a" * 251, "bad\x00key", "semi;colon", "quote'"])
def test_bad_keys_rejected(store: Store, key: str) -> None:
    exp = store.create_experiment("e")
    run = store.create_run(exp.id)
    with pytest.raises(InvalidInput):
        store.log_batch(run.id, metrics=[(key, 1.0, 0, 0.0)])
    with pytest.raises(InvalidInput):
        store.log_batch(run.id, params={key: "1"})


@pytest.mark.parametrize("value", ["abc", None, [1], {"a": 1}])
def test_non_numeric_metric_names_the_key(store: Store, value: object) -> None:
    exp = store.create_experiment("e")
    run = store.create_run(exp.id)
    with pytest.raises(InvalidInput, match="'acc'"):
        store.log_batch(run.id, metrics=[("acc", value, 0, 0.0)])  # type: ignore[list-item]


def test_unknown_run(store: Store) -> None:
    missing = "0" * 32
    with pytest.raises(NotFound, match=missing):
        store.get_run(missing)
    with pytest.raises(NotFound, match=missing):
        store.log_batch(missing, params={"a": "1"})
    with pytest.raises(InvalidInput, match="not a run id"):
        store.get_run("../../etc")


def test_unknown_metric_lists_known_keys(store: Store) -> None:
    exp = store.create_experiment("e")
    run = store.create_run(exp.id)
    store.log_batch(run.id, metrics=[("loss", 1.0, 0, 0.0)])
    with pytest.raises(NotFound, match="loss"):
        store.get_metric_history(run.id, "accuracy")


def test_delete_and_restore_run(store: Store) -> None:
    exp = store.create_experiment("e")
    run = store.create_run(exp.id)
    store.delete_run(run.id)
    assert store.get_run(run.id).lifecycle == "deleted"
    assert store.search_runs([exp.id]).runs == []
    assert [r.id for r in store.search_runs([exp.id], include_deleted=True).runs] == [run.id]
    store.restore_run(run.id)
    assert [r.id for r in store.search_runs([exp.id]).runs] == [run.id]


def test_search_filters_orders_and_pages(store: Store) -> None:
    a = store.create_experiment("a")
    b = store.create_experiment("b")
    ids = {}
    for i in range(12):
        exp = a if i % 2 == 0 else b
        run = store.create_run(exp.id, f"r{i}", start_time=1000.0 + i)
        store.log_batch(
            run.id,
            metrics=[("acc", i / 10, 0, 0.0)],
            params={"model": "rf" if i < 6 else "gbm", "n": str(i * 10)},
        )
        ids[i] = run.id
    found = store.search_runs(
        None, "metrics.acc > 0.5 and params.model = 'gbm'", ["metrics.acc DESC"]
    )
    assert [r.name for r in found.runs] == ["r11", "r10", "r9", "r8", "r7", "r6"]
    either = store.search_runs(None, "params.n IN (0, 110) OR name = 'r3'", ["start_time"])
    assert [r.name for r in either.runs] == ["r0", "r3", "r11"]
    only_a = store.search_runs([a.id], "params.n >= 60")
    assert {r.name for r in only_a.runs} == {"r6", "r8", "r10"}
    page1 = store.search_runs(None, "", ["metrics.acc"], max_results=5)
    page2 = store.search_runs(
        None, "", ["metrics.acc"], max_results=5, page_token=page1.next_page_token
    )
    page3 = store.search_runs(
        None, "", ["metrics.acc"], max_results=5, page_token=page2.next_page_token
    )
    names = [r.name for r in page1.runs + page2.runs + page3.runs]
    assert names == [f"r{i}" for i in range(12)]
    assert page3.next_page_token is None


def test_search_excludes_deleted_experiments_unless_asked(store: Store) -> None:
    exp = store.create_experiment("gone")
    store.create_run(exp.id)
    store.delete_experiment(exp.id)
    assert store.search_runs().runs == []
    assert len(store.search_runs(include_deleted=True).runs) == 1


@pytest.mark.parametrize("bad", ["metrics.acc >", "params.x = 'a' AND", "((status = 'running')"])
def test_malformed_filter_is_invalid_input(store: Store, bad: str) -> None:
    with pytest.raises(InvalidInput, match="position"):
        store.search_runs(None, bad)


def test_bad_page_token_and_limits(store: Store) -> None:
    with pytest.raises(InvalidInput, match="page token"):
        store.search_runs(page_token="garbage!")
    with pytest.raises(InvalidInput, match="max_results"):
        store.search_runs(max_results=0)


def test_artifact_manifest(store: Store) -> None:
    exp = store.create_experiment("e")
    run = store.create_run(exp.id)
    d1, d2 = "a" * 64, "b" * 64
    store.add_artifacts(
        run.id,
        [
            ArtifactEntry("plots/a.png", d1, 10),
            ArtifactEntry("plots/b.png", d2, 20),
            ArtifactEntry("notes.txt", d1, 10),
        ],
    )
    store.add_artifacts(run.id, [ArtifactEntry("notes.txt", d2, 20)])  # overwrite one path
    assert [e.path for e in store.list_artifacts(run.id)] == [
        "notes.txt",
        "plots/a.png",
        "plots/b.png",
    ]
    assert store.list_artifacts(run.id, "plots") == [
        ArtifactEntry("plots/a.png", d1, 10),
        ArtifactEntry("plots/b.png", d2, 20),
    ]
    assert store.list_artifacts(run.id, "notes.txt")[0].digest == d2
    assert store.list_artifacts(run.id, "plot") == []
    assert store.referenced_digests() == {d1, d2}


def test_find_artifacts_by_digest_prefix(store: Store) -> None:
    exp = store.create_experiment("e")
    first, second = store.create_run(exp.id), store.create_run(exp.id)
    d1, d2 = "ab" + "1" * 62, "ab" + "2" * 62
    a, b, c = (
        ArtifactEntry("a.txt", d1, 1),
        ArtifactEntry("b.txt", d2, 2),
        ArtifactEntry("o", d1, 1),
    )
    store.add_artifacts(first.id, [a, b])
    store.add_artifacts(second.id, [c])
    store.delete_run(second.id)  # a deleted run still holds the file
    assert store.find_artifacts(d1) == [(first.id, a), (second.id, c)]
    assert store.find_artifacts("AB2") == [(first.id, b)]
    assert {e.digest for _, e in store.find_artifacts("ab")} == {d1, d2}
    assert len(store.find_artifacts("ab", max_results=1)) == 1
    assert store.find_artifacts("f" * 8) == []
    for bad in ("", "ab%", "xyz", "a" * 65):
        with pytest.raises(InvalidInput):
            store.find_artifacts(bad)


def test_environments_are_shared_by_digest(store: Store) -> None:
    env = Environment("c" * 64, "3.11.7", "Linux", ["numpy==2.0.0", "pandas==2.2.0"])
    store.put_environment(env)
    store.put_environment(env)
    assert store.get_environment(env.digest) == env
    with pytest.raises(NotFound):
        store.get_environment("d" * 64)


def test_datasets(store: Store) -> None:
    exp = store.create_experiment("e")
    r1, r2 = store.create_run(exp.id), store.create_run(exp.id)
    ds = Dataset("iris", "e" * 64, 150, {"x": "float64"}, {"x": {"mean": 1.0}}, "training")
    store.log_dataset(r1.id, ds)
    store.log_dataset(r1.id, ds)
    store.log_dataset(r2.id, Dataset("iris", "e" * 64, 150, {"x": "float64"}, {}, "eval"))
    assert store.list_datasets(r1.id) == [ds]
    assert store.list_datasets(r2.id)[0].context == "eval"


def test_concurrent_writers_lose_nothing(store: Store) -> None:
    exp = store.create_experiment("e")
    runs = [store.create_run(exp.id) for _ in range(4)]
    errors: list[BaseException] = []

    def work(run_id: str) -> None:
        try:
            for step in range(20):
                store.log_batch(run_id, metrics=[("m", float(step), step, 0.0)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(r.id,)) for r in runs]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    for run in runs:
        assert len(store.get_metric_history(run.id, "m")) == 20


@pytest.mark.parametrize("descending", [False, True])
def test_metric_order_pages_through_runs_without_the_metric(store: Store, descending: bool) -> None:
    exp = store.create_experiment("e")
    expected_with, expected_without = [], []
    for i in range(10):
        run = store.create_run(exp.id, f"r{i}", start_time=1000.0 + i)
        if i % 3 == 0:
            expected_without.append(run.id)  # no value at all
        elif i % 3 == 1:
            store.log_batch(run.id, metrics=[("acc", float("nan"), 0, 0.0)])
            expected_without.append(run.id)  # NaN counts as no value
        else:
            store.log_batch(run.id, metrics=[("acc", float(i % 4), 0, 0.0)])
            expected_with.append((float(i % 4), run))
    order = "metrics.acc DESC" if descending else "metrics.acc"
    # ties on the metric fall back to newest first, like the runs without it
    expected_with.sort(key=lambda item: (-item[0] if descending else item[0], -item[1].start_time))
    runs_without = sorted(expected_without, key=lambda rid: -store.get_run(rid).start_time)
    expected = [run.id for _, run in expected_with] + runs_without
    seen, token = [], None
    for _ in range(10):
        page = store.search_runs([exp.id], "", [order], max_results=3, page_token=token)
        seen += [r.id for r in page.runs]
        token = page.next_page_token
        if token is None:
            break
    assert seen == expected
    # a page that starts past the runs with a value
    late = store.search_runs(
        [exp.id], "", [order], max_results=2, page_token=_token(len(expected_with) + 1)
    )
    assert [r.id for r in late.runs] == expected[len(expected_with) + 1 :][:2]


def _token(offset: int) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def test_count_runs(store: Store) -> None:
    a, b = store.create_experiment("a"), store.create_experiment("b")
    runs = [store.create_run(a.id) for _ in range(3)] + [store.create_run(b.id)]
    store.create_experiment("empty")
    store.delete_run(runs[0].id)
    assert store.count_runs() == {a.id: 2, b.id: 1}
