"""metric and no_regression on data where the truth is known, and the bootstrap."""

from __future__ import annotations

from typing import Any

import pytest
from validation_helpers import Broken, Fixed, loaded

from shipyard.errors import InvalidInput
from shipyard.validation import checks, validate_models
from shipyard.validation.metric_checks import (
    benchmark,
    paired_differences,
    percentile_interval,
    resample_weights,
)

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")


def _one(report: Any, name: str) -> Any:
    (result,) = [r for r in report.results if r.name == name and r.slice is None]
    return result


def test_a_clearly_worse_model_fails(iris: Any, iris_models: Any) -> None:
    report = validate_models(
        iris_models["weak"],
        iris,
        target="species",
        baseline=iris_models["good"],
        checks=[checks.no_regression("accuracy", max_drop=0.01)],
    )
    result = _one(report, "no_regression:accuracy")
    assert result.status == "failed" and report.status == "failed"
    lo, hi = result.interval
    assert hi < -0.01
    assert result.figures["difference"] == pytest.approx(
        result.figures["candidate"] - result.figures["baseline"]
    )
    assert lo <= result.figures["difference"] <= hi


def test_an_identical_model_passes(iris: Any, iris_models: Any) -> None:
    report = validate_models(
        iris_models["good_copy"],
        iris,
        target="species",
        baseline=iris_models["good"],
        checks=[checks.no_regression(m) for m in ("accuracy", "f1", "roc_auc", "log_loss")],
    )
    assert report.status == "passed"
    assert all(r.interval == (0.0, 0.0) for r in report.results)


def test_a_better_model_passes_in_the_metrics_direction(
    diabetes: Any, diabetes_models: Any
) -> None:
    def run(candidate: str, baseline: str) -> str:
        report = validate_models(
            diabetes_models[candidate],
            diabetes,
            target="progression",
            baseline=diabetes_models[baseline],
            checks=[checks.no_regression("rmse", max_drop=1.0)],
        )
        return report.status

    assert run("good", "mean") == "passed"  # rmse lower: better
    assert run("mean", "good") == "failed"


def test_a_close_call_is_inconclusive() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=200)
    flip = rng.random((2, 200))
    candidate = np.where(flip[0] < 0.20, 1 - y, y)
    baseline = np.where(flip[1] < 0.18, 1 - y, y)
    data = pd.DataFrame({"x": np.zeros(200), "y": y})
    report = validate_models(
        loaded(Fixed(candidate)),
        data,
        target="y",
        baseline=loaded(Fixed(baseline)),
        checks=[checks.no_regression("accuracy", max_drop=0.0)],
    )
    result = _one(report, "no_regression:accuracy")
    assert result.status == "inconclusive", result.message
    lo, hi = result.interval
    assert lo < 0 < hi
    assert "cannot tell" in result.message


def test_tiny_data_is_inconclusive_not_passed(iris: Any, iris_models: Any) -> None:
    tiny = iris.groupby("species").head(6)  # 18 rows: the identical model cannot pass
    report = validate_models(
        iris_models["good_copy"],
        tiny,
        target="species",
        baseline=iris_models["good"],
        checks=[checks.no_regression("accuracy"), checks.metric("accuracy", min=0.5)],
    )
    assert [(r.name, r.status) for r in report.results] == [
        ("no_regression:accuracy", "inconclusive"),
        ("metric:accuracy", "inconclusive"),
        ("data_size", "inconclusive"),
    ]
    assert "only 18 rows" in report.results[0].message
    assert report.results[1].figures["value"] == pytest.approx(1.0)


def test_a_class_with_one_row_is_inconclusive(iris: Any, iris_models: Any) -> None:
    rows = pd.concat([iris[iris.species != "setosa"], iris[iris.species == "setosa"].head(1)])
    report = validate_models(
        iris_models["good_copy"],
        rows,
        target="species",
        baseline=iris_models["good"],
        checks=[checks.no_regression("accuracy")],
    )
    assert report.status == "inconclusive"
    assert "'setosa' has fewer than 2 rows" in report.results[0].message


def test_a_metric_undefined_in_many_resamples_is_inconclusive(cancer: Any) -> None:
    # 2 positives in 40 rows: about 1 resample in 7 has none, and roc_auc is undefined there
    rows = pd.concat([cancer[cancer.target == 0].head(38), cancer[cancer.target == 1].head(2)])
    score = np.linspace(0, 1, 40)

    class Scored(Fixed):
        classes_ = np.array([0, 1])

        def predict_proba(self, X: Any) -> Any:
            return np.column_stack([1 - score, score])[: len(X)]

    report = validate_models(
        loaded(Scored((score > 0.5).astype(int))),
        rows,
        target="target",
        baseline=loaded(Scored((score > 0.5).astype(int))),
        checks=[checks.no_regression("roc_auc")],
    )
    result = report.results[0]
    assert result.status == "inconclusive"
    assert "undefined in" in result.message and result.figures["undefined_resamples"] > 50


def test_no_baseline_passes_and_says_so(iris: Any, iris_models: Any) -> None:
    report = validate_models(
        iris_models["good"], iris, target="species", checks=[checks.no_regression("accuracy")]
    )
    result = report.results[0]
    assert result.status == "passed"
    assert result.figures["baseline"] is None
    assert "no baseline" in result.message and result.interval is None


def test_a_broken_candidate_fails_and_a_broken_baseline_is_inconclusive(
    iris: Any, iris_models: Any
) -> None:
    def status(candidate: Any, baseline: Any) -> tuple[str, str]:
        report = validate_models(
            candidate, iris, target="species", baseline=baseline,
            checks=[checks.no_regression("accuracy")],
        )  # fmt: skip
        return report.results[0].status, report.results[0].message

    good = iris_models["good"]
    assert status(loaded(Broken()), good) == (
        "failed",
        "cannot score the candidate: predict raised RuntimeError: model file is corrupt",
    )
    assert status(good, loaded(Broken()))[0] == "inconclusive"
    assert status(good, loaded(Fixed(["setosa"] * 149)))[1] == (
        "cannot score the baseline: predict returned 149 predictions for 150 rows"
    )


def test_metric_thresholds(
    iris: Any, iris_models: Any, diabetes: Any, diabetes_models: Any
) -> None:
    report = validate_models(
        iris_models["good"],
        iris,
        target="species",
        checks=[
            checks.metric("accuracy", min=0.9),
            checks.metric("accuracy", min=0.99),
            checks.metric("log_loss", max=0.5),
        ],
    )
    assert [r.status for r in report.results] == ["passed", "failed", "passed"]
    assert report.results[1].message.startswith("accuracy 0.97")
    assert "should be ≥ 0.99" in report.results[1].message
    regression = validate_models(
        diabetes_models["good"],
        diabetes,
        target="progression",
        checks=[checks.metric("rmse", max=50), checks.metric("r2", min=0.4, max=1)],
    )
    assert [r.status for r in regression.results] == ["failed", "passed"]


def test_a_probability_metric_fails_for_a_model_without_predict_proba(iris: Any) -> None:
    report = validate_models(
        loaded(Fixed(iris["species"].to_numpy())),
        iris,
        target="species",
        checks=[checks.metric("roc_auc", min=0.5)],
    )
    assert report.results[0].status == "failed"
    assert "has no predict_proba" in report.results[0].message


def test_invalid_arguments_fail_when_the_check_is_made() -> None:
    with pytest.raises(InvalidInput, match="unknown metric 'acc'"):
        checks.no_regression("acc")
    with pytest.raises(InvalidInput, match="needs min= or max="):
        checks.metric("accuracy")
    with pytest.raises(InvalidInput, match="confidence"):
        checks.no_regression("accuracy", confidence=95)
    with pytest.raises(InvalidInput, match="max_drop"):
        checks.no_regression("accuracy", max_drop=-0.1)
    with pytest.raises(InvalidInput, match="resamples"):
        checks.no_regression("accuracy", resamples=10)


def test_each_resample_draws_every_row_count_once_in_total() -> None:
    chunks = list(resample_weights(50, 25, seed=0, chunk=10))
    assert [c.shape for c in chunks] == [(10, 50), (10, 50), (5, 50)]
    weights = np.concatenate(chunks)
    assert (weights.sum(axis=1) == 50).all()
    assert (weights >= 0).all() and (weights == np.round(weights)).all()
    # about 1 - 1/e of the rows appear in a resample
    assert 0.55 < (weights > 0).mean() < 0.72


def test_same_seed_same_resamples_whatever_the_chunk() -> None:
    a = np.concatenate(list(resample_weights(40, 30, seed=7, chunk=4)))
    b = np.concatenate(list(resample_weights(40, 30, seed=7)))
    c = np.concatenate(list(resample_weights(40, 30, seed=8)))
    assert (a == b).all()
    assert not (a == c).all()


def test_draws_are_uniform_over_rows() -> None:
    weights = np.concatenate(list(resample_weights(10, 2000, seed=1)))
    share = weights.sum(axis=0) / weights.sum()
    assert np.allclose(share, 0.1, atol=0.01)


def test_paired_differences_of_one_model_are_zero() -> None:
    def metric(w):  # type: ignore[no-untyped-def]
        return w @ np.arange(20.0)

    diffs = paired_differences(metric, metric, 20, 100, seed=0)
    assert diffs.shape == (100,) and (diffs == 0).all()


def test_percentile_interval() -> None:
    values = np.arange(1001.0)
    assert percentile_interval(values, 0.9) == pytest.approx((50.0, 950.0))


def test_benchmark_reports_seconds_per_metric() -> None:
    timings = benchmark(rows=500, resamples=100, metrics=("accuracy", "roc_auc", "r2"))
    assert set(timings) == {"accuracy", "roc_auc", "r2"}
    assert all(t >= 0 for t in timings.values())


def test_shared_resamples_are_the_same_draws_drawn_once() -> None:
    import numpy as np

    from shipyard.validation import metric_checks as mc

    fresh = np.concatenate(list(mc.resample_weights(500, 200, 7)))
    with mc.shared_resamples():
        first = np.concatenate(list(mc.resample_weights(500, 200, 7)))
        kept = mc._shared
        second = np.concatenate(list(mc.resample_weights(500, 200, 7)))
        assert kept is not None and len(kept) == 1  # drawn once, reused
    np.testing.assert_array_equal(first, fresh)
    np.testing.assert_array_equal(second, fresh)
    assert first.dtype == np.float64 and mc._shared is None  # released after the block
