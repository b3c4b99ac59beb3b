"""Built-in metrics: scikit-learn for the figure, a weighted twin of it for the bootstrap.

Each metric has two implementations that must agree. ``score`` calls ``sklearn.metrics`` on
the rows as they are. ``resampler`` returns a function of a weights matrix, one row per
bootstrap resample and one column per data row (how many times the resample drew that row),
which computes the metric of every resample from weighted sums: a bootstrap never
materialises resampled rows. Means (accuracy, mae, rmse, log_loss) are one matrix product;
f1 is a weighted confusion matrix per resample; r2 four weighted sums; roc_auc sorts the
scores once, then per resample a cumulative sum of the negatives' weights tells how many
negatives each positive outscores (ties count half, as in the trapezoidal ROC area).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from shipyard.errors import InvalidInput, require

CLASSIFICATION, REGRESSION = "classification", "regression"

Resampler = Callable[[Any], Any]  # weights (resamples x rows) -> one value per resample


class MetricUndefined(Exception):
    """These rows cannot give the metric a value (roc_auc with one class present)."""


@dataclass(frozen=True, eq=False)
class Evaluation:
    """One model's outputs on some rows beside the truth: what every metric reads."""

    y: Any  # ndarray of true values
    pred: Any  # ndarray of predictions, one per row
    proba: Any = None  # (rows, len(proba_classes)) float64, or None
    classes: tuple[Any, ...] = ()  # the known classes, sorted; () for a regression
    proba_classes: tuple[Any, ...] = ()  # the class of each column of ``proba``
    scores: dict[str, float] = field(default_factory=dict, repr=False)  # computed metrics

    def __len__(self) -> int:
        return len(self.y)

    def take(self, rows: Any) -> Evaluation:
        """The same evaluation on a subset of rows (positions)."""
        proba = None if self.proba is None else self.proba[rows]
        return Evaluation(self.y[rows], self.pred[rows], proba, self.classes, self.proba_classes)

    @cached_property
    def universe(self) -> list[Any]:
        """Every label seen: the known classes, then predicted values outside them."""
        pd: Any = require("pandas", "data")
        known = pd.Index(list(self.classes))
        extra = pd.unique(self.pred[known.get_indexer(self.pred) < 0])
        return [*self.classes, *extra]

    @cached_property
    def codes(self) -> tuple[Any, Any]:
        """Positions in ``universe`` of each true and predicted label."""
        pd: Any = require("pandas", "data")
        index = pd.Index(self.universe)
        return index.get_indexer(self.y), index.get_indexer(self.pred)

    @property
    def positive(self) -> Any:
        """The positive class of a binary task: the last of the sorted classes."""
        return self.classes[-1]

    def proba_column(self, cls: Any) -> Any:
        if cls not in self.proba_classes:
            raise ValueError(f"predict_proba has no column for class {cls!r}")
        return self.proba[:, self.proba_classes.index(cls)]


def _always_defined(ev: Evaluation) -> str | None:
    return None


@dataclass(frozen=True)
class Metric:
    """A built-in metric: its task, direction, and its two implementations."""

    name: str
    task: str
    higher_is_better: bool
    sklearn_score: Callable[[Evaluation], float]
    resampler: Callable[[Evaluation], Resampler]
    needs_proba: bool = False
    undefined: Callable[[Evaluation], str | None] = _always_defined  # why rows cannot tell

    def score(self, ev: Evaluation) -> float:
        """The metric on these rows, by scikit-learn. Raises MetricUndefined when the rows
        cannot tell, ValueError when the predictions are unusable."""
        reason = self.undefined(ev)
        if reason is not None:
            raise MetricUndefined(reason)
        if self.needs_proba and ev.proba is None:
            raise ValueError(f"{self.name} needs predict_proba")
        if self.name not in ev.scores:
            with warnings.catch_warnings():
                # what scikit-learn warns about (probabilities not summing to one, labels
                # absent) is reported by predictions_valid; a warning must not stop a report
                warnings.simplefilter("ignore")
                ev.scores[self.name] = float(self.sklearn_score(ev))
        return ev.scores[self.name]


def _np() -> Any:
    return require("numpy", "data")


def _skm() -> Any:
    return require("sklearn.metrics", "models")


def _is_binary(ev: Evaluation) -> bool:
    return len(ev.classes) <= 2


def _weighted_mean(per_row: Any) -> Resampler:
    np = _np()
    ones = np.ones(len(per_row))

    def resample(weights: Any) -> Any:
        return (weights @ per_row) / (weights @ ones)  # two matrix-vector products

    return resample


# accuracy, f1


def _accuracy_resampler(ev: Evaluation) -> Resampler:
    return _weighted_mean((ev.pred == ev.y).astype(float))


def _f1_score(ev: Evaluation) -> float:
    if _is_binary(ev):
        return float(
            _skm().f1_score(ev.y, ev.pred, labels=[ev.positive], average="macro", zero_division=0)
        )
    return float(_skm().f1_score(ev.y, ev.pred, average="macro", zero_division=0))


def _f1_resampler(ev: Evaluation) -> Resampler:
    np = _np()
    true_code, pred_code = ev.codes
    k = len(ev.universe)
    pair = true_code * k + pred_code
    positive = ev.universe.index(ev.positive) if _is_binary(ev) else None

    def resample(weights: Any) -> Any:
        # one confusion matrix per resample: resamples x true x predicted
        matrix = np.stack([np.bincount(pair, weights=w, minlength=k * k) for w in weights])
        matrix = matrix.reshape(-1, k, k)
        tp = np.diagonal(matrix, axis1=1, axis2=2)
        support = matrix.sum(axis=2) + matrix.sum(axis=1)  # true + predicted, per label
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(support > 0, 2 * tp / support, 0.0)
        if positive is not None:
            return f1[:, positive]
        # scikit-learn averages over the labels present (true or predicted) in the rows
        return f1.sum(axis=1) / (support > 0).sum(axis=1)

    return resample


# roc_auc, log_loss


def _roc_auc_undefined(ev: Evaluation) -> str | None:
    present = set(ev.y.tolist())
    wanted = ev.classes if _is_binary(ev) else ev.proba_classes
    missing = [c for c in wanted if c not in present]
    if missing:
        return f"roc_auc needs rows of every class; these rows have none of {_names(missing)}"
    return None


def _roc_auc_score(ev: Evaluation) -> float:
    if _is_binary(ev):
        return float(_skm().roc_auc_score(ev.y == ev.positive, ev.proba_column(ev.positive)))
    return float(
        _skm().roc_auc_score(
            ev.y, ev.proba, multi_class="ovr", average="macro", labels=list(ev.proba_classes)
        )
    )


def _binary_auc(scores: Any, positive: Any) -> Resampler:
    """Weighted Mann-Whitney AUC: each positive beats the negatives scored below it, and half
    of those tied with it. Scores are sorted once; a resample is a cumulative sum."""
    np = _np()
    order = np.argsort(scores, kind="stable")
    negatives, positives = order[~positive[order]], order[positive[order]]
    below = np.searchsorted(scores[negatives], scores[positives], side="left")
    up_to = np.searchsorted(scores[negatives], scores[positives], side="right")

    def resample(weights: Any) -> Any:
        out = np.empty(len(weights))
        cum_neg = np.zeros(len(negatives) + 1, dtype=np.int64)
        # row by row: a row of counts stays in cache while it is gathered and summed
        for j, row in enumerate(weights):
            w = row.astype(np.int32)  # counts: exact as integers, and half the bytes to gather
            np.cumsum(w[negatives], out=cum_neg[1:])
            twice_wins = cum_neg[below] + cum_neg[up_to]  # 2 x (below + half the ties)
            pos_weights = w[positives]
            pairs = 2.0 * float(pos_weights.sum()) * float(cum_neg[-1])
            out[j] = float(np.dot(pos_weights, twice_wins)) / pairs if pairs else np.nan
        return out

    return resample


def _roc_auc_resampler(ev: Evaluation) -> Resampler:
    if _is_binary(ev):
        return _binary_auc(ev.proba_column(ev.positive), ev.y == ev.positive)
    per_class = [_binary_auc(ev.proba_column(c), ev.y == c) for c in ev.proba_classes]
    return lambda weights: sum(auc(weights) for auc in per_class) / len(per_class)


def _log_loss_score(ev: Evaluation) -> float:
    return float(_skm().log_loss(ev.y, ev.proba, labels=list(ev.proba_classes)))


def _log_loss_resampler(ev: Evaluation) -> Resampler:
    np = _np()
    pd: Any = require("pandas", "data")
    column = pd.Index(list(ev.proba_classes)).get_indexer(ev.y)
    if (column < 0).any():
        raise ValueError("the truth has classes predict_proba has no column for")
    eps = np.finfo(np.float64).eps  # scikit-learn clips at the dtype's epsilon too
    p_true = np.clip(ev.proba[np.arange(len(column)), column], eps, 1 - eps)
    return _weighted_mean(-np.log(p_true))


# regression


def _rmse_resampler(ev: Evaluation) -> Resampler:
    np = _np()
    mse = _weighted_mean((ev.y - ev.pred) ** 2)
    return lambda weights: np.sqrt(mse(weights))


def _mae_resampler(ev: Evaluation) -> Resampler:
    np = _np()
    return _weighted_mean(np.abs(ev.y - ev.pred))


def _r2_resampler(ev: Evaluation) -> Resampler:
    np = _np()
    centred = ev.y - ev.y.mean()  # a shift changes no sum of squares and keeps them accurate
    columns = np.column_stack([np.ones_like(centred), centred, centred**2, (ev.y - ev.pred) ** 2])

    def resample(weights: Any) -> Any:
        total, first, second, residual = (weights @ columns).T  # rows x 4: one pass
        spread = second - first**2 / total
        with np.errstate(invalid="ignore", divide="ignore"):
            r2 = 1 - residual / spread
        # scikit-learn's force_finite: a constant truth scores 1 if predicted exactly, else 0
        return np.where(spread > 0, r2, np.where(residual == 0, 1.0, 0.0))

    return resample


def _names(values: list[Any]) -> str:
    return ", ".join(repr(v) for v in values)


def _accuracy_score(ev: Evaluation) -> float:
    return float(_skm().accuracy_score(ev.y, ev.pred))


def _rmse_score(ev: Evaluation) -> float:
    return float(_skm().root_mean_squared_error(ev.y, ev.pred))


def _mae_score(ev: Evaluation) -> float:
    return float(_skm().mean_absolute_error(ev.y, ev.pred))


def _r2_score(ev: Evaluation) -> float:
    return float(_skm().r2_score(ev.y, ev.pred))


def _r2_undefined(ev: Evaluation) -> str | None:
    return "r2 needs at least two rows" if len(ev) < 2 else None


def _build() -> dict[str, Metric]:
    c, r, higher, lower = CLASSIFICATION, REGRESSION, True, False
    metrics = [
        Metric("accuracy", c, higher, _accuracy_score, _accuracy_resampler),
        Metric("f1", c, higher, _f1_score, _f1_resampler),
        Metric(
            "roc_auc",
            c,
            higher,
            _roc_auc_score,
            _roc_auc_resampler,
            needs_proba=True,
            undefined=_roc_auc_undefined,
        ),
        Metric("log_loss", c, lower, _log_loss_score, _log_loss_resampler, needs_proba=True),
        Metric("rmse", r, lower, _rmse_score, _rmse_resampler),
        Metric("mae", r, lower, _mae_score, _mae_resampler),
        Metric("r2", r, higher, _r2_score, _r2_resampler, undefined=_r2_undefined),
    ]
    return {m.name: m for m in metrics}


METRICS: dict[str, Metric] = _build()


def get_metric(name: str) -> Metric:
    """The built-in metric called ``name``; InvalidInput naming the known ones otherwise."""
    try:
        return METRICS[name]
    except (KeyError, TypeError):  # TypeError: an unhashable name, such as a list
        raise InvalidInput(
            f"unknown metric {name!r} (the built-in metrics are: {', '.join(METRICS)})"
        ) from None


def default_metrics(task: str, with_proba: bool) -> list[Metric]:
    """The metrics a report summarises for a task."""
    return [m for m in METRICS.values() if m.task == task and (with_proba or not m.needs_proba)]
