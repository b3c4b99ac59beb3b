"""The checks a validation runs: ``checks.metric(...)``, ``checks.no_regression(...)``, ...

Each function returns a Check; pass a list of them to ``validate_models``. Arguments are
checked here, when the check is made (an unknown metric name or a limit that is not a number
fails now, not mid-report). ``check.spec()`` gives a check back as ``shipyard.yaml`` declares
it, ``{kind: first argument or None, **keyword arguments}`` with every default filled in,
and each result of the report carries it.
A plain callable in the list is taken as ``custom(fn)``; a Check subclass is a check too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shipyard.errors import InvalidInput, require
from shipyard.validation.base import FAILED, PASSED, Check, CheckResult
from shipyard.validation.context import ValidationContext
from shipyard.validation.metric_checks import MIN_ROWS, MetricCheck, NoRegressionCheck
from shipyard.validation.metrics import METRICS
from shipyard.validation.model_checks import (
    LatencyCheck,
    PredictionsValidCheck,
    SignatureCompatibleCheck,
)

CustomFn = Callable[[ValidationContext], "bool | CheckResult"]


def metric(
    name: str, *, min: float | None = None, max: float | None = None, min_rows: int = MIN_ROWS
) -> Check:
    """The candidate's ``name`` (a built-in metric) is at least ``min`` and at most ``max``.

    Runs on all rows and on each slice; fewer than ``min_rows`` rows is inconclusive.
    """
    return MetricCheck(name, min=min, max=max, min_rows=min_rows)


def no_regression(
    name: str,
    *,
    max_drop: float = 0.0,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int | None = 0,
    min_rows: int = MIN_ROWS,
) -> Check:
    """The candidate's ``name`` is not worse than the baseline's by more than ``max_drop``
    (in the metric's direction: a drop of accuracy, a rise of rmse).

    A paired bootstrap (``resamples`` resamples of the rows, seeded by ``seed``) gives a
    ``confidence`` interval of candidate minus baseline: passed if it lies above
    ``-max_drop``, failed if below, inconclusive if it straddles it, or when the rows are
    too few to tell (under ``min_rows``, a class with one row). With no baseline (a first
    version) it passes and says so; see ``NoRegressionCheck`` for why.
    """
    return NoRegressionCheck(
        name,
        max_drop=max_drop,
        confidence=confidence,
        resamples=resamples,
        seed=seed,
        min_rows=min_rows,
    )


def latency(
    *,
    p95_ms: float | None = None,
    p99_ms: float | None = None,
    batch_size: int = 1,
    max_calls: int = 200,
    max_seconds: float = 2.0,
) -> Check:
    """``candidate.predict`` on ``batch_size`` rows takes at most ``p95_ms`` / ``p99_ms``
    (after a warm-up call; at most ``max_calls`` calls or ``max_seconds`` of them)."""
    return LatencyCheck(
        p95_ms=p95_ms,
        p99_ms=p99_ms,
        batch_size=batch_size,
        max_calls=max_calls,
        max_seconds=max_seconds,
    )


def signature_compatible() -> Check:
    """The candidate's signature accepts the data's columns and the baseline's inputs."""
    return SignatureCompatibleCheck()


def predictions_valid() -> Check:
    """No missing or infinite predictions; classes and probabilities are well formed."""
    return PredictionsValidCheck()


def custom(fn: CustomFn, *, name: str | None = None) -> Check:
    """``fn(ctx)`` decides: True passes, False fails, or it returns its own CheckResult.

    ``ctx`` is the ValidationContext: ``ctx.candidate``, ``ctx.baseline``, ``ctx.X``,
    ``ctx.y``, ``ctx.predictions()``, ``ctx.metric("f1")``. An exception fails the check.
    """
    return CustomCheck(fn, name=name)


class CustomCheck(Check):
    def __init__(self, fn: CustomFn, *, name: str | None = None) -> None:
        if not callable(fn):
            raise InvalidInput(f"a custom check is a function of the context, not {fn!r}")
        if name is not None and not isinstance(name, str):
            raise InvalidInput(f"custom(): name must be a string, not {name!r}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", None) or "custom"

    def spec(self) -> dict[str, Any]:
        """``{"custom": "module:qualname", "name": ...}``; the name alone stands for a
        callable with no qualified name (a partial, an instance)."""
        module = getattr(self.fn, "__module__", None)
        qualname = getattr(self.fn, "__qualname__", None)
        if isinstance(module, str) and isinstance(qualname, str):
            return {"custom": f"{module}:{qualname}", "name": self.name}
        return {"custom": self.name, "name": self.name}

    def run(self, ctx: ValidationContext, rows: Any = None) -> CheckResult:
        np: Any = require("numpy", "data")
        try:
            outcome = self.fn(ctx)
        except Exception as exc:  # the report completes; the check fails and says why
            return self.result(FAILED, f"raised {type(exc).__name__}: {exc}")
        if isinstance(outcome, CheckResult):
            return outcome
        if isinstance(outcome, (bool, np.bool_)):
            return self.result(PASSED if outcome else FAILED, "returned " + str(bool(outcome)))
        return self.result(
            FAILED, f"returned {type(outcome).__name__}; a check returns a bool or a CheckResult"
        )


def as_check(item: Any) -> Check:
    """``item`` as a Check: a Check as it is, a plain callable as ``custom(item)``."""
    if isinstance(item, Check):
        return item
    if callable(item):
        return CustomCheck(item)
    raise InvalidInput(
        f"{item!r} is not a check: use the functions of shipyard.validation.checks "
        f"(metric, no_regression, latency, ...) or a function of the context "
        f"(built-in metrics: {', '.join(METRICS)})"
    )


__all__ = [
    "Check",
    "CheckResult",
    "custom",
    "latency",
    "metric",
    "no_regression",
    "predictions_valid",
    "signature_compatible",
]
