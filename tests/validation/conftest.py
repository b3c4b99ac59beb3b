"""Fixtures for validation tests: scikit-learn's shipped data sets and models fitted on them,
wrapped as LoadedModel objects with a signature (nothing is downloaded or written)."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.models import LoadedModel

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")
datasets = pytest.importorskip("sklearn.datasets")
pytest.importorskip("sklearn")

from validation_helpers import loaded  # noqa: E402  (after the skips: it imports numpy)


@pytest.fixture(scope="session")
def iris() -> Any:
    """Iris with string classes, a feature-free ``country`` column and the target."""
    bunch = datasets.load_iris(as_frame=True)
    frame = bunch.data.copy()
    frame["country"] = np.where(np.arange(len(frame)) % 3 == 0, "fr", "de")
    frame["species"] = np.asarray(bunch.target_names)[bunch.target]
    return frame


@pytest.fixture(scope="session")
def iris_features(iris: Any) -> Any:
    return iris.drop(columns=["country", "species"])


@pytest.fixture(scope="session")
def iris_models(iris: Any, iris_features: Any) -> dict[str, LoadedModel]:
    """Iris classifiers: good (logistic regression, ~97%), weak (a stump, ~67%), good_copy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    y = iris["species"]
    good = LogisticRegression(max_iter=1000).fit(iris_features, y)
    weak = DecisionTreeClassifier(max_depth=1, random_state=0).fit(iris_features, y)
    example = iris_features.head()
    return {
        "good": loaded(good, example),
        "good_copy": loaded(good, example),
        "weak": loaded(weak, example),
    }


@pytest.fixture(scope="session")
def cancer() -> Any:
    bunch = datasets.load_breast_cancer(as_frame=True)
    return bunch.data.assign(target=bunch.target)


@pytest.fixture(scope="session")
def cancer_models(cancer: Any) -> dict[str, LoadedModel]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = cancer.drop(columns=["target"]), cancer["target"]
    good = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    few = ["mean radius", "mean texture"]
    weak = make_pipeline(StandardScaler(), LogisticRegression()).fit(X[few], y)
    return {"good": loaded(good, X.head()), "weak": loaded(weak, X[few].head())}


@pytest.fixture(scope="session")
def diabetes() -> Any:
    bunch = datasets.load_diabetes(as_frame=True)
    return bunch.data.assign(progression=bunch.target)


@pytest.fixture(scope="session")
def diabetes_models(diabetes: Any) -> dict[str, LoadedModel]:
    from sklearn.dummy import DummyRegressor
    from sklearn.linear_model import LinearRegression

    X, y = diabetes.drop(columns=["progression"]), diabetes["progression"]
    return {
        "good": loaded(LinearRegression().fit(X, y), X.head()),
        "mean": loaded(DummyRegressor().fit(X, y), X.head()),
    }
