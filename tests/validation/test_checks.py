"""Custom checks, and what the checks list accepts."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.errors import InvalidInput
from shipyard.validation import CheckResult, ValidationContext, checks, validate_models

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
