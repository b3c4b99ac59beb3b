"""The diagnostics a report keeps for its plots, and the plots drawn from them.

Diagnostics are computed once, at validation time, from the candidate's outputs, and kept in
the report as small JSON: a confusion matrix, calibration bins, a sample of residuals. A
report read back from the registry draws the same plots without the model or the data.

Plots use matplotlib when it is installed, through ``matplotlib.figure.Figure`` directly:
no pyplot, so no GUI backend is chosen and no global state of the caller's is touched.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shipyard.errors import require
from shipyard.validation.base import jsonable
from shipyard.validation.context import (
    BASELINE,
    CANDIDATE,
    UnusableOutputs,
    ValidationContext,
    has_proba,
)
from shipyard.validation.metrics import CLASSIFICATION

MAX_CONFUSION_CLASSES = 30
CALIBRATION_BINS = 10
RESIDUAL_SAMPLE = 2000


def diagnostics(ctx: ValidationContext) -> dict[str, Any]:
    """What the report's plots need, from the models' outputs on all rows. What cannot be
    computed is left out with a note: a plot must never stop a report."""
    try:
        pred = ctx.predictions(CANDIDATE)
    except UnusableOutputs as exc:
        return {"notes": [f"no plots: the candidate's predictions are unusable ({exc})"]}
    notes: list[str] = []
    found: dict[str, Any] = {}
    if ctx.task == CLASSIFICATION:
        found["confusion"] = _attempt(
            notes, "confusion matrix", lambda: _confusion(ctx.y, pred, ctx.classes, notes)
        )
        if has_proba(ctx.candidate):
            found["calibration"] = _attempt(
                notes, "calibration curve", lambda: _calibration_of(ctx, CANDIDATE)
            )
        if found.get("calibration") and ctx.baseline is not None:
            kind = found["calibration"]["kind"]
            found["calibration_baseline"] = _attempt(
                notes, "calibration curve of the baseline", lambda: _baseline_calibration(ctx, kind)
            )
    else:
        found["residuals"] = _attempt(notes, "residual plot", lambda: _residuals(ctx.y, pred))
    found["notes"] = notes
    return dict(jsonable(found))


def _attempt(notes: list[str], what: str, compute: Callable[[], Any]) -> Any:
    """``compute()``, or None and a note saying why there is no ``what``."""
    try:
        return compute()
    except Exception as exc:  # a diagnostic that cannot be computed is a note, not a crash
        notes.append(f"no {what}: {_reason(exc)}")
        return None


def _reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, UnusableOutputs) else f"{type(exc).__name__}: {exc}"


def _calibration_of(ctx: ValidationContext, which: str) -> dict[str, Any]:
    out = ctx.outputs(which, proba=True)
    problem = out.error or out.proba_error
    if problem is not None:
        raise UnusableOutputs(problem)
    return _calibration(ctx.y, out.proba, out.proba_classes, ctx.classes)


def _baseline_calibration(ctx: ValidationContext, kind: str) -> dict[str, Any]:
    """The baseline's curve, drawn beside the candidate's only when it plots the same thing."""
    if not has_proba(ctx.baseline):
        raise UnusableOutputs("it has no predict_proba")
    curve = _calibration_of(ctx, BASELINE)
    if curve["kind"] != kind:  # one of them has no column for the positive class
        raise UnusableOutputs(f"it shows the {curve['kind']}, the candidate the {kind}")
    return curve


def _confusion(y: Any, pred: Any, classes: tuple[Any, ...], notes: list[str]) -> Any:
    if len(classes) > MAX_CONFUSION_CLASSES:
        notes.append(f"no confusion matrix: {len(classes)} classes are too many to draw")
        return None
    skm: Any = require("sklearn.metrics", "models")
    matrix = skm.confusion_matrix(y, pred, labels=list(classes))
    return {"labels": list(classes), "matrix": matrix}


def _calibration(
    y: Any, proba: Any, proba_classes: tuple[Any, ...], classes: tuple[Any, ...]
) -> dict[str, Any]:
    """Mean predicted probability against observed frequency, in equal-width bins: of the
    positive class for a binary task, of the top class (its confidence) otherwise."""
    np: Any = require("numpy", "data")
    if len(classes) <= 2 and classes[-1] in proba_classes:
        positive = classes[-1]
        p = proba[:, proba_classes.index(positive)]
        hit = y == positive
        kind = f"P(class = {positive!r})"
    else:
        p = proba.max(axis=1)
        hit = np.asarray(proba_classes, dtype=object)[proba.argmax(axis=1)] == y
        kind = "confidence of the top class"
    keep = np.isfinite(p)
    p, hit = np.clip(p[keep], 0, 1), hit[keep].astype(float)
    bins = np.minimum((p * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    count = np.bincount(bins, minlength=CALIBRATION_BINS)
    used = count > 0
    return {
        "kind": kind,
        "mean_predicted": (np.bincount(bins, weights=p, minlength=CALIBRATION_BINS)[used])
        / count[used],
        "observed": np.bincount(bins, weights=hit, minlength=CALIBRATION_BINS)[used] / count[used],
        "count": count[used],
    }


def _residuals(y: Any, pred: Any) -> dict[str, Any]:
    np: Any = require("numpy", "data")
    rows = np.arange(len(y))
    if len(rows) > RESIDUAL_SAMPLE:  # enough to see the shape; a report stays small
        rows = np.sort(np.random.default_rng(0).choice(rows, RESIDUAL_SAMPLE, replace=False))
    return {"predicted": pred[rows], "residual": (y - pred)[rows], "rows": len(y)}


@dataclass(frozen=True)
class Plot:
    title: str
    svg: str  # a data: URI of the SVG image


Labels = tuple[str, str | None]  # how the plots name the candidate and the baseline


def draw(
    found: dict[str, Any], labels: Labels = (CANDIDATE, BASELINE)
) -> tuple[list[Plot], list[str]] | None:
    """The plots of these diagnostics and notes on those that could not be drawn, or None
    when matplotlib is not installed."""
    try:
        from matplotlib import rc_context
        from matplotlib.figure import Figure
    except ImportError:
        return None
    plots, notes = [], []
    drawers = (
        ("confusion", "Confusion matrix", _draw_confusion),
        ("calibration", "Calibration curve", _draw_calibration),
        ("residuals", "Residuals", _draw_residuals),
    )
    # a fixed salt makes the SVG's element ids, and so the page, the same on every run
    with rc_context({"svg.hashsalt": "shipyard", "svg.fonttype": "path"}):
        for key, title, drawer in drawers:
            if not found.get(key):
                continue
            try:
                plots.append(Plot(title, _svg(drawer(Figure, found, labels))))
            except Exception as exc:  # a report is still worth reading without this plot
                notes.append(f"the {title.lower()} could not be drawn: {type(exc).__name__}: {exc}")
    return plots, notes


def _svg(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _draw_confusion(figure: Any, found: dict[str, Any], names: Labels) -> Any:
    labels = [str(v) for v in found["confusion"]["labels"]]
    matrix = found["confusion"]["matrix"]
    size = 0.5 * len(labels)
    fig = figure(figsize=(max(4.5, 1.6 + size), max(3.5, 1.2 + size)), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xlabel="predicted")
    ax.set(ylabel="true", title=f"Confusion matrix ({names[0]})")
    ax.set_xticklabels(labels, rotation=45, ha="right")
    ax.set_yticklabels(labels)
    if len(labels) <= 15:
        top = max((max(row) for row in matrix), default=0)
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                color = "white" if count > top / 2 else "black"
                ax.text(j, i, str(count), ha="center", va="center", color=color, fontsize=8)
    return fig


def _draw_calibration(figure: Any, found: dict[str, Any], names: Labels) -> Any:
    curve, baseline = found["calibration"], found.get("calibration_baseline")
    fig = figure(figsize=(5, 4), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot(curve["mean_predicted"], curve["observed"], marker="o", label=names[0])
    if baseline:
        ax.plot(
            baseline["mean_predicted"],
            baseline["observed"],
            marker="s",
            linestyle=":",
            label=names[1] or BASELINE,
        )
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel=f"mean predicted {curve['kind']}")
    ax.set(ylabel="observed frequency", title="Calibration curve")
    ax.legend(loc="upper left")
    return fig


def _draw_residuals(figure: Any, found: dict[str, Any], names: Labels) -> Any:
    points = [
        (p, r)
        for p, r in zip(
            found["residuals"]["predicted"], found["residuals"]["residual"], strict=True
        )
        if p is not None and r is not None
    ]
    predicted, residual = [p for p, _ in points], [r for _, r in points]
    fig = figure(figsize=(9, 4), layout="constrained")
    scatter, hist = fig.subplots(1, 2, width_ratios=[2, 1])
    scatter.scatter(predicted, residual, s=6, alpha=0.5)
    scatter.axhline(0, color="grey", linestyle="--")
    scatter.set(xlabel="predicted", ylabel="true - predicted", title=f"Residuals ({names[0]})")
    hist.hist(residual, bins=40)
    hist.set(xlabel="true - predicted", ylabel="rows", title="Residual distribution")
    return fig
