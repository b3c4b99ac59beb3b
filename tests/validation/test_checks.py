"""Custom checks, and what the checks list accepts."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from shipyard.errors import InvalidInput
from shipyard.validation import (
    CheckResult,
    ValidationContext,
    ValidationReport,
    checks,
    validate_models,
)

np = pytest.importorskip("numpy")


def _statuses(iris: Any, model: Any, *items: Any) -> list[tuple[str, str, str]]:
    report = validate_models(model, iris, target="species", checks=list(items))
    return [(r.name, r.status, r.message) for r in report.results]


def test_custom_checks_decide_by_bool_or_result(iris: Any, iris_models: Any) -> None:
    def accurate_on_setosa(ctx: ValidationContext) -> bool:
        setosa = np.flatnonzero(ctx.y == "setosa")
        return ctx.metric("accuracy", rows=setosa) == 1.0

    def own_result(ctx: ValidationContext) -> CheckResult:
        return CheckResult("rows seen", "inconclusive", f"{ctx.rows} rows", {"rows": ctx.rows})

    got = _statuses(
        iris,
        iris_models["good"],
        checks.custom(accurate_on_setosa),
        checks.custom(lambda ctx: bool((ctx.predictions() == "virginica").all()), name="all v"),
        own_result,  # a plain function is a custom check
        lambda ctx: np.bool_(True),
    )
    assert got == [
        ("accurate_on_setosa", "passed", "returned True"),
        ("all v", "failed", "returned False"),
        ("rows seen", "inconclusive", "150 rows"),
        ("<lambda>", "passed", "returned True"),
    ]


def test_an_exception_in_a_custom_check_fails_it_and_the_report_completes(
    iris: Any, iris_models: Any
) -> None:
    def boom(ctx: ValidationContext) -> bool:
        raise KeyError("no such column")

    got = _statuses(iris, iris_models["good"], boom, checks.metric("accuracy", min=0.5))
    assert got[0] == ("boom", "failed", "raised KeyError: 'no such column'")
    assert got[1][1] == "passed"


def test_a_custom_check_must_return_a_bool_or_a_result(iris: Any, iris_models: Any) -> None:
    got = _statuses(iris, iris_models["good"], checks.custom(lambda ctx: 0.97, name="score"))
    assert got == [("score", "failed", "returned float; a check returns a bool or a CheckResult")]


def test_custom_checks_can_compare_with_the_baseline(iris: Any, iris_models: Any) -> None:
    def agrees_mostly(ctx: ValidationContext) -> bool:
        return float((ctx.predictions() == ctx.predictions("baseline")).mean()) > 0.5

    report = validate_models(
        iris_models["good"],
        iris,
        target="species",
        baseline=iris_models["weak"],
        checks=[agrees_mostly],
    )
    assert report.status == "passed"


def test_a_check_subclass_is_a_check(iris: Any, iris_models: Any) -> None:
    class RowCount(checks.Check):
        name = "row count"

        def run(self, ctx: ValidationContext, rows: Any = None) -> CheckResult:
            return self.result("passed", "enough", rows=ctx.rows)

    report = validate_models(iris_models["good"], iris, target="species", checks=[RowCount()])
    assert report.results[0].figures == {"rows": 150}


def test_things_that_are_not_checks_are_refused(iris: Any, iris_models: Any) -> None:
    with pytest.raises(InvalidInput, match="'accuracy' is not a check"):
        validate_models(iris_models["good"], iris, target="species", checks=["accuracy"])
    with pytest.raises(InvalidInput, match="no checks to run"):
        validate_models(iris_models["good"], iris, target="species", checks=[])
    with pytest.raises(InvalidInput, match="a function of the context"):
        checks.custom(42)  # type: ignore[arg-type]


def accurate(ctx: ValidationContext) -> bool:
    return ctx.metric("accuracy") > 0.5


class AlwaysTrue:
    """A callable instance: no qualified name of its own."""

    def __call__(self, ctx: ValidationContext) -> bool:
        return True


@pytest.mark.parametrize(
    ("check", "spec"),
    [
        (
            checks.metric("accuracy", min=0.9),
            {"metric": "accuracy", "min": 0.9, "max": None, "min_rows": 30},
        ),
        (
            checks.metric("rmse", max=3, min_rows=50),
            {"metric": "rmse", "min": None, "max": 3.0, "min_rows": 50},
        ),
        (
            checks.no_regression("accuracy", max_drop=0.01),
            {
                "no_regression": "accuracy",
                "max_drop": 0.01,
                "confidence": 0.95,
                "resamples": 1000,
                "seed": 0,
                "min_rows": 30,
            },
        ),
        (
            checks.latency(p95_ms=20),
            {
                "latency": None,
                "p95_ms": 20.0,
                "p99_ms": None,
                "batch_size": 1,
                "max_calls": 200,
                "max_seconds": 2.0,
            },
        ),
        (checks.signature_compatible(), {"signature_compatible": None}),
        (checks.predictions_valid(), {"predictions_valid": None}),
        (checks.custom(accurate), {"custom": f"{__name__}:accurate", "name": "accurate"}),
        (
            checks.custom(accurate, name="good enough"),
            {"custom": f"{__name__}:accurate", "name": "good enough"},
        ),
        (checks.custom(AlwaysTrue(), name="always"), {"custom": "always", "name": "always"}),
    ],
)
def test_each_check_has_its_spec_as_shipyard_yaml_declares_it(
    check: checks.Check, spec: dict[str, Any]
) -> None:
    assert check.spec() == spec
    assert json.loads(json.dumps(check.spec(), allow_nan=False)) == spec


def test_every_result_carries_its_checks_spec(iris: Any, iris_models: Any) -> None:
    class RowCount(checks.Check):
        name = "row count"

        def run(self, ctx: ValidationContext, rows: Any = None) -> CheckResult:
            return CheckResult("row count", "passed", "enough")  # made without self.result

    report = validate_models(
        iris_models["good"],
        iris,
        target="species",
        slice_by="country",
        checks=[checks.metric("accuracy", min=0.9), RowCount(), accurate],
    )
    specs = [(r.name, r.slice, r.to_dict()["spec"]) for r in report.results]
    metric = {"metric": "accuracy", "min": 0.9, "max": None, "min_rows": 30}
    assert specs == [
        ("metric:accuracy", None, metric),
        ("metric:accuracy", "de", metric),
        ("metric:accuracy", "fr", metric),
        ("row count", None, {"custom": f"{__name__}:{RowCount.__qualname__}", "name": "row count"}),
        ("accurate", None, {"custom": f"{__name__}:accurate", "name": "accurate"}),
    ]
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["results"][1]["spec"] == metric and data["rows"] == 150
    assert ValidationReport.from_dict(data) == report
    assert CheckResult.from_dict(data["results"][0]).spec == metric


def test_a_result_stored_before_specs_reads_back_without_one() -> None:
    old = {"name": "metric:accuracy", "status": "passed", "message": "", "figures": {}}
    assert CheckResult.from_dict(old).spec is None


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: checks.metric("accuracy", min="high"), r"metric\('accuracy'\): min must be a"),
        (lambda: checks.metric("accuracy", max=True), "max must be a finite number, not True"),
        (lambda: checks.metric("accuracy", min=float("nan")), "min must be a finite number"),
        (lambda: checks.metric("accuracy", min=0.9, max=0.5), "min 0.9 is above max 0.5"),
        (lambda: checks.metric("accuracy", min=0.9, min_rows=0), "min_rows must be at least 1"),
        (lambda: checks.metric("accuracy", min=0.9, min_rows=2.5), "min_rows must be a whole"),
        (lambda: checks.metric(["accuracy"], min=0.9), "unknown metric"),
        (lambda: checks.no_regression("accuracy", confidence=0), "confidence is between 0 and 1"),
        (lambda: checks.no_regression("accuracy", confidence=1.5), "confidence is between"),
        (lambda: checks.no_regression("accuracy", confidence="95%"), "confidence must be a"),
        (lambda: checks.no_regression("accuracy", max_drop=-0.1), "max_drop is a size"),
        (lambda: checks.no_regression("accuracy", max_drop="1%"), "max_drop must be a"),
        (lambda: checks.no_regression("accuracy", resamples=99), "resamples must be at least 100"),
        (lambda: checks.no_regression("accuracy", seed=-1), "seed must be at least 0"),
        (lambda: checks.no_regression("accuracy", seed="x"), "seed must be a whole number"),
        (lambda: checks.latency(p95_ms=-1), r"latency\(\): p95_ms must be above 0, not -1"),
        (lambda: checks.latency(p99_ms="fast"), "p99_ms must be a finite number"),
        (lambda: checks.latency(p95_ms=10, batch_size=0), "batch_size must be at least 1"),
        (lambda: checks.latency(p95_ms=10, max_calls=1.5), "max_calls must be a whole number"),
        (lambda: checks.latency(p95_ms=10, max_seconds=0), "max_seconds must be above 0"),
        (lambda: checks.custom(accurate, name=3), "name must be a string"),  # type: ignore[arg-type]
    ],
)
def test_arguments_of_the_wrong_type_or_range_are_refused_by_name(
    make: Callable[[], Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        make()
