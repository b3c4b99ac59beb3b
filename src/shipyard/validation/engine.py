"""``validate_models``: check the inputs, build the context, run every check (and each
per-slice check on every slice), and gather the results into a report.

Everything that makes the question itself wrong (a missing column, an unknown task, checks
of two tasks, data the candidate's signature refuses, a target whose labels are not the
model's, a classification metric of a continuous target) raises InvalidInput before any
check runs. Everything a model does wrong (raising, returning the wrong number of
predictions) becomes a failed check instead.

A report on fewer than MIN_ROWS rows cannot pass, whatever its checks say: a ``data_size``
result, inconclusive, says so (checks such as latency or predictions_valid pass on one row).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from shipyard.errors import InvalidInput, require
from shipyard.models import LoadedModel, ModelInfo
from shipyard.validation.base import FAILED, INCONCLUSIVE, Check, CheckResult
from shipyard.validation.checks import as_check
from shipyard.validation.context import (
    BASELINE,
    CANDIDATE,
    UnusableOutputs,
    ValidationContext,
    as_frame,
    check_columns,
    check_labels,
    check_signature,
    check_target_fits_task,
    has_proba,
    known_classes,
    model_inputs,
    resolve_task,
    slice_rows,
)
from shipyard.validation.metric_checks import MIN_ROWS, shared_resamples
from shipyard.validation.metrics import (
    CLASSIFICATION,
    Metric,
    MetricUndefined,
    default_metrics,
    get_metric,
)
from shipyard.validation.plots import diagnostics
from shipyard.validation.report import ValidationReport


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """The bootstrap's matrix products are small and many: split across threads they wait
    on each other (and on anything else using the cores) far more than they gain."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # comes with scikit-learn; without it, run as configured
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def validate_models(
    candidate: Any,
    data: Any,
    *,
    target: str,
    checks: Sequence[Any],
    baseline: Any = None,
    slice_by: str | None = None,
    task: str | None = None,
    candidate_label: str | None = None,
    baseline_label: str | None = None,
) -> ValidationReport:
    """Run ``checks`` on ``candidate`` (and ``baseline``, when given) over ``data``.

    Args:
        candidate: a LoadedModel (or any object with ``predict``, used as it is).
        data: a DataFrame or a dict of columns, holding the ``target`` column.
        checks: Checks from ``shipyard.validation.checks``, or functions of the context.
        slice_by: a column whose values split the rows; metric and no_regression checks run
            again on each value's rows (missing values form the slice ``"<missing>"``).
        task: "classification" or "regression"; None infers it from the checks' metrics,
            then from the candidate (predict_proba: classification), then from the target.
    """
    check_list = [as_check(c) for c in checks]
    if not check_list:
        raise InvalidInput("no checks to run: pass checks=[checks.metric(...), ...]")
    ctx = _context(
        _as_model(candidate),
        _as_model(baseline),
        as_frame(data),
        target=target,
        slice_by=slice_by,
        task=task,
        metrics=[get_metric(n) for c in check_list for n in c.metrics],
        labels=(candidate_label or CANDIDATE, baseline_label or BASELINE),
    )
    results = []
    with _one_blas_thread(), shared_resamples():
        for check in check_list:
            spec = check.spec()
            results.append(_run(check, spec, ctx, None, None))
            if check.per_slice:
                results += [_run(check, spec, ctx, rows, value) for value, rows in ctx.slices]
    if ctx.rows < MIN_ROWS:
        results.append(_too_few_rows(ctx.rows))
    return ValidationReport(
        results=results,
        candidate=ctx.candidate_label,
        baseline=ctx.baseline_label,
        task=ctx.task,
        target=target,
        rows=ctx.rows,
        slice_by=slice_by,
        metrics=_summary(ctx, check_list),
        diagnostics=diagnostics(ctx),
        created_at=time.time(),
    )


def _context(
    candidate: LoadedModel,
    baseline: LoadedModel | None,
    frame: Any,
    *,
    target: str,
    slice_by: str | None,
    task: str | None,
    metrics: list[Metric],
    labels: tuple[str, str],
) -> ValidationContext:
    """The context, once the data is known to hold what the validation needs."""
    check_columns(frame, target, slice_by, candidate)
    y = _values(frame[target])
    asked = task is not None
    task = resolve_task(task, candidate, y, metrics)
    check_target_fits_task(y, target, task, metrics, candidate, asked=asked)
    if task != CLASSIFICATION:
        try:
            y = y.astype("float64")
        except (ValueError, TypeError):
            raise InvalidInput(
                f"the target {target!r} is not numeric; a regression needs numbers"
            ) from None
    X = model_inputs(frame, target, slice_by, [candidate, baseline])
    check_signature(X, candidate, _who(labels[0], CANDIDATE))
    if task == CLASSIFICATION:
        check_labels(y, target, candidate, _who(labels[0], CANDIDATE))
        check_labels(y, target, baseline, _who(labels[1], BASELINE))
    return ValidationContext(
        candidate=candidate,
        baseline=baseline,
        data=frame,
        target=target,
        X=X,
        y=y,
        task=task,
        classes=known_classes(y, candidate) if task == CLASSIFICATION else (),
        slices=slice_rows(frame[slice_by]) if slice_by is not None else [],
        candidate_label=labels[0],
        baseline_label=labels[1] if baseline is not None else None,
    )


def _values(column: Any) -> Any:
    """A column as a numpy array; a nullable one (Int64, Float64, boolean) as its numpy
    dtype, not object (the target has no missing values by now)."""
    numpy_dtype = getattr(column.dtype, "numpy_dtype", None)
    if numpy_dtype is not None and numpy_dtype.kind in "biuf":
        return column.to_numpy(dtype=numpy_dtype)
    return column.to_numpy()


def _who(label: str, role: str) -> str:
    """How a message names a model: its label, or "the candidate" / "the baseline"."""
    return f"the {role}" if label == role else label


def _as_model(model: Any) -> Any:
    if model is None or isinstance(model, LoadedModel):
        return model
    if not callable(getattr(model, "predict", None)):
        raise InvalidInput(f"a model to validate needs a predict method; got {model!r:.100}")
    return LoadedModel(model, ModelInfo(flavor="unsaved", config={}))


def _run(
    check: Check, spec: dict[str, Any], ctx: ValidationContext, rows: Any, value: Any
) -> CheckResult:
    try:
        result = check.run(ctx, rows)
    except Exception as exc:  # one broken check must not lose the others' results
        result = CheckResult(check.name, FAILED, f"the check raised {type(exc).__name__}: {exc}")
    # set here, not by each check: a custom check's own CheckResult says what was asked too
    result = replace(result, spec=spec)
    return result if value is None else replace(result, slice=value)


def _too_few_rows(rows: int) -> CheckResult:
    return CheckResult(
        "data_size",
        INCONCLUSIVE,
        f"only {rows} rows: at least {MIN_ROWS} are needed for a validation to pass",
        {"rows": rows, "min_rows": MIN_ROWS},
        spec={"data_size": None, "min_rows": MIN_ROWS},
    )


def _summary(ctx: ValidationContext, checks: list[Check]) -> dict[str, dict[str, float | None]]:
    """Each model's value of the task's usual metrics and of those the checks named."""
    np: Any = require("numpy", "data")
    wanted = default_metrics(ctx.task, with_proba=has_proba(ctx.candidate))
    wanted += [get_metric(n) for c in checks for n in c.metrics if get_metric(n) not in wanted]
    summary: dict[str, dict[str, float | None]] = {}
    for which in (CANDIDATE, BASELINE) if ctx.baseline is not None else (CANDIDATE,):
        values: dict[str, float | None] = {}
        for metric in wanted:
            try:
                value = metric.score(ctx.evaluation(which, proba=metric.needs_proba))
                values[metric.name] = value if np.isfinite(value) else None
            except (UnusableOutputs, MetricUndefined, ValueError):
                values[metric.name] = None
        summary[which] = values
    return summary
