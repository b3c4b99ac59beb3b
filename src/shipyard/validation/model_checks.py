"""Checks on the candidate as a piece of software: its latency, what inputs it accepts, and
whether its outputs are well formed. They run once, on all rows."""

from __future__ import annotations

import time
from typing import Any

from shipyard.errors import InvalidInput, require
from shipyard.validation.base import (
    FAILED,
    INCONCLUSIVE,
    PASSED,
    Check,
    CheckResult,
    integer_argument,
    jsonable,
    number_argument,
)
from shipyard.validation.context import CANDIDATE, UnusableOutputs, ValidationContext, has_proba
from shipyard.validation.metrics import CLASSIFICATION

PROBA_TOLERANCE = 1e-4  # how far from 1 a row of probabilities may sum (float32 models)


class LatencyCheck(Check):
    """Percentiles of the time ``candidate.predict`` takes on batches of ``batch_size`` rows
    (signature enforcement included, as when serving) are within the limits.

    After one warm-up call, batches taken in turn from the data are timed until
    ``max_calls`` calls or ``max_seconds`` seconds, whichever comes first. Fewer than
    ``min_calls`` timings within the limits is inconclusive: a p99 needs a sample.
    """

    name = "latency"

    def __init__(
        self,
        *,
        p95_ms: float | None,
        p99_ms: float | None,
        batch_size: int,
        max_calls: int,
        max_seconds: float,
        min_calls: int = 20,
    ) -> None:
        if p95_ms is None and p99_ms is None:
            raise InvalidInput("latency() needs p95_ms= or p99_ms= (or both)")
        self.limits = {
            arg: None if value is None else _positive(arg, value)
            for arg, value in (("p95_ms", p95_ms), ("p99_ms", p99_ms))
        }
        self.batch_size = integer_argument("latency()", "batch_size", batch_size, at_least=1)
        self.max_calls = integer_argument("latency()", "max_calls", max_calls, at_least=1)
        self.max_seconds = _positive("max_seconds", max_seconds)
        self.min_calls = min(min_calls, self.max_calls)

    def spec(self) -> dict[str, Any]:
        return {
            "latency": None,
            **self.limits,
            "batch_size": self.batch_size,
            "max_calls": self.max_calls,
            "max_seconds": self.max_seconds,
        }

    def run(self, ctx: ValidationContext, rows: Any = None) -> CheckResult:
        np: Any = require("numpy", "data")
        limits = {k: v for k, v in self.limits.items() if v is not None}
        size = min(self.batch_size, len(ctx.X))
        figures: dict[str, Any] = {"batch_size": size, **limits}
        try:
            timings = self._time_calls(ctx, size)
        except Exception as exc:  # a model that crashes on a batch fails its latency check
            return self.result(FAILED, f"predict raised {type(exc).__name__}: {exc}", **figures)
        p50, p95, p99 = (float(v) for v in np.percentile(timings, [50, 95, 99]))
        figures.update(p50_ms=p50, p95_ms=p95, p99_ms=p99, calls=len(timings))
        measured = {"p95_ms": p95, "p99_ms": p99}
        over = [
            f"{k[:3]} {measured[k]:.3g} ms > {limit:g} ms"
            for k, limit in limits.items()
            if measured[k] > limit
        ]
        summary = f"p50 {p50:.3g} ms, p95 {p95:.3g} ms, p99 {p99:.3g} ms over {len(timings)} calls"
        if over:
            return self.result(FAILED, f"{summary}: {'; '.join(over)}", **figures)
        if len(timings) < self.min_calls:
            message = f"{summary}: too few calls to trust (at least {self.min_calls})"
            return self.result(INCONCLUSIVE, message, **figures)
        return self.result(PASSED, f"{summary}, batch of {size}", **figures)

    def _time_calls(self, ctx: ValidationContext, size: int) -> list[float]:
        np: Any = require("numpy", "data")
        rows = len(ctx.X)

        def batch(call: int) -> Any:  # the rows after the previous batch's, wrapping around
            return ctx.X.take(np.arange(call * size, (call + 1) * size) % rows)

        ctx.candidate.predict(batch(0))  # warm-up: first-call costs are not latency
        timings: list[float] = []
        deadline = time.perf_counter() + self.max_seconds
        for call in range(1, self.max_calls + 1):
            inputs = batch(call)  # taken before the clock starts
            start = time.perf_counter()
            ctx.candidate.predict(inputs)
            end = time.perf_counter()
            timings.append((end - start) * 1000)
            if end >= deadline:
                break
        return timings


def _positive(arg: str, value: Any) -> float:
    number = number_argument("latency()", arg, value)
    if number <= 0:
        raise InvalidInput(f"latency(): {arg} must be above 0, not {value!r}")
    return number


class SignatureCompatibleCheck(Check):
    """The candidate's signature accepts the data's columns and whatever the baseline's
    signature accepts (its required columns alone, and with its optional ones): callers of
    the baseline can call the candidate unchanged."""

    name = "signature_compatible"

    def spec(self) -> dict[str, Any]:
        return {"signature_compatible": None}

    def run(self, ctx: ValidationContext, rows: Any = None) -> CheckResult:
        sig = ctx.candidate.signature
        if sig is None:
            message = (
                "the candidate has no signature, so what it accepts is unknown "
                "(save it with an input_example)"
            )
            return self.result(FAILED, message)
        problems = []
        try:
            sig.enforce(ctx.X)
        except InvalidInput as exc:
            problems.append(f"the data: {exc.message}")
        notes = []
        base = ctx.baseline.signature if ctx.baseline is not None else None
        if ctx.baseline is None:
            notes.append("no baseline")
        elif base is None:
            notes.append("the baseline has no signature to compare with")
        else:
            for example in base.examples():
                try:
                    sig.enforce(example)
                except InvalidInput as exc:
                    problems.append(f"the baseline's inputs: {exc.message}")
                    break
        figures = {"candidate": sig.to_dict(), "baseline": base.to_dict() if base else None}
        if problems:
            return self.result(FAILED, "; ".join(problems), **figures)
        accepted = "the data" if base is None else "the data and the baseline's inputs"
        message = f"accepts {accepted}" + (f" ({'; '.join(notes)})" if notes else "")
        return self.result(PASSED, message, **figures)


class PredictionsValidCheck(Check):
    """The candidate returns one finite prediction per row; a classifier only classes it
    knows (the target's, or its ``classes_``), and probabilities in [0, 1] summing to 1."""

    name = "predictions_valid"

    def spec(self) -> dict[str, Any]:
        return {"predictions_valid": None}

    def run(self, ctx: ValidationContext, rows: Any = None) -> CheckResult:
        np: Any = require("numpy", "data")
        pd: Any = require("pandas", "data")
        try:
            pred = ctx.predictions(CANDIDATE)
        except UnusableOutputs as exc:
            return self.result(FAILED, str(exc))
        missing = int(pd.isna(pred).sum())
        infinite = int(np.isinf(pred).sum()) if pred.dtype.kind in "fc" else 0
        problems = [
            f"{count} {what}"
            for count, what in ((missing, "missing (NaN/None)"), (infinite, "infinite"))
            if count
        ]
        figures: dict[str, Any] = {"rows": len(pred), "missing": missing, "infinite": infinite}
        if ctx.task == CLASSIFICATION:
            unknown = pred[(pd.Index(list(ctx.classes)).get_indexer(pred) < 0) & ~pd.isna(pred)]
            figures["unknown_classes"] = jsonable(list(pd.unique(unknown)[:10]))
            if len(unknown):
                listed = ", ".join(repr(v) for v in figures["unknown_classes"])
                problems.append(f"{len(unknown)} outside the known classes ({listed})")
            if has_proba(ctx.candidate):
                problems += _proba_problems(ctx, figures)
        if problems:
            return self.result(FAILED, "predictions: " + "; ".join(problems), **figures)
        return self.result(PASSED, f"{len(pred)} predictions, all well formed", **figures)


def _proba_problems(ctx: ValidationContext, figures: dict[str, Any]) -> list[str]:
    np: Any = require("numpy", "data")
    out = ctx.outputs(CANDIDATE, proba=True)
    if out.proba_error is not None:
        return [out.proba_error]
    proba = out.proba
    bad_values = int((~np.isfinite(proba) | (proba < 0) | (proba > 1)).any(axis=1).sum())
    bad_sums = int((np.abs(proba.sum(axis=1) - 1) > PROBA_TOLERANCE).sum())
    figures.update(proba_rows_out_of_range=bad_values, proba_rows_not_summing_to_1=bad_sums)
    return [
        f"{count} rows of probabilities {what}"
        for count, what in ((bad_values, "outside [0, 1]"), (bad_sums, "not summing to 1"))
        if count
    ]
