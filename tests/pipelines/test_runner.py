"""Pipelines run inline: child runs, stored outputs, cache hits, failures, retries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import shipyard as sy
from shipyard.errors import InvalidInput

CALLS: list[str] = []


@sy.step
def load(n: int) -> pd.DataFrame:
    CALLS.append("load")
    return pd.DataFrame({"x": np.arange(n, dtype=float), "y": np.arange(n) % 2})


@sy.step
def split(df: pd.DataFrame, frac: float = 0.5) -> tuple[pd.DataFrame, pd.DataFrame]:
    CALLS.append("split")
    cut = int(len(df) * frac)
    return df.iloc[:cut], df.iloc[cut:]


@sy.step
def mean(df: pd.DataFrame) -> float:
    CALLS.append("mean")
    value = float(df["x"].mean())
    sy.log_metric("mean", value)
    return value


@sy.step
def total(a: float, b: float) -> dict[str, float]:
    CALLS.append("total")
    print(f"adding {a} and {b}")
    return {"a": a, "b": b, "sum": a + b}


@sy.pipeline
def stats(n: int = 10, frac: float = 0.5):  # type: ignore[no-untyped-def]
    left, right = split(load(n), frac)
    return total(mean(left), mean(right))


@pytest.fixture(autouse=True)
def _fresh(tracking):  # type: ignore[no-untyped-def]
    CALLS.clear()
    return tracking


def test_runs_steps_as_child_runs_and_returns_the_value(tracking) -> None:  # type: ignore[no-untyped-def]
    result = stats.run(n=10)
    assert result.status == "finished"
    assert result.value == {"a": 2.0, "b": 7.0, "sum": 9.0}
    assert list(result.steps) == ["load", "split", "mean", "mean_2", "total"]
    assert CALLS == ["load", "split", "mean", "mean", "total"]
    pipeline_run = sy.get_run(result.run_id)
    assert pipeline_run.params == {"n": "10", "frac": "0.5"}
    assert pipeline_run.tags["shipyard.pipeline"] == "stats"
    child = sy.get_run(result.steps["mean_2"].run_id)
    assert child.parent_id == result.run_id and child.status == "finished"
    assert child.metrics == {"mean": 7.0}  # sy.log_metric inside a step goes to its run
    paths = [a.path for a in tracking.store.list_artifacts(result.steps["load"].run_id)]
    assert any(p.startswith("outputs/0/") for p in paths)
    assert sy.get_run(result.steps["split"].run_id).params == {"frac": "0.5"}
    logged = {a.path: a for a in tracking.store.list_artifacts(result.steps["total"].run_id)}
    text = tracking.blobs.read_bytes(logged["shipyard/output.log"].digest).decode()
    assert text == "adding 2.0 and 7.0\n"  # what the step printed is kept on its run


def test_an_unchanged_rerun_is_all_cache_hits(tracking) -> None:  # type: ignore[no-untyped-def]
    first = stats.run(n=10)
    CALLS.clear()
    second = stats.run(n=10)
    assert CALLS == []
    assert {o.status for o in second.steps.values()} == {"cached"}
    assert second.value == first.value
    hit = second.steps["total"]
    assert hit.cached_from == first.steps["total"].run_id
    assert sy.get_run(hit.run_id).tags["shipyard.cached_from"] == hit.cached_from


def test_a_changed_param_reruns_what_it_changes(tracking) -> None:  # type: ignore[no-untyped-def]
    stats.run(n=10)
    CALLS.clear()
    result = stats.run(n=10, frac=0.3)
    statuses = {k: o.status for k, o in result.steps.items()}
    assert statuses["load"] == "cached" and statuses["split"] == "finished"
    assert CALLS == ["split", "mean", "mean", "total"]
    CALLS.clear()
    no_cache = stats.run(n=10, frac=0.3, cache=False)
    assert CALLS == ["load", "split", "mean", "mean", "total"]
    assert no_cache.value == result.value


def test_a_failing_step_fails_only_what_depends_on_it(tracking, capsys) -> None:  # type: ignore[no-untyped-def]
    @sy.step
    def boom(df: pd.DataFrame) -> float:
        raise ValueError("bad data")

    @sy.pipeline
    def broken(n: int = 6):  # type: ignore[no-untyped-def]
        df = load(n)
        return total(boom(df), mean(df))

    result = broken.run()
    statuses = {k: o.status for k, o in result.steps.items()}
    assert statuses == {
        "load": "finished",
        "boom": "failed",
        "mean": "finished",
        "total": "skipped",
    }
    assert result.status == "failed" and result.value is None
    failed = sy.get_run(result.steps["boom"].run_id)
    assert failed.status == "failed" and "ValueError: bad data" in (failed.error or "")
    assert sy.get_run(result.run_id).status == "failed"
    assert capsys.readouterr().err.count("ValueError: bad data") == 1


def test_retries_with_backoff(tracking) -> None:  # type: ignore[no-untyped-def]
    attempts: list[int] = []

    @sy.step(retries=2, retry_delay=0.01, cache=False)
    def flaky(n: int) -> int:
        attempts.append(n)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return n

    @sy.pipeline
    def once(n: int = 1):  # type: ignore[no-untyped-def]
        return flaky(n)

    result = once.run()
    assert result.value == 1 and len(attempts) == 3
    tags = sy.get_run(result.steps["flaky"].run_id).tags
    assert tags["shipyard.retry.1"] == "ConnectionError: try again"


def test_declared_files_are_part_of_the_key(tracking, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "data.csv").write_text("x\n1\n2\n")

    @sy.step(reads=["*.csv"])
    def read() -> int:
        CALLS.append("read")
        return len(pd.read_csv("data.csv"))

    @sy.pipeline
    def files():  # type: ignore[no-untyped-def]
        return read()

    assert files.run().value == 2
    assert files.run().steps["read"].status == "cached"
    (tmp_path / "data.csv").write_text("x\n1\n2\n3\n")
    assert files.run().value == 3 and CALLS == ["read", "read"]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: stats.run(n=1, wrong=2), "unexpected keyword argument 'wrong'"),
        (lambda: stats(3), "run a pipeline with stats.run"),
        (lambda: sy.pipeline(lambda: mean(load(1), 5)).run(), "step 'mean': too many"),
        (lambda: sy.pipeline(lambda: [x for x in load(2)]).run(), "cannot be unpacked"),
        (lambda: sy.pipeline(lambda: 1 if load(2) else 0).run(), "not known while"),
        (lambda: sy.pipeline(lambda: None).run(), "calls no steps"),
        (lambda: stats.run(executor="spark"), "unknown executor 'spark'"),
        (lambda: sy.step(retries=-1)(len), "retries must be at least 0"),
    ],
)
def test_mistakes_are_caught_before_anything_runs(tracking, build, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match=message):
        build()
    assert CALLS == []


def test_a_step_outside_a_pipeline_is_a_plain_call() -> None:
    assert mean(pd.DataFrame({"x": [1.0, 3.0]})) == 2.0


def test_resume_runs_only_the_failed_steps_and_their_dependents(tracking, tmp_path) -> None:  # type: ignore[no-untyped-def]
    flag = tmp_path / "broken"
    flag.write_text("1")

    @sy.step(cache=False)
    def fragile(df: pd.DataFrame) -> float:
        CALLS.append("fragile")
        if flag.exists():
            raise RuntimeError("transient")
        return float(len(df))

    @sy.step(cache=False)
    def independent(df: pd.DataFrame) -> float:
        CALLS.append("independent")
        return 1.0

    @sy.pipeline
    def flaky(n: int = 4):  # type: ignore[no-untyped-def]
        df = load(n)
        return total(fragile(df), independent(df))

    first = flaky.run(n=5)
    assert first.status == "failed" and first.steps["total"].status == "skipped"
    flag.unlink()
    CALLS.clear()
    resumed = flaky.resume(first.run_id)
    assert resumed.status == "finished" and resumed.value["sum"] == 6.0
    # cache=False steps that finished are reused too: only the failed one and its dependent ran
    assert CALLS == ["fragile", "total"]
    assert resumed.steps["independent"].cached_from == first.steps["independent"].run_id
    assert sy.get_run(resumed.run_id).tags["shipyard.resumed_from"] == first.run_id
    with pytest.raises(InvalidInput, match="not a pipeline run"):
        flaky.resume(first.steps["load"].run_id)


def test_a_changed_environment_is_a_miss_unless_opted_out(tracking, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from shipyard.pipelines import keys

    @sy.step(environment_in_key=False)
    def steady(n: int) -> int:
        CALLS.append("steady")
        return n

    @sy.pipeline
    def env_pipeline(n: int = 2):  # type: ignore[no-untyped-def]
        return [load(n), steady(n)]

    env_pipeline.run()
    monkeypatch.setattr(keys, "_environment", lambda: "another environment")
    CALLS.clear()
    result = env_pipeline.run()
    assert result.steps["load"].status == "finished" and CALLS == ["load"]
    assert result.steps["steady"].status == "cached"


def test_small_outputs_are_one_blob_described_by_a_tag(tracking) -> None:  # type: ignore[no-untyped-def]
    import json

    result = stats.run(n=10)
    total_run = tracking.store.get_run(result.steps["total"].run_id)
    [described] = json.loads(total_run.tags["shipyard.outputs"])
    assert described["meta"]["materializer"] == "json"
    paths = [a.path for a in tracking.store.list_artifacts(total_run.id)]
    assert "shipyard/outputs.json" not in paths and "outputs/0/value.json" in paths
    # a frame still goes through its materializer's folder, and the reruns read both back
    load_run = tracking.store.get_run(result.steps["load"].run_id)
    assert json.loads(load_run.tags["shipyard.outputs"])[0]["meta"]["materializer"] == "dataframe"
    again = stats.run(n=10)
    assert again.value == result.value and CALLS.count("total") == 1


def test_a_long_outputs_description_goes_to_a_file_that_resume_reads(  # type: ignore[no-untyped-def]
    tracking, tmp_path, monkeypatch
) -> None:
    from shipyard.pipelines import runner

    monkeypatch.setattr(runner, "MAX_OUTPUTS_TAG", 10)
    flag = tmp_path / "broken"
    flag.write_text("1")

    @sy.step(cache=False)
    def fragile(a: float) -> float:
        if flag.exists():
            raise RuntimeError("transient")
        return a

    @sy.pipeline
    def chain(n: int = 4):  # type: ignore[no-untyped-def]
        left, _ = split(load(n))
        return fragile(mean(left))

    first = chain.run(n=6)
    assert first.status == "failed"
    split_run = first.steps["split"].run_id
    assert runner.OUTPUTS_TAG not in tracking.store.get_run(split_run).tags
    assert runner.OUTPUTS_FILE in [a.path for a in tracking.store.list_artifacts(split_run)]
    flag.unlink()
    CALLS.clear()
    resumed = chain.resume(first.run_id)
    assert resumed.status == "finished" and resumed.value == 1.0 and CALLS == []


def test_a_json_value_json_cannot_write_is_pickled_with_a_warning(tracking) -> None:  # type: ignore[no-untyped-def]
    from shipyard.pipelines.materializers import PickleWarning

    @sy.step
    def huge() -> int:
        return 10**5000  # over Python's limit for int-to-text conversion

    @sy.pipeline
    def one():  # type: ignore[no-untyped-def]
        return huge()

    with pytest.warns(PickleWarning, match="could not be stored as json"):
        result = one.run()
    assert result.status == "finished" and result.value == 10**5000
    assert one.run().steps["huge"].status == "cached"
