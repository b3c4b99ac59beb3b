"""latency, signature_compatible and predictions_valid."""

from __future__ import annotations

from typing import Any

import pytest
from validation_helpers import Broken, Fixed, loaded

from shipyard.errors import InvalidInput
from shipyard.models import ColumnSpec, LoadedModel, ModelInfo, Signature
from shipyard.validation import checks, validate_models

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")


class Counting:
    """Counts predict calls and the rows each one got."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict(self, X: Any) -> Any:
        self.batches.append(len(X))
        return np.zeros(len(X))


def _run(model: Any, data: Any, check: Any, target: str = "y", **kw: Any) -> Any:
    report = validate_models(model, data, target=target, checks=[check], **kw)
    (result,) = report.results
    return result


@pytest.fixture
def numbers() -> Any:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50), "y": np.zeros(50)})


def test_latency_passes_within_the_limits_and_bounds_the_calls(numbers: Any) -> None:
    model = Counting()
    check = checks.latency(p95_ms=5_000, p99_ms=5_000, batch_size=8, max_calls=30)
    result = _run(loaded(model), numbers, check)
    assert result.status == "passed", result.message
    # a warm-up call, max_calls timed calls, then the report's plots predict on all rows
    assert model.batches == [8] * 31 + [50]
    assert result.figures["calls"] == 30 and result.figures["batch_size"] == 8
    assert 0 < result.figures["p50_ms"] <= result.figures["p95_ms"] <= result.figures["p99_ms"]


def test_latency_fails_over_the_limit(numbers: Any) -> None:
    result = _run(loaded(Counting()), numbers, checks.latency(p99_ms=1e-9, max_calls=25))
    assert result.status == "failed"
    assert "p99" in result.message and "> 1e-09 ms" in result.message


def test_latency_stops_after_max_seconds_and_then_is_inconclusive(numbers: Any) -> None:
    model = Counting()
    check = checks.latency(p95_ms=5_000, max_calls=10_000, max_seconds=1e-6)
    result = _run(loaded(model), numbers, check)
    assert model.batches == [1, 1, 50]  # the warm-up and one timed call (then the plots')
    assert result.status == "inconclusive" and "too few calls" in result.message


def test_latency_of_a_broken_model_fails(numbers: Any) -> None:
    class FailsOnSmallBatches(Counting):
        def predict(self, X: Any) -> Any:
            if len(X) < 50:
                raise ValueError("batch too small")
            return super().predict(X)

    result = _run(loaded(FailsOnSmallBatches()), numbers, checks.latency(p95_ms=10))
    assert result.status == "failed"
    assert result.message == "predict raised ValueError: batch too small"


def test_latency_needs_a_limit() -> None:
    with pytest.raises(InvalidInput, match="p95_ms= or p99_ms="):
        checks.latency()


def test_signature_compatible_with_the_data_and_the_baseline(iris: Any, iris_models: Any) -> None:
    result = _run(
        iris_models["good"],
        iris,
        checks.signature_compatible(),
        target="species",
        baseline=iris_models["weak"],
    )
    assert result.status == "passed"
    assert result.message == "accepts the data and the baseline's inputs"
    assert result.figures["candidate"]["columns"][0]["name"] == "sepal length (cm)"


def _with_signature(model: Any, *columns: tuple[str, str, bool]) -> LoadedModel:
    sig = Signature(tuple(ColumnSpec(n, t, r) for n, t, r in columns))
    return LoadedModel(model, ModelInfo("sklearn", {}, sig))


def test_a_new_required_column_breaks_the_baselines_callers(numbers: Any) -> None:
    baseline = _with_signature(Counting(), ("a", "float64", True))
    candidate = _with_signature(Counting(), ("a", "float64", True), ("b", "float64", True))
    result = _run(candidate, numbers, checks.signature_compatible(), baseline=baseline)
    assert result.status == "failed"
    assert "the baseline's inputs: model input is missing column b" in result.message
    # optional in the candidate: compatible
    candidate = _with_signature(Counting(), ("a", "float64", True), ("b", "float64", False))
    result = _run(candidate, numbers, checks.signature_compatible(), baseline=baseline)
    assert result.status == "passed"


def test_a_narrower_type_breaks_the_baselines_callers(numbers: Any) -> None:
    baseline = _with_signature(Counting(), ("a", "float64", True))
    candidate = _with_signature(Counting(), ("a", "int64", True))
    result = _run(candidate, numbers.assign(a=1), checks.signature_compatible(), baseline=baseline)
    assert result.status == "failed"
    assert "'a' is float64, the model takes int64" in result.message
    # wider is fine: int callers can call a float model
    result = _run(baseline, numbers, checks.signature_compatible(), baseline=candidate)
    assert result.status == "passed"


def test_a_model_without_signature_fails_signature_compatible(numbers: Any) -> None:
    result = _run(loaded(Counting()), numbers, checks.signature_compatible())
    assert result.status == "failed" and "no signature" in result.message


def test_predictions_valid_passes_for_a_sound_classifier(iris: Any, iris_models: Any) -> None:
    result = _run(iris_models["good"], iris, checks.predictions_valid(), target="species")
    assert result.status == "passed"
    assert result.figures["proba_rows_not_summing_to_1"] == 0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([0.0] * 49 + [np.nan], "1 missing (NaN/None)"),
        ([0.0] * 48 + [np.inf, -np.inf], "2 infinite"),
        ([0.0] * 49, "predict returned 49 predictions for 50 rows"),
        (np.zeros((50, 2)), "predict returned shape (50, 2), not one per row"),
    ],
)
def test_predictions_valid_fails_on_malformed_predictions(
    numbers: Any, values: Any, message: str
) -> None:
    result = _run(loaded(Fixed(values)), numbers, checks.predictions_valid(), task="regression")
    assert result.status == "failed"
    assert message in result.message


def test_predictions_valid_fails_on_unknown_classes(iris: Any) -> None:
    values = iris["species"].to_numpy().copy()
    values[:3] = "dahlia"
    result = _run(loaded(Fixed(values)), iris, checks.predictions_valid(), target="species")
    assert result.status == "failed"
    assert "3 outside the known classes ('dahlia')" in result.message
    assert result.figures["unknown_classes"] == ["dahlia"]


def test_predictions_valid_fails_on_bad_probabilities(iris: Any, iris_models: Any) -> None:
    class Unnormalised:
        classes_ = np.array(["setosa", "versicolor", "virginica"])

        def predict(self, X: Any) -> Any:
            return np.full(len(X), "setosa")

        def predict_proba(self, X: Any) -> Any:
            return np.full((len(X), 3), 0.5)

    result = _run(loaded(Unnormalised()), iris, checks.predictions_valid(), target="species")
    assert result.status == "failed"
    assert "150 rows of probabilities not summing to 1" in result.message


def test_predictions_valid_fails_when_the_model_raises(numbers: Any) -> None:
    result = _run(loaded(Broken()), numbers, checks.predictions_valid())
    assert result.status == "failed"
    assert result.message == "predict raised RuntimeError: model file is corrupt"
