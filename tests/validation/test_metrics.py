"""Each built-in metric equals scikit-learn's, and its weighted twin equals scikit-learn on
the resampled rows themselves (a naive loop over resamples)."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.errors import InvalidInput
from shipyard.validation.metric_checks import resample_weights
from shipyard.validation.metrics import METRICS, Evaluation, MetricUndefined, get_metric

np = pytest.importorskip("numpy")
skm = pytest.importorskip("sklearn.metrics")


def _multiclass(iris: Any, iris_models: Any) -> Evaluation:
    X, y = iris.drop(columns=["country", "species"]), iris["species"].to_numpy()
    model = iris_models["weak"]
    classes = tuple(sorted(set(y)))
    return Evaluation(y, model.predict(X), model.predict_proba(X), classes, classes)


def _binary(n: int = 80, seed: int = 0, ties: bool = False) -> Evaluation:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    score = np.clip(0.5 * y + rng.normal(0.25, 0.3, size=n), 0, 1)
    if ties:  # few distinct scores: many ties within and across classes
        score = np.round(score, 1)
    proba = np.column_stack([1 - score, score])
    return Evaluation(y, (score > 0.5).astype(int), proba, (0, 1), (0, 1))


def _regression(diabetes: Any, diabetes_models: Any) -> Evaluation:
    X, y = diabetes.drop(columns=["progression"]), diabetes["progression"].to_numpy()
    return Evaluation(y, diabetes_models["good"].predict(X))


def _evaluations(request: Any) -> dict[str, Evaluation]:
    iris, iris_models = request.getfixturevalue("iris"), request.getfixturevalue("iris_models")
    diabetes = request.getfixturevalue("diabetes")
    diabetes_models = request.getfixturevalue("diabetes_models")
    return {
        "multiclass": _multiclass(iris, iris_models),
        "binary": _binary(),
        "binary-ties": _binary(ties=True),
        "regression": _regression(diabetes, diabetes_models),
    }


def _sklearn(name: str, ev: Evaluation) -> float:
    """The metric as a user would compute it with scikit-learn directly."""
    binary = len(ev.classes) == 2
    if name == "accuracy":
        return float(skm.accuracy_score(ev.y, ev.pred))
    if name == "f1":
        return float(skm.f1_score(ev.y, ev.pred, average="binary" if binary else "macro"))
    if name == "roc_auc":
        if binary:
            return float(skm.roc_auc_score(ev.y, ev.proba[:, 1]))
        return float(skm.roc_auc_score(ev.y, ev.proba, multi_class="ovr", average="macro"))
    if name == "log_loss":
        return float(skm.log_loss(ev.y, ev.proba))
    if name == "rmse":
        return float(np.sqrt(skm.mean_squared_error(ev.y, ev.pred)))
    if name == "mae":
        return float(skm.mean_absolute_error(ev.y, ev.pred))
    return float(skm.r2_score(ev.y, ev.pred))


CASES = [
    (name, kind)
    for name, metric in METRICS.items()
    for kind in (
        ["regression"]
        if metric.task == "regression"
        else ["multiclass", "binary"] + (["binary-ties"] if name == "roc_auc" else [])
    )
]


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_score_equals_sklearn(name: str, kind: str, request: Any) -> None:
    ev = _evaluations(request)[kind]
    assert get_metric(name).score(ev) == pytest.approx(_sklearn(name, ev), rel=1e-12)


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_unit_weights_equal_the_score(name: str, kind: str, request: Any) -> None:
    ev = _evaluations(request)[kind]
    metric = get_metric(name)
    ones = np.ones((1, len(ev)))
    assert metric.resampler(ev)(ones)[0] == pytest.approx(metric.score(ev), rel=1e-9)


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_resampled_equals_sklearn_on_the_resampled_rows(name: str, kind: str, request: Any) -> None:
    full = _evaluations(request)[kind]
    ev = full.take(np.random.default_rng(1).choice(len(full), 60, replace=False))
    metric = get_metric(name)
    resample = metric.resampler(ev)
    checked = 0
    for weights in resample_weights(len(ev), 40, seed=3, chunk=7):
        fast = resample(weights)
        for counts, value in zip(weights, fast, strict=True):
            rows = np.repeat(np.arange(len(ev)), counts.astype(int))
            try:
                expected = metric.score(ev.take(rows))
            except MetricUndefined:
                assert np.isnan(value)
                continue
            assert value == pytest.approx(expected, rel=1e-9, abs=1e-12)
            checked += 1
    assert checked >= 30


def test_f1_averages_over_the_labels_present_like_sklearn() -> None:
    # a class absent from both truth and predictions does not count; a wrong extra one does
    y = np.array(["a", "a", "b", "b", "a", "b"], dtype=object)
    pred = np.array(["a", "b", "b", "b", "zz", "b"], dtype=object)
    ev = Evaluation(y, pred, classes=("a", "b", "c"))
    expected = skm.f1_score(y, pred, average="macro", zero_division=0)
    assert get_metric("f1").score(ev) == pytest.approx(expected)
    assert get_metric("f1").resampler(ev)(np.ones((1, 6)))[0] == pytest.approx(expected)


def test_roc_auc_is_undefined_with_one_class_present() -> None:
    ev = _binary().take(np.flatnonzero(_binary().y == 1))
    with pytest.raises(MetricUndefined, match="none of 0"):
        get_metric("roc_auc").score(ev)
    assert np.isnan(get_metric("roc_auc").resampler(ev)(np.ones((1, len(ev))))[0])


def test_proba_metrics_need_probabilities() -> None:
    ev = Evaluation(np.array([0, 1, 1]), np.array([0, 1, 0]), classes=(0, 1))
    with pytest.raises(ValueError, match="needs predict_proba"):
        get_metric("log_loss").score(ev)


def test_directions() -> None:
    better_high = {n for n, m in METRICS.items() if m.higher_is_better}
    assert better_high == {"accuracy", "f1", "roc_auc", "r2"}


def test_unknown_metric_names_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match=r"unknown metric 'auc'.*accuracy, f1, roc_auc"):
        get_metric("auc")
