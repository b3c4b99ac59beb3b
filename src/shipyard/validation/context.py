"""What checks look at: the data split into model inputs and truth, the task, and each
model's outputs, computed once and shared by every check and every slice.

A model that raises, or returns the wrong number of predictions, does not stop validation:
its outputs carry the reason, and each check that needs them decides what that means
(a failure for the candidate; an inconclusive comparison for a broken baseline).
"""

from __future__ import annotations

import contextlib
import numbers
from dataclasses import dataclass
from typing import Any

from shipyard.errors import InvalidInput, require
from shipyard.models import LoadedModel
from shipyard.validation.base import jsonable
from shipyard.validation.metrics import (
    CLASSIFICATION,
    METRICS,
    REGRESSION,
    Evaluation,
    Metric,
    get_metric,
)

CANDIDATE, BASELINE = "candidate", "baseline"
MISSING_SLICE = "<missing>"
MAX_SLICES = 100
MAX_CLASSES_FOR_INTEGERS = 20  # an integer target with more distinct values is a regression
EXAMPLES = 5  # labels or values an error message shows


class UnusableOutputs(Exception):
    """A model's outputs cannot be scored: it raised, or returned the wrong shape."""


@dataclass
class Outputs:
    """What one model returned on all rows, or why it could not."""

    predictions: Any = None
    error: str | None = None
    proba: Any = None
    proba_classes: tuple[Any, ...] = ()
    proba_error: str | None = None
    proba_done: bool = False


def has_proba(model: LoadedModel | None) -> bool:
    return model is not None and callable(getattr(model.model, "predict_proba", None))


class ValidationContext:
    """The models, the data (``X`` for the models, ``y`` the truth), the task and the known
    classes; ``evaluation``, ``predictions`` and ``metric`` give each model's outputs."""

    def __init__(
        self,
        *,
        candidate: LoadedModel,
        baseline: LoadedModel | None,
        data: Any,
        target: str,
        X: Any,
        y: Any,
        task: str,
        classes: tuple[Any, ...],
        slices: list[tuple[Any, Any]],
        candidate_label: str,
        baseline_label: str | None,
    ) -> None:
        self.candidate, self.baseline = candidate, baseline
        self.data, self.target, self.X, self.y = data, target, X, y
        self.task, self.classes, self.slices = task, classes, slices
        self.candidate_label, self.baseline_label = candidate_label, baseline_label
        self._outputs: dict[str, Outputs] = {}
        self._evaluations: dict[tuple[str, bool], Evaluation] = {}

    @property
    def rows(self) -> int:
        return len(self.y)

    def model(self, which: str = CANDIDATE) -> LoadedModel | None:
        if which not in (CANDIDATE, BASELINE):
            raise InvalidInput(f"which is {CANDIDATE!r} or {BASELINE!r}, not {which!r}")
        return self.candidate if which == CANDIDATE else self.baseline

    def outputs(self, which: str = CANDIDATE, *, proba: bool = False) -> Outputs:
        """The model's outputs on all rows, computed on first use."""
        model = self.model(which)
        if model is None:
            raise UnusableOutputs(f"there is no {which}")
        out = self._outputs.get(which)
        if out is None:
            out = self._outputs[which] = self._predict(model)
        if proba and not out.proba_done:
            self._predict_proba(model, out)
        return out

    def predictions(self, which: str = CANDIDATE) -> Any:
        """The model's predictions on all rows; UnusableOutputs says why there are none."""
        out = self.outputs(which)
        if out.error is not None:
            raise UnusableOutputs(out.error)
        return out.predictions

    def evaluation(
        self, which: str = CANDIDATE, rows: Any = None, *, proba: bool = False
    ) -> Evaluation:
        """The model's outputs beside the truth, on ``rows`` (positions) or all rows."""
        out = self.outputs(which, proba=proba)
        if out.error is not None:
            raise UnusableOutputs(out.error)
        if proba and out.proba_error is not None:
            raise UnusableOutputs(out.proba_error)
        key = (which, out.proba is not None)
        ev = self._evaluations.get(key)
        if ev is None:  # kept, so that what is computed on all rows is computed once
            ev = Evaluation(self.y, out.predictions, out.proba, self.classes, out.proba_classes)
            self._evaluations[key] = ev
        return ev if rows is None else ev.take(rows)

    def metric(self, name: str, which: str = CANDIDATE, rows: Any = None) -> float:
        """A built-in metric of the model (scikit-learn's figure), for custom checks."""
        metric = get_metric(name)
        return metric.score(self.evaluation(which, rows, proba=metric.needs_proba))

    def _predict(self, model: LoadedModel) -> Outputs:
        np: Any = require("numpy", "data")
        try:
            raw = model.predict(self.X)
        except Exception as exc:  # a broken model is a finding, not a crash
            return Outputs(error=f"predict raised {type(exc).__name__}: {exc}")
        predictions = np.asarray(raw)
        if predictions.ndim == 2 and predictions.shape[1] == 1:
            predictions = predictions[:, 0]
        if predictions.ndim != 1:
            return Outputs(error=f"predict returned shape {predictions.shape}, not one per row")
        if len(predictions) != self.rows:
            return Outputs(
                error=f"predict returned {len(predictions)} predictions for {self.rows} rows"
            )
        if self.task == REGRESSION:
            try:
                predictions = predictions.astype(np.float64)
            except (ValueError, TypeError):
                return Outputs(error="predict returned values that are not numbers")
        return Outputs(predictions=predictions)

    def _predict_proba(self, model: LoadedModel, out: Outputs) -> None:
        np: Any = require("numpy", "data")
        out.proba_done = True
        if not has_proba(model):
            out.proba_error = f"{type(model.model).__name__} has no predict_proba"
            return
        try:
            proba = np.asarray(model.predict_proba(self.X), dtype=np.float64)
        except Exception as exc:
            out.proba_error = f"predict_proba raised {type(exc).__name__}: {exc}"
            return
        if proba.ndim != 2 or len(proba) != self.rows:
            out.proba_error = f"predict_proba returned shape {proba.shape} for {self.rows} rows"
            return
        known = model.classes
        if known is None and proba.shape[1] == len(self.classes):
            known = list(self.classes)  # no classes_: assume the sorted classes, as sklearn
        if known is None or len(known) != proba.shape[1]:
            out.proba_error = (
                f"cannot tell which class each of predict_proba's {proba.shape[1]} columns "
                "is (the model has no classes_)"
            )
            return
        out.proba, out.proba_classes = proba, tuple(jsonable(list(known)))


def as_frame(data: Any) -> Any:
    """``data`` as a DataFrame: a DataFrame, or a dict of columns."""
    pd: Any = require("pandas", "data")
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        try:
            return pd.DataFrame(data)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"cannot read the data as columns: {exc}") from None
    raise InvalidInput(f"data must be a DataFrame or a dict of columns, not {type(data).__name__}")


def check_columns(frame: Any, target: str, slice_by: str | None, candidate: LoadedModel) -> None:
    """InvalidInput naming every column the validation needs and the data lacks."""
    names = {str(c) for c in frame.columns}
    problems = []
    if target not in names:
        problems.append(f"the target {target!r}")
    if slice_by is not None and slice_by not in names:
        problems.append(f"the slice_by column {slice_by!r}")
    sig = candidate.signature
    if sig is not None and isinstance(sig.inputs, tuple):
        need = [
            c.name for c in sig.inputs if c.required and (c.name not in names or c.name == target)
        ]
        if need:
            listed = ", ".join(repr(n) for n in need)
            problems.append(f"{listed} (required by the candidate's signature)")
    if problems:
        raise InvalidInput("the data is missing " + "; ".join(problems))
    if len(frame) == 0:
        raise InvalidInput("the data has no rows")
    missing_target = int(frame[target].isna().sum())
    if missing_target:
        raise InvalidInput(f"the target {target!r} is missing in {missing_target} rows")


def model_inputs(
    frame: Any, target: str, slice_by: str | None, models: list[LoadedModel | None]
) -> Any:
    """The data without the target, and without the slice column unless a model takes it."""
    taken = {
        c.name
        for m in models
        if m is not None and m.signature is not None and isinstance(m.signature.inputs, tuple)
        for c in m.signature.inputs
    }
    drop = [target]
    if slice_by is not None and slice_by != target and slice_by not in taken:
        drop.append(slice_by)
    return frame.drop(columns=[c for c in frame.columns if str(c) in drop])


def resolve_task(task: str | None, candidate: LoadedModel, y: Any, metrics: list[Metric]) -> str:
    """The task asked for, else the one the checks' metrics imply, else the candidate's
    (predict_proba: classification), else the target's dtype."""
    asked = {m.task for m in metrics}
    if task is not None:
        if task not in (CLASSIFICATION, REGRESSION):
            raise InvalidInput(f"task is {CLASSIFICATION!r} or {REGRESSION!r}, not {task!r}")
        wrong = sorted(m.name for m in metrics if m.task != task)
        if wrong:
            raise InvalidInput(f"the task is {task}, and {', '.join(wrong)} is not its metric")
        return task
    if len(asked) > 1:
        by_task = {
            t: ", ".join(sorted({m.name for m in metrics if m.task == t})) for t in sorted(asked)
        }
        raise InvalidInput(
            "the checks mix metrics of two tasks: "
            + "; ".join(f"{t}: {names}" for t, names in by_task.items())
        )
    if asked:
        return asked.pop()
    if has_proba(candidate):
        return CLASSIFICATION
    kind = y.dtype.kind
    if kind == "f":
        return REGRESSION
    if kind in "iu":
        return CLASSIFICATION if len(set(y.tolist())) <= MAX_CLASSES_FOR_INTEGERS else REGRESSION
    return CLASSIFICATION


def check_target_fits_task(
    y: Any, target: str, task: str, metrics: list[Metric], candidate: LoadedModel, *, asked: bool
) -> None:
    """InvalidInput when a classification is asked of a continuous target: numbers with
    fractions, or (unless ``asked`` for explicitly) more distinct numbers than
    MAX_CLASSES_FOR_INTEGERS for a candidate with no ``classes_`` or ``predict_proba``."""
    np: Any = require("numpy", "data")
    pd: Any = require("pandas", "data")
    if task != CLASSIFICATION or y.dtype.kind not in "iuf":
        return
    values = pd.unique(y)
    fractional = values[np.mod(values, 1) != 0] if y.dtype.kind == "f" else values[:0]
    classifier = candidate.classes is not None or has_proba(candidate)
    if len(fractional):
        found = f"continuous numbers ({_examples(fractional)})"
    elif not asked and not classifier and len(values) > MAX_CLASSES_FOR_INTEGERS:
        found = (
            f"{len(values)} distinct numbers ({_examples(values)}) and the candidate has no "
            "classes_"
        )
    else:
        return  # 0.0 / 1.0, or a few integers: labels that happen to be numbers
    named = sorted({m.name for m in metrics if m.task == CLASSIFICATION})
    if len(named) == 1:
        wanted = f"{named[0]} is a classification metric"
    elif named:
        wanted = f"{', '.join(named)} are classification metrics"
    else:
        wanted = "the task is classification"
    regression = ", ".join(m.name for m in METRICS.values() if m.task == REGRESSION)
    raise InvalidInput(
        f"{wanted}, but the target {target!r} holds {found}: is it a regression? "
        f"(its metrics: {regression})"
    )


def check_signature(X: Any, model: LoadedModel, who: str) -> None:
    """InvalidInput when ``model``'s signature refuses ``X``: then every check that calls the
    model would fail for a reason that is the data's, not the model's."""
    if model.signature is None:
        return
    try:
        model.signature.enforce(X)
    except InvalidInput as exc:
        raise InvalidInput(
            f"the validation data does not fit {who}'s signature: {exc.message}"
        ) from None


def check_labels(y: Any, target: str, model: LoadedModel | None, who: str) -> None:
    """InvalidInput when the target's labels and the classes ``model`` knows are of other
    kinds (numbers and strings) or share none: no score of it could mean anything."""
    pd: Any = require("pandas", "data")
    known = jsonable(model.classes) if model is not None and model.classes else None
    if not known:
        return
    labels = jsonable(list(pd.unique(y)))
    ours, theirs = _label_kinds(labels), _label_kinds(known)
    try:
        shared = not set(labels).isdisjoint(known)
    except TypeError:  # unhashable labels: let the checks say what they make of them
        return
    if ours == theirs and shared:
        return
    raise InvalidInput(
        f"the target {target!r} does not hold the labels {who} predicts: the target's are "
        f"{_examples(labels)} ({ours}); {who}'s are {_examples(known)} ({theirs})"
    )


def _label_kinds(labels: list[Any]) -> str:
    kinds = {
        "numbers" if isinstance(v, numbers.Number) else "strings" if isinstance(v, str) else "other"
        for v in labels
    }
    return " and ".join(sorted(kinds))


def _examples(values: Any) -> str:
    """A few of ``values``, sorted when they sort, for a message."""
    shown = list(values)
    with contextlib.suppress(TypeError):  # mixed types keep their order
        shown = sorted(shown)
    listed = ", ".join(_shown(jsonable(v)) for v in shown[:EXAMPLES])
    return listed + (", ..." if len(shown) > EXAMPLES else "")


def _shown(value: Any) -> str:
    """repr of a label as Python's (np.str_ and np.float64 subclass str and float)."""
    for kind in (bool, str, float):
        if isinstance(value, kind):
            return repr(kind(value))
    return repr(value)


def known_classes(y: Any, candidate: LoadedModel) -> tuple[Any, ...]:
    """The target's classes and the candidate's ``classes_``, sorted."""
    found = set(jsonable(y.tolist())) | set(jsonable(candidate.classes or []))
    try:
        return tuple(sorted(found))
    except TypeError:  # mixed types: any fixed order will do
        return tuple(sorted(found, key=lambda v: (type(v).__name__, str(v))))


def slice_rows(column: Any) -> list[tuple[Any, Any]]:
    """(value, row positions) for each value of ``column``, sorted; missing values last."""
    np: Any = require("numpy", "data")
    pd: Any = require("pandas", "data")
    try:
        codes, values = pd.factorize(column, sort=True)
    except TypeError:
        codes, values = pd.factorize(column, sort=False)
    count = len(values) + int((codes < 0).any())
    if count > MAX_SLICES:
        raise InvalidInput(
            f"slice_by {column.name!r} has {count} distinct values; at most {MAX_SLICES} "
            "slices are supported (bin the column first)"
        )
    slices = [(jsonable(v), np.flatnonzero(codes == i)) for i, v in enumerate(values)]
    if (codes < 0).any():
        slices.append((MISSING_SLICE, np.flatnonzero(codes < 0)))
    return slices
