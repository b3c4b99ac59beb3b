"""The package's public surface, its lazy import, and LoadedModel's predict_proba."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

import shipyard.validation
from shipyard.errors import InvalidInput
from shipyard.validation import checks, validate_models

np = pytest.importorskip("numpy")
pytest.importorskip("sklearn")

from validation_helpers import loaded  # noqa: E402  (after the skips: it imports numpy)


def test_public_surface() -> None:
    assert set(shipyard.validation.__all__) == {
        "Check",
        "CheckResult",
        "ValidationContext",
        "ValidationReport",
        "checks",
        "validate_models",
    }
    assert set(checks.__all__) == {
        "Check",
        "CheckResult",
        "custom",
        "latency",
        "metric",
        "no_regression",
        "predictions_valid",
        "signature_compatible",
    }


def test_import_is_lazy() -> None:
    code = (
        "import sys, shipyard.validation; "
        "print([m for m in ('numpy', 'pandas', 'sklearn', 'matplotlib', 'rich') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_loaded_models_give_probabilities_through_their_signature(
    iris: Any, iris_features: Any
) -> None:
    from sklearn.linear_model import LogisticRegression, RidgeClassifier

    y, example = iris["species"], iris_features.head()
    candidate = loaded(LogisticRegression(max_iter=1000).fit(iris_features, y), example)
    baseline = loaded(RidgeClassifier().fit(iris_features, y), example)

    assert candidate.classes == ["setosa", "versicolor", "virginica"]
    proba = candidate.predict_proba(iris_features.astype("float32"))  # cast by the signature
    assert proba.shape == (150, 3) and np.allclose(proba.sum(axis=1), 1)
    with pytest.raises(InvalidInput, match="missing column petal length"):
        candidate.predict_proba(iris_features.drop(columns=["petal length (cm)"]))
    with pytest.raises(InvalidInput, match="RidgeClassifier has no predict_proba"):
        baseline.predict_proba(iris_features)

    report = validate_models(
        candidate,
        iris,
        target="species",
        baseline=baseline,
        checks=[checks.no_regression("accuracy", max_drop=0.05), checks.signature_compatible()],
    )
    assert report.status == "passed", report.to_dict()["results"]
    assert report.task == "classification"
