"""The Python tracking API against a real SQLite store and artifact folder."""

from __future__ import annotations

import json
import math

import pytest

import shipyard as sy
from shipyard.errors import Conflict, InvalidInput, NotFound


def test_the_issue_example(tracking, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pd = pytest.importorskip("pandas")
    (tmp_path / "plot.png").write_bytes(b"\x89PNG fake")
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "species": ["a", "b", "a"]})
    sy.set_experiment("iris")
    with sy.start_run(name="rf", params={"n_estimators": 100}) as run:
        for step in range(100):
            run.log_metric("loss", 1 / (step + 1), step=step)
        run.log_metrics({"acc": 0.93, "f1": 0.91})
        run.set_tags({"team": "fraud"})
        run.log_artifact(tmp_path / "plot.png")
        run.log_text("some notes", "notes.txt")
        run.log_dict({"lr": 0.1}, "config.json")
        ds = run.log_dataset(df, name="iris-train")
    got = sy.get_run(run.id)
    assert got.status == "finished" and got.end_time is not None
    assert got.params == {"n_estimators": "100"}
    assert got.metrics == {"loss": 0.01, "acc": 0.93, "f1": 0.91}
    assert got.tags["team"] == "fraud"
    assert sy.get_experiment(got.experiment_id).name == "iris"
    assert len(sy.get_metric_history(run.id, "loss")) == 100
    paths = {e.path for e in tracking.store.list_artifacts(run.id)}
    assert {"plot.png", "notes.txt", "config.json"} <= paths
    entries = {e.path: e for e in tracking.store.list_artifacts(run.id)}
    assert tracking.blobs.read_bytes(entries["notes.txt"].digest) == b"some notes"
    assert json.loads(tracking.blobs.read_bytes(entries["config.json"].digest)) == {"lr": 0.1}
    [stored] = tracking.store.list_datasets(run.id)
    assert stored.digest == ds.digest and stored.rows == 3 and stored.schema["x"] == "float64"
    assert stored.stats["x"]["mean"] == 2.0 and stored.stats["species"]["unique"] == 2


def test_auto_steps_and_nan(tracking) -> None:  # type: ignore[no-untyped-def]
    with sy.start_run() as run:
        for value in (1.0, float("nan"), float("inf"), 2):
            run.log_metric("m", value)
    history = sy.get_metric_history(run.id, "m")
    assert [m.step for m in history] == [0, 1, 2, 3]
    assert math.isnan(history[1].value) and history[2].value == math.inf
    assert history[3].value == 2.0


def test_module_level_functions_use_the_active_run(tracking) -> None:  # type: ignore[no-untyped-def]
    with sy.start_run() as run:
        sy.log_metric("a", 1)
        sy.log_params({"p": 1})
        sy.set_tag("t", "x")
        assert sy.active_run() is run
    assert sy.active_run() is None
    got = sy.get_run(run.id)
    assert got.metrics == {"a": 1.0} and got.params == {"p": "1"} and got.tags["t"] == "x"


def test_nested_runs(tracking) -> None:  # type: ignore[no-untyped-def]
    with sy.start_run(name="parent") as parent:
        with pytest.raises(InvalidInput, match="nested=True"):
            sy.start_run()
        with sy.start_run(name="child", nested=True) as child:
            assert sy.active_run() is child
        assert sy.active_run() is parent
    assert sy.get_run(child.id).parent_id == parent.id
    children = sy.search_runs(f"parent_id = '{parent.id}'")
    assert [r.id for r in children] == [child.id]


def test_exception_marks_failed_and_keeps_data(tracking) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ZeroDivisionError), sy.start_run() as run:
        run.log_metric("before", 1.0)
        1 / 0  # noqa: B018
    got = sy.get_run(run.id)
    assert got.status == "failed"
    assert "ZeroDivisionError" in (got.error or "")
    assert got.metrics == {"before": 1.0}


def test_keyboard_interrupt_marks_killed(tracking) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(KeyboardInterrupt), sy.start_run() as run:
        raise KeyboardInterrupt
    assert sy.get_run(run.id).status == "killed"


def test_resume_continues_steps(tracking) -> None:  # type: ignore[no-untyped-def]
    with sy.start_run(params={"lr": 0.1}) as run:
        run.log_metric("loss", 3.0)
        run.log_metric("loss", 2.0)
    with sy.start_run(run_id=run.id) as again:
        assert sy.get_run(run.id).status == "running"
        again.log_metric("loss", 1.0)
        again.log_params({"lr": 0.1})
        with pytest.raises(Conflict, match=r"0\.1.*0\.2"):
            again.log_params({"lr": 0.2})
    assert [m.step for m in sy.get_metric_history(run.id, "loss")] == [0, 1, 2]
    assert sy.get_run(run.id).status == "finished"


def test_logging_to_a_finished_run_is_a_conflict(tracking) -> None:  # type: ignore[no-untyped-def]
    with sy.start_run() as run:
        pass
    for call in (
        lambda: run.log_metric("m", 1.0),
        lambda: run.log_params({"a": 1}),
        lambda: run.set_tags({"a": 1}),
        lambda: run.log_text("x", "x.txt"),
    ):
        with pytest.raises(Conflict, match="finished"):
            call()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.log_metric("acc", "high"), "'acc'"),
        (lambda r: r.log_metric("acc", None), "'acc'"),
        (lambda r: r.log_metric("", 1.0), "empty"),
        (lambda r: r.log_metric("x" * 251, 1.0), "251"),
        (lambda r: r.log_metric("a*b", 1.0), r"\*"),
        (lambda r: r.log_params({"bad key!": 1}), "!"),
        (lambda r: r.log_metric("m", 1.0, step="two"), "step"),
        (lambda r: r.log_text("x", "../escape.txt"), r"\.\."),
        (lambda r: r.log_text("x", "/etc/passwd"), "absolute"),
        (lambda r: r.log_text("x", "a\x00b"), "NUL"),
        (lambda r: r.log_dataset([1, 2], "d"), "DataFrame"),
        (lambda r: r.log_metrics([1, 2]), "mapping"),
    ],
)
def test_bad_input_is_named(tracking, call, message) -> None:  # type: ignore[no-untyped-def]
    with sy.start_run() as run, pytest.raises(InvalidInput, match=message):
        call(run)


def test_artifact_paths_never_escape(tracking, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with sy.start_run() as run:
        for bad in ("../x", "a/../../x", "/abs", "C:\\win"):
            with pytest.raises(InvalidInput):
                run.log_text("x", bad)
    assert not (tmp_path.parent / "x").exists()


def test_same_file_from_many_runs_is_stored_once(tracking, tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "weights.bin"
    data.write_bytes(b"w" * 100_000)
    for _ in range(20):
        with sy.start_run() as run:
            run.log_artifact(data)
    blobs = list(tracking.blobs.iter_blobs())
    assert sum(1 for b in blobs if b.size == 100_000) == 1


def test_log_artifact_folder(tracking, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "a.txt").write_text("a")
    (out / "sub" / "b.txt").write_text("b")
    with sy.start_run() as run:
        paths = run.log_artifact(out)
    assert sorted(paths) == ["out/a.txt", "out/sub/b.txt"]


def test_missing_artifact_file(tracking, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with sy.start_run() as run, pytest.raises(NotFound, match=r"nope\.png"):
        run.log_artifact(tmp_path / "nope.png")


def test_search_runs_as_frame(tracking) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("pandas")
    sy.set_experiment("a")
    for i in range(5):
        with sy.start_run(name=f"r{i}", params={"i": i}) as run:
            run.log_metric("acc", i / 10)
    runs = sy.search_runs("metrics.acc >= 0.2", order_by="metrics.acc DESC")
    assert [r.name for r in runs] == ["r4", "r3", "r2"]
    frame = sy.search_runs("params.i IN (1, 3)", as_frame=True, order_by=["params.i"])
    assert list(frame["name"]) == ["r1", "r3"]
    assert list(frame["metrics.acc"]) == [0.1, 0.3]
    assert list(frame["params.i"]) == ["1", "3"]


def test_unknown_run_and_experiment(tracking) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound, match="f" * 32):
        sy.get_run("f" * 32)
    with pytest.raises(NotFound, match="nope"):
        sy.search_runs(experiments="nope")


def test_large_folder_shows_progress_and_is_stored(tracking, tmp_path, capfd) -> None:  # type: ignore[no-untyped-def]
    from shipyard.tracking import run as run_module

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(12):
        (folder / f"f{i}.txt").write_text(str(i))
    old = run_module.PROGRESS_FILES
    run_module.PROGRESS_FILES = 10
    try:
        with sy.start_run() as run:
            paths = run.log_artifact(folder)
    finally:
        run_module.PROGRESS_FILES = old
    assert len(paths) == 12
    assert len(tracking.store.list_artifacts(run.id, "many")) == 12
    assert "storing" in capfd.readouterr().err


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.log_metric("m", 0.0, step=2**63), "64-bit"),
        (lambda r: r.log_metric("m", 0.0, timestamp=float("nan")), "epoch seconds"),
        (lambda r: r.log_metric("m", 0.0, timestamp=1e30), "epoch seconds"),
        (lambda r: r.log_metric("m", 10**400), "not a float"),
        (lambda r: r.log_metric("m", True), "number"),
        (lambda r: r.log_params({"p": "caf\udce9.csv"}), "Unicode"),
        (lambda r: r.set_tags({"t": "\ud800"}), "Unicode"),
        (lambda r: r.log_text("x", "a\udce9.txt"), "Unicode"),
        (lambda r: r.log_dict({}, 5), "path"),
        (lambda r: r.log_artifact(5), "path"),
    ],
)
def test_values_the_database_cannot_hold_are_refused_at_the_call(tracking, call, message) -> None:  # type: ignore[no-untyped-def]
    with sy.start_run() as run:
        with pytest.raises(InvalidInput, match=message):
            call(run)
        run.log_metric("fine", 1.0)
    assert sy.get_run(run.id).metrics == {"fine": 1.0}


def test_numpy_values(tracking) -> None:  # type: ignore[no-untyped-def]
    np = pytest.importorskip("numpy")
    with sy.start_run() as run:
        run.log_metric("a", np.float32(0.5), step=np.int64(3), timestamp=np.int64(1_700_000_000))
        with pytest.raises(InvalidInput, match="number"):
            run.log_metric("b", np.bool_(True))
    [point] = sy.get_metric_history(run.id, "a")
    assert (point.value, point.step, point.timestamp) == (0.5, 3, 1_700_000_000.0)


def test_a_refused_run_does_not_cost_other_runs_their_data(tracking) -> None:  # type: ignore[no-untyped-def]
    writer = tracking.writer
    with sy.start_run() as good:
        good.log_metric("acc", 0.5)
        ghost = "0" * 32  # a run that does not exist (say, removed by another tool)
        writer.series(ghost).append(("m", 1.0, 0, 1.0))
        with pytest.raises(NotFound, match=ghost):
            writer.flush()
        good.log_metric("acc", 0.6)
    assert sy.get_run(good.id).metrics == {"acc": 0.6}
    assert len(sy.get_metric_history(good.id, "acc")) == 2


def test_end_leaves_the_active_run(tracking) -> None:  # type: ignore[no-untyped-def]
    run = sy.start_run(name="first")
    run.end()
    assert sy.active_run() is None
    second = sy.start_run(name="second")
    assert second.parent_id is None
    sy.end_run()


def test_set_experiment_takes_names_only(tracking) -> None:  # type: ignore[no-untyped-def]
    sy.set_experiment("baseline")
    with pytest.raises(InvalidInput, match="digits"):
        sy.set_experiment("1")


def test_worker_threads_log_to_the_programs_run(tracking) -> None:  # type: ignore[no-untyped-def]
    import threading

    with sy.start_run(name="main") as run:
        worker = threading.Thread(target=lambda: sy.log_metric("from_thread", 1.0))
        worker.start()
        worker.join()
    assert sy.get_run(run.id).metrics == {"from_thread": 1.0}
    assert len(sy.search_runs()) == 1


def test_changing_folder_keeps_the_store(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from shipyard.config import _cached, get_settings

    monkeypatch.delenv("SHIPYARD_URI", raising=False)
    monkeypatch.delenv("SHIPYARD_ARTIFACTS", raising=False)
    monkeypatch.setenv("SHIPYARD_EXPERIMENT", f"pin-{tmp_path.name}")  # a fresh settings key
    monkeypatch.chdir(tmp_path)
    first = get_settings().store_uri()
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path / "out")
    assert get_settings().store_uri() == first
    assert str(tmp_path / ".shipyard") in first
    _cached.cache_clear()


def test_batched_commits_run_ends_together(tracking) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    db = tracking.store.engine.url.database
    with sy.batched():
        for i in range(5):
            with sy.start_run(name=f"r{i}", params={"i": i}) as run:
                run.log_metric("m", i)
        with sqlite3.connect(db) as conn:  # another reader: not committed yet
            assert conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)
    runs = sy.search_runs("status = 'finished'", order_by="params.i")
    assert [r.metrics["m"] for r in runs] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert tracking.writer._series == {}  # ended runs' queues are released


def test_batched_block_with_an_exception_still_commits(tracking) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError), sy.batched():
        with sy.start_run(name="ok") as run:
            run.log_metric("m", 1.0)
        raise RuntimeError("sweep broke")
    assert sy.get_run(run.id).status == "finished"
