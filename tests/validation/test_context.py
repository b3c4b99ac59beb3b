"""The context's pieces: known classes, slices, each model's outputs computed once."""

from __future__ import annotations

from typing import Any

import pytest
from validation_helpers import Fixed, loaded

from shipyard.validation import checks, validate_models
from shipyard.validation.context import known_classes, slice_rows

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")


def test_known_classes_are_the_targets_and_the_models() -> None:
    class Knows(Fixed):
        classes_ = np.array(["a", "b", "z"])

    assert known_classes(np.array(["b", "a", "b"], dtype=object), loaded(Knows([]))) == (
        "a",
        "b",
        "z",
    )
    assert known_classes(np.array([2, 1, 2]), loaded(Fixed([]))) == (1, 2)
    # mixed types still get an order
    assert set(known_classes(np.array([1, "a"], dtype=object), loaded(Fixed([])))) == {1, "a"}


def test_a_class_only_the_model_knows_is_a_valid_prediction() -> None:
    class Knows(Fixed):
        classes_ = np.array(["a", "b", "z"])

    y = np.array(["a", "b"] * 20, dtype=object)
    pred = y.copy()
    pred[0] = "z"
    data = pd.DataFrame({"x": np.zeros(40), "y": y})
    report = validate_models(
        loaded(Knows(pred)), data, target="y", checks=[checks.predictions_valid()]
    )
    assert report.status == "passed"


def test_slices_are_sorted_with_missing_values_last() -> None:
    column = pd.Series([3, None, 1, 3, None], name="n", dtype="float64")
    got = [(value, rows.tolist()) for value, rows in slice_rows(column)]
    assert got == [(1.0, [2]), (3.0, [0, 3]), ("<missing>", [1, 4])]


def test_each_model_predicts_once_per_validation(iris: Any, iris_models: Any) -> None:
    calls = []

    class Counted(Fixed):
        def predict(self, X: Any) -> Any:
            calls.append(len(X))
            return super().predict(X)

    validate_models(
        loaded(Counted(iris["species"].to_numpy())),
        iris,
        target="species",
        baseline=iris_models["good"],
        slice_by="country",
        checks=[
            checks.metric("accuracy", min=0.5),
            checks.no_regression("accuracy"),
            checks.no_regression("f1"),
            checks.predictions_valid(),
        ],
    )
    assert calls == [150]
