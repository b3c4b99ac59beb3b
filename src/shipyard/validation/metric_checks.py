"""Checks on a metric: a threshold on the candidate, and no regression from the baseline.

Both run on all rows and again on each slice. Too few rows gives "inconclusive", never
"passed": a gate must not open because the data was too small to say anything.

no_regression is a paired bootstrap: the same resampled rows are scored for both models. A
resample is drawn as row indices and handed to the metrics as counts (how many times each
row was drawn), one row of a (resamples x rows) float64 weights matrix of a million cells
at most: 1,000 resamples of 100,000 rows never exist at once. Rows of counts are drawn one
after the other, so a seed gives the same resamples whatever the chunk size.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from shipyard.errors import InvalidInput, require
from shipyard.validation.base import (
    FAILED,
    INCONCLUSIVE,
    PASSED,
    Check,
    CheckResult,
    integer_argument,
    number_argument,
)
from shipyard.validation.context import BASELINE, CANDIDATE, UnusableOutputs, ValidationContext
from shipyard.validation.metrics import Evaluation, MetricUndefined, Resampler, get_metric

MIN_ROWS = 30
MIN_CLASS_ROWS = 2
MAX_UNDEFINED = 0.05  # share of resamples where the metric may be undefined (and left out)
CHUNK_CELLS = 1_000_000  # cells of a weights chunk: 8 MB of float64, which stays in cache


class MetricCheck(Check):
    """The candidate's metric on the rows is within ``[min, max]``."""

    per_slice = True

    def __init__(self, metric: str, *, min: float | None, max: float | None, min_rows: int) -> None:
        self.metric = get_metric(metric)
        where = f"metric({metric!r})"
        if min is None and max is None:
            raise InvalidInput(f"{where} needs min= or max= (or both)")
        self.min = None if min is None else number_argument(where, "min", min)
        self.max = None if max is None else number_argument(where, "max", max)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise InvalidInput(
                f"{where}: min {self.min:g} is above max {self.max:g}, so nothing could pass"
            )
        self.min_rows = integer_argument(where, "min_rows", min_rows, at_least=1)
        self.name = f"metric:{metric}"

    @property
    def metrics(self) -> tuple[str, ...]:
        return (self.metric.name,)

    def spec(self) -> dict[str, Any]:
        return {
            "metric": self.metric.name,
            "min": self.min,
            "max": self.max,
            "min_rows": self.min_rows,
        }

    def run(self, ctx: ValidationContext, rows: Any = None) -> CheckResult:
        name = self.metric.name
        limits = {"min": self.min, "max": self.max}
        try:
            ev = ctx.evaluation(CANDIDATE, rows, proba=self.metric.needs_proba)
            value = self.metric.score(ev)
        except UnusableOutputs as exc:
            return self.result(FAILED, f"cannot score the candidate: {exc}", **limits)
        except MetricUndefined as exc:
            return self.result(INCONCLUSIVE, str(exc), **limits)
        except ValueError as exc:
            return self.result(FAILED, f"cannot compute {name}: {exc}", **limits)
        figures = {"value": value, **limits, "rows": len(ev)}
        if len(ev) < self.min_rows:
            message = f"{name} {value:.4g} on only {len(ev)} rows (at least {self.min_rows} needed)"
            return self.result(INCONCLUSIVE, message, **figures)
        below = self.min is not None and value < self.min
        above = self.max is not None and value > self.max
        bounds = " and ".join(
            f"{sign} {limit:g}"
            for sign, limit in (("≥", self.min), ("≤", self.max))
            if limit is not None
        )
        if below or above:
            return self.result(FAILED, f"{name} {value:.4g}, should be {bounds}", **figures)
        return self.result(PASSED, f"{name} {value:.4g} {bounds}", **figures)


class NoRegressionCheck(Check):
    """The candidate is not worse than the baseline by more than ``max_drop``.

    A paired bootstrap: the same resampled rows are scored for both models, and the
    ``confidence`` percentile interval of the difference (positive: candidate better, in the
    metric's own direction) is compared with ``-max_drop``. Its lower bound at or above it
    passes; its upper bound below it fails; an interval straddling it is inconclusive (more
    rows would tell). So is a comparison the rows cannot support: fewer than ``min_rows``
    rows, a class with fewer than 2 rows, a metric undefined on them, or a baseline that
    cannot be scored on this data.

    With no baseline at all (the model's first version) the check passes, with
    ``figures["baseline"]`` None and a message saying so. Inconclusive would be wrong there:
    it means "more data would decide", and no data can decide a comparison with nothing, so
    a first version could never be promoted. Use ``metric(...)`` thresholds to gate a first
    version on its own quality.

    Resampling is seeded (``seed``, 0 by default) so that re-validating the same models on
    the same data gives the same report.
    """

    per_slice = True

    def __init__(
        self,
        metric: str,
        *,
        max_drop: float,
        confidence: float,
        resamples: int,
        seed: int | None,
        min_rows: int,
    ) -> None:
        self.metric = get_metric(metric)
        where = f"no_regression({metric!r})"
        self.max_drop = number_argument(where, "max_drop", max_drop)
        if self.max_drop < 0:
            raise InvalidInput(f"{where}: max_drop is a size, so 0 or more, not {max_drop}")
        self.confidence = number_argument(where, "confidence", confidence)
        if not 0 < self.confidence < 1:
            raise InvalidInput(
                f"{where}: confidence is between 0 and 1 (exclusive), not {confidence}"
            )
        self.resamples = integer_argument(where, "resamples", resamples, at_least=100)
        self.seed = None if seed is None else integer_argument(where, "seed", seed, at_least=0)
        self.min_rows = integer_argument(where, "min_rows", min_rows, at_least=1)
        self.name = f"no_regression:{metric}"

    @property
    def metrics(self) -> tuple[str, ...]:
        return (self.metric.name,)

    def spec(self) -> dict[str, Any]:
        return {
            "no_regression": self.metric.name,
            "max_drop": self.max_drop,
            "confidence": self.confidence,
            "resamples": self.resamples,
            "seed": self.seed,
            "min_rows": self.min_rows,
        }

    def run(self, ctx: ValidationContext, rows: Any = None) -> CheckResult:
        settings = {"max_drop": self.max_drop, "confidence": self.confidence}
        if ctx.baseline is None:
            message = "no baseline to compare with (a first version): nothing to regress from"
            return self.result(PASSED, message, baseline=None, **settings)
        needs_proba = self.metric.needs_proba
        try:
            candidate = ctx.evaluation(CANDIDATE, rows, proba=needs_proba)
        except UnusableOutputs as exc:
            return self.result(FAILED, f"cannot score the candidate: {exc}", **settings)
        try:
            baseline = ctx.evaluation(BASELINE, rows, proba=needs_proba)
        except UnusableOutputs as exc:
            return self.result(INCONCLUSIVE, f"cannot score the baseline: {exc}", **settings)
        return self._compare(candidate, baseline, settings)

    def _compare(
        self, candidate: Evaluation, baseline: Evaluation, settings: dict[str, Any]
    ) -> CheckResult:
        name, rows = self.metric.name, len(candidate)
        figures: dict[str, Any] = {**settings, "rows": rows}
        try:
            figures["candidate"] = self.metric.score(candidate)
        except MetricUndefined as exc:
            return self.result(INCONCLUSIVE, str(exc), **figures)
        except ValueError as exc:
            return self.result(FAILED, f"cannot compute {name} of the candidate: {exc}", **figures)
        try:
            figures["baseline"] = self.metric.score(baseline)
        except (MetricUndefined, ValueError) as exc:  # the baseline cannot be compared with
            message = f"cannot compute {name} of the baseline: {exc}"
            return self.result(INCONCLUSIVE, message, **figures)
        sign = 1.0 if self.metric.higher_is_better else -1.0
        figures["difference"] = sign * (figures["candidate"] - figures["baseline"])
        too_small = _too_small(candidate, self.min_rows)
        if too_small:
            return self.result(INCONCLUSIVE, too_small, **figures)
        return self._bootstrap(candidate, baseline, sign, figures)

    def _bootstrap(
        self, candidate: Evaluation, baseline: Evaluation, sign: float, figures: dict[str, Any]
    ) -> CheckResult:
        np: Any = require("numpy", "data")
        name = self.metric.name
        try:
            differences = sign * paired_differences(
                self.metric.resampler(candidate),
                self.metric.resampler(baseline),
                len(candidate),
                self.resamples,
                self.seed,
            )
        except ValueError as exc:
            return self.result(FAILED, f"cannot resample {name}: {exc}", **figures)
        defined = differences[np.isfinite(differences)]
        figures.update(resamples=self.resamples, undefined_resamples=self.resamples - len(defined))
        if len(defined) < (1 - MAX_UNDEFINED) * self.resamples:
            message = (
                f"{name} is undefined in {self.resamples - len(defined)} of {self.resamples} "
                "resamples of these rows (a class is too rare)"
            )
            return self.result(INCONCLUSIVE, message, **figures)
        lo, hi = percentile_interval(defined, self.confidence)
        summary = (
            f"{name} {figures['candidate']:.4g} vs {figures['baseline']:.4g}: difference "
            f"{figures['difference']:+.4g}, {self.confidence:.0%} interval [{lo:+.4g}, {hi:+.4g}]"
            " (positive: candidate better)"
        )
        drop = f"worse by more than {self.max_drop:g}"
        if lo >= -self.max_drop:
            status, verdict = PASSED, f"not {drop}"
        elif hi < -self.max_drop:
            status, verdict = FAILED, drop
        else:  # the interval straddles the limit: more rows would tell
            status, verdict = INCONCLUSIVE, f"cannot tell whether {drop}"
        return self.result(status, f"{summary}; {verdict}", interval=(lo, hi), **figures)


def _too_small(ev: Evaluation, min_rows: int) -> str | None:
    """Why these rows are too few to compare two models on, or None."""
    if len(ev) < min_rows:
        return f"only {len(ev)} rows (at least {min_rows} needed to compare)"
    if ev.classes:
        np: Any = require("numpy", "data")
        values, counts = np.unique(ev.codes[0], return_counts=True)
        rare = [ev.universe[v] for v, c in zip(values, counts, strict=True) if c < MIN_CLASS_ROWS]
        if rare:
            listed = ", ".join(repr(r) for r in rare)
            return f"class {listed} has fewer than {MIN_CLASS_ROWS} rows here"
    return None


# the paired bootstrap


# Within one validation, the no_regression checks of several metrics (and a seeded rerun)
# draw the same resamples: kept as small integers they are drawn once, up to this many cells.
SHARED_CELLS = 150_000_000
_shared: dict[tuple[int, int, int | None, int | None], list[Any]] | None = None


@contextlib.contextmanager
def shared_resamples() -> Iterator[None]:
    """Seeded resamples drawn inside this block are kept and reused until it ends."""
    global _shared
    outer = _shared
    _shared = {} if outer is None else outer
    try:
        yield
    finally:
        _shared = outer


def resample_weights(
    rows: int, resamples: int, seed: int | None, *, chunk: int | None = None
) -> Iterator[Any]:
    """Weights matrices (some resamples x rows) whose rows are bootstrap draw counts."""
    np: Any = require("numpy", "data")
    cache = _shared
    if cache is None or seed is None or rows * resamples > SHARED_CELLS:
        yield from _drawn_weights(rows, resamples, seed, chunk)
        return
    key = (rows, resamples, seed, chunk)
    if key not in cache:
        cache.clear()  # one set at a time bounds the memory
        kept = []
        for counts in _drawn_weights(rows, resamples, seed, chunk):
            small = np.uint8 if counts.max() < 256 else np.uint16
            kept.append(counts.astype(small))
        cache[key] = kept
    for counts in cache[key]:
        yield counts.astype(np.float64)


def _drawn_weights(rows: int, resamples: int, seed: int | None, chunk: int | None) -> Iterator[Any]:
    np: Any = require("numpy", "data")
    rng = np.random.default_rng(seed)
    width = chunk or max(1, min(resamples, CHUNK_CELLS // max(rows, 1)))
    uniform = np.empty(rows)
    for start in range(0, resamples, width):
        counts = np.empty((min(width, resamples - start), rows))
        for row in counts:
            row[:] = np.bincount(_draw(rng, uniform), minlength=rows)
        yield counts


def _draw(rng: Any, uniform: Any) -> Any:
    """``len(uniform)`` row indices drawn uniformly with replacement.

    A uniform float scaled to the number of rows, floored: twice as fast as
    ``rng.integers`` here, and each row's probability is exact to one part in 2**53 / rows.
    """
    np: Any = require("numpy", "data")
    rng.random(out=uniform)
    uniform *= len(uniform)
    drawn = uniform.astype(np.int64)
    np.minimum(drawn, len(uniform) - 1, out=drawn)  # (1 - 2**-53) * rows may round to rows
    return drawn


def paired_differences(
    candidate: Resampler,
    baseline: Resampler,
    rows: int,
    resamples: int,
    seed: int | None,
) -> Any:
    """candidate's metric minus baseline's on each resample (NaN where either is undefined)."""
    np: Any = require("numpy", "data")
    out = [candidate(w) - baseline(w) for w in resample_weights(rows, resamples, seed)]
    return np.concatenate(out) if out else np.empty(0)


def percentile_interval(values: Any, confidence: float) -> tuple[float, float]:
    """The two-sided percentile interval holding ``confidence`` of ``values``."""
    np: Any = require("numpy", "data")
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def benchmark(
    rows: int = 100_000,
    resamples: int = 1_000,
    metrics: tuple[str, ...] = ("accuracy", "f1", "roc_auc", "rmse"),
    seed: int = 0,
) -> dict[str, float]:
    """Seconds a paired bootstrap takes per metric on synthetic predictions of two models.

    Run it with ``python -c "from shipyard.validation.metric_checks import benchmark;
    print(benchmark())"``.
    """
    timings = {}
    for name in metrics:
        metric = get_metric(name)
        candidate, baseline = _synthetic_pair(metric.task, rows, seed)
        start = time.perf_counter()
        paired_differences(
            metric.resampler(candidate), metric.resampler(baseline), rows, resamples, seed
        )
        timings[name] = time.perf_counter() - start
    return timings


def _synthetic_pair(task: str, rows: int, seed: int) -> tuple[Evaluation, Evaluation]:
    np: Any = require("numpy", "data")
    rng = np.random.default_rng(seed)
    if task == "regression":
        y = rng.normal(size=rows)
        return (
            Evaluation(y, y + rng.normal(scale=0.5, size=rows)),
            Evaluation(y, y + rng.normal(scale=0.6, size=rows)),
        )
    y = rng.integers(0, 2, size=rows)

    def model(noise: float) -> Evaluation:
        score = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(scale=noise, size=rows))))
        proba = np.column_stack([1 - score, score])
        return Evaluation(y, (score > 0.5).astype(int), proba, (0, 1), (0, 1))

    return model(1.0), model(1.2)
