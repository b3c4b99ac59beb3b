"""validate_models end to end: slices, what the models see, and input errors."""

from __future__ import annotations

from typing import Any

import pytest
from validation_helpers import Fixed, loaded

from shipyard.errors import InvalidInput
from shipyard.models import ColumnSpec, LoadedModel, ModelInfo, Signature
from shipyard.validation import checks, validate_models

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")


class Recording:
    """Remembers the columns it was given."""

    def __init__(self) -> None:
        self.columns: list[str] = []

    def predict(self, X: Any) -> Any:
        self.columns = list(X.columns)
        return np.zeros(len(X))


def test_metric_checks_run_again_on_each_slice(iris: Any, iris_models: Any) -> None:
    data = iris.assign(country=iris["country"].where(np.arange(150) % 50 != 7))  # 3 missing
    report = validate_models(
        iris_models["good_copy"],
        data,
        target="species",
        baseline=iris_models["good"],
        slice_by="country",
        checks=[
            checks.metric("accuracy", min=0.9),
            checks.no_regression("accuracy"),
            checks.predictions_valid(),
        ],
        candidate_label="iris-clf/4",
        baseline_label="iris-clf/3",
    )
    got = [(r.name, r.slice, r.status) for r in report.results]
    assert got == [
        ("metric:accuracy", None, "passed"),
        ("metric:accuracy", "de", "passed"),
        ("metric:accuracy", "fr", "passed"),
        ("metric:accuracy", "<missing>", "inconclusive"),
        ("no_regression:accuracy", None, "passed"),
        ("no_regression:accuracy", "de", "passed"),
        ("no_regression:accuracy", "fr", "passed"),
        ("no_regression:accuracy", "<missing>", "inconclusive"),
        ("predictions_valid", None, "passed"),
    ]
    assert [r.figures["rows"] for r in report.results[:4]] == [150, 98, 49, 3]
    assert report.status == "inconclusive"  # a tiny slice never passes
    assert (report.candidate, report.baseline, report.slice_by) == (
        "iris-clf/4",
        "iris-clf/3",
        "country",
    )


def test_a_slice_that_fails_fails_the_report(iris: Any, iris_models: Any) -> None:
    report = validate_models(
        iris_models["weak"],
        iris.assign(group=np.where(iris["species"] == "virginica", "v", "other")),
        target="species",
        slice_by="group",
        checks=[checks.metric("accuracy", min=0.6)],
    )
    assert [(r.slice, r.status) for r in report.results] == [
        (None, "passed"),
        ("other", "passed"),
        ("v", "failed"),
    ]
    assert report.status == "failed"


def test_models_see_the_data_without_target_and_slice_column() -> None:
    data = pd.DataFrame({"a": [1.0, 2.0] * 20, "region": ["n", "s"] * 20, "y": [0.0, 1.0] * 20})
    model = Recording()
    validate_models(
        loaded(model), data, target="y", slice_by="region", checks=[checks.predictions_valid()]
    )
    assert model.columns == ["a"]
    # a slice column the model takes is kept
    takes_region = Recording()
    sig = Signature((ColumnSpec("a", "float64"), ColumnSpec("region", "string")))
    validate_models(
        LoadedModel(takes_region, ModelInfo("python", {}, sig)),
        data,
        target="y",
        slice_by="region",
        checks=[checks.predictions_valid()],
    )
    assert takes_region.columns == ["a", "region"]


def test_missing_columns_are_all_named_before_any_check_runs(iris: Any, iris_models: Any) -> None:
    def never(ctx: Any) -> bool:
        raise AssertionError("no check may run")

    data = iris.drop(columns=["species", "petal width (cm)", "sepal width (cm)"])
    with pytest.raises(InvalidInput) as caught:
        validate_models(
            iris_models["good"], data, target="species", slice_by="continent", checks=[never]
        )
    assert caught.value.message == (
        "the data is missing the target 'species'; the slice_by column 'continent'; "
        "'sepal width (cm)', 'petal width (cm)' (required by the candidate's signature)"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (pd.DataFrame({"x": [], "y": []}), "the data has no rows"),
        (pd.DataFrame({"x": [1.0, 2.0], "y": [1.0, None]}), "'y' is missing in 1 rows"),
        ([1, 2, 3], "a DataFrame or a dict of columns, not list"),
    ],
)
def test_bad_data_is_refused(data: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        validate_models(loaded(Recording()), data, target="y", checks=[checks.predictions_valid()])


def test_a_dict_of_columns_and_a_bare_model_are_accepted(diabetes: Any) -> None:
    from sklearn.linear_model import LinearRegression

    X, y = diabetes.drop(columns=["progression"]), diabetes["progression"]
    report = validate_models(
        LinearRegression().fit(X, y),
        {c: diabetes[c].to_numpy() for c in diabetes.columns},
        target="progression",
        checks=[checks.metric("r2", min=0.4)],
    )
    assert report.status == "passed" and report.task == "regression"


def test_too_many_slices_are_refused() -> None:
    data = pd.DataFrame({"x": np.arange(300.0), "y": np.zeros(300)})
    with pytest.raises(InvalidInput, match="'x' has 300 distinct values; at most 100"):
        validate_models(
            loaded(Recording()), data, target="y", slice_by="x", checks=[checks.predictions_valid()]
        )


@pytest.mark.parametrize(
    ("y", "metrics", "has_proba", "task"),
    [
        (np.arange(100) % 3, [], False, "classification"),  # few integer values
        (np.arange(100), [], False, "regression"),  # many integer values
        (np.linspace(0, 1, 100), [], False, "regression"),
        (np.linspace(0, 1, 100).round(), [], True, "classification"),  # predict_proba
        (np.array(["a", "b"] * 50), [], False, "classification"),
        (np.arange(100) % 3, ["rmse"], False, "regression"),  # the checks' metrics decide
    ],
)
def test_the_task_is_inferred(y: Any, metrics: list[str], has_proba: bool, task: str) -> None:
    class Model(Fixed):
        pass

    if has_proba:
        Model.predict_proba = lambda self, X: np.full((len(X), 2), 0.5)  # type: ignore[attr-defined]
    items = [checks.metric(m, min=-1e9) for m in metrics] or [lambda ctx: True]
    report = validate_models(
        loaded(Model(y)), pd.DataFrame({"x": np.zeros(100), "y": y}), target="y", checks=items
    )
    assert report.task == task


def test_task_conflicts_are_refused(iris: Any, iris_models: Any) -> None:
    with pytest.raises(InvalidInput, match="mix metrics of two tasks: classification: accuracy"):
        validate_models(
            iris_models["good"],
            iris,
            target="species",
            checks=[checks.metric("accuracy", min=0.5), checks.metric("rmse", max=1)],
        )
    with pytest.raises(InvalidInput, match="the task is regression, and accuracy is not"):
        validate_models(
            iris_models["good"],
            iris,
            target="species",
            task="regression",
            checks=[checks.metric("accuracy", min=0.5)],
        )
    with pytest.raises(InvalidInput, match="'species' is not numeric"):
        validate_models(
            iris_models["good"], iris, target="species", task="regression", checks=[bool]
        )
    with pytest.raises(InvalidInput, match="task is 'classification' or 'regression'"):
        validate_models(iris_models["good"], iris, target="species", task="ranking", checks=[bool])


def test_predictions_of_the_wrong_length_fail_checks_without_a_crash(iris: Any) -> None:
    short = loaded(Fixed(iris["species"].to_numpy()[:100]))
    report = validate_models(
        short,
        iris,
        target="species",
        checks=[checks.metric("accuracy", min=0.5), checks.predictions_valid()],
    )
    assert [r.status for r in report.results] == ["failed", "failed"]
    assert "100 predictions for 150 rows" in report.results[0].message
    assert report.metrics == {"candidate": {"accuracy": None, "f1": None}}
    assert "no plots" in report.diagnostics["notes"][0]


def test_a_report_on_too_few_rows_cannot_pass(iris: Any, iris_models: Any) -> None:
    few = iris.head(2)
    report = validate_models(
        iris_models["good"],
        few,
        target="species",
        checks=[
            checks.predictions_valid(),
            checks.signature_compatible(),
            checks.latency(p95_ms=5_000, max_calls=20),
            lambda ctx: True,
        ],
    )
    # each check says what it found; the report still cannot pass on 2 rows
    assert [r.status for r in report.results[:-1]] == ["passed"] * 4
    size = report.results[-1]
    assert (size.name, size.status) == ("data_size", "inconclusive")
    assert size.message == "only 2 rows: at least 30 are needed for a validation to pass"
    assert size.figures == {"rows": 2, "min_rows": 30}
    assert report.status == "inconclusive" and report.to_dict()["rows"] == 2


def test_enough_rows_add_no_data_size_result(iris: Any, iris_models: Any) -> None:
    report = validate_models(
        iris_models["good"], iris.head(30), target="species", checks=[checks.predictions_valid()]
    )
    assert [r.name for r in report.results] == ["predictions_valid"]


def _never(ctx: Any) -> bool:
    raise AssertionError("no check may run")


def test_target_labels_of_another_kind_than_the_models_are_refused(
    iris: Any, iris_models: Any
) -> None:
    coded = iris.assign(species=iris["species"].map({"setosa": 0, "versicolor": 1, "virginica": 2}))
    with pytest.raises(InvalidInput) as caught:
        validate_models(
            iris_models["good"], coded, target="species", checks=[_never],
            candidate_label="iris-clf/3",
        )  # fmt: skip
    assert caught.value.message == (
        "the target 'species' does not hold the labels iris-clf/3 predicts: the target's are "
        "0, 1, 2 (numbers); iris-clf/3's are 'setosa', 'versicolor', 'virginica' (strings)"
    )
    # labels of the same kind that share none: strings the model never saw
    renamed = iris.assign(species=iris["species"].str.upper())
    with pytest.raises(InvalidInput, match="the target's are 'SETOSA', 'VERSICOLOR'"):
        validate_models(iris_models["good"], renamed, target="species", checks=[_never])
    # the baseline's labels count too
    numeric = loaded(Fixed([]))
    numeric.model.classes_ = np.array([0, 1, 2])
    with pytest.raises(InvalidInput, match="the baseline's are 0, 1, 2"):
        validate_models(
            iris_models["good"], iris, target="species", baseline=numeric, checks=[_never]
        )


def test_data_the_candidates_signature_refuses_is_refused_up_front(
    iris: Any, iris_models: Any
) -> None:
    bad = iris.assign(**{"sepal length (cm)": "tall"})
    with pytest.raises(InvalidInput) as caught:
        validate_models(
            iris_models["good"],
            bad,
            target="species",
            checks=[_never],
            candidate_label="iris-clf/3",
        )
    assert caught.value.message == (
        "the validation data does not fit iris-clf/3's signature: model input has the wrong "
        "types: 'sepal length (cm)' is string, the model takes float64"
    )
    with pytest.raises(InvalidInput, match="does not fit the candidate's signature"):
        validate_models(iris_models["good"], bad, target="species", checks=[_never])


def test_a_classification_metric_of_a_continuous_target_is_refused(
    diabetes: Any, diabetes_models: Any
) -> None:
    # the diabetes target is whole numbers held as floats: many of them, and a regressor
    with pytest.raises(InvalidInput) as caught:
        validate_models(
            diabetes_models["good"],
            diabetes,
            target="progression",
            checks=[checks.metric("accuracy", min=0.5), _never],
        )
    assert caught.value.message.startswith(
        "accuracy is a classification metric, but the target 'progression' holds 214 distinct "
        "numbers (25.0, 31.0, 37.0, 39.0, 40.0, ...) and the candidate has no classes_: "
        "is it a regression?"
    )
    halves = diabetes.assign(progression=diabetes["progression"] + 0.5)
    with pytest.raises(InvalidInput, match=r"the task is classification, .* continuous numbers"):
        validate_models(
            diabetes_models["good"],
            halves,
            target="progression",
            task="classification",
            checks=[_never],
        )


def test_nullable_columns_validate_like_numpy_ones(iris: Any, iris_models: Any) -> None:
    data = iris.convert_dtypes()  # Float64 features, string target and country
    assert str(data["sepal length (cm)"].dtype) == "Float64"
    report = validate_models(
        iris_models["good"],
        data,
        target="species",
        slice_by="country",
        checks=[checks.metric("accuracy", min=0.9), checks.signature_compatible()],
    )
    assert report.status == "passed", report.to_dict()["results"]


def test_plots_that_cannot_be_computed_leave_a_note(iris: Any) -> None:
    # no classes_, and integer predictions of a string target: sklearn's confusion matrix
    # refuses the mix of label types
    report = validate_models(
        loaded(Fixed(np.zeros(150, dtype=int))),
        iris,
        target="species",
        checks=[checks.predictions_valid()],
    )
    assert report.diagnostics["confusion"] is None
    assert report.diagnostics["notes"][0].startswith("no confusion matrix: ValueError: Mix")
    assert report.results[0].status == "failed"
