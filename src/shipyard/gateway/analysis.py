"""Judging a rollout step: a candidate's merged figures against limits and against its baseline.

Three outcomes, like an Argo Rollouts analysis run: ``pass``, ``fail``, and ``inconclusive``
while the candidate has too few requests to judge, unless its error rate is already so high
that a one-sided binomial test rejects the limit (p < 0.01), which fails it early.

Prediction shift is the population stability index (PSI) for numeric outputs and the total
variation distance between class shares for classes. PSI is the usual drift measure for scores
(0.1 "moderate", 0.25 "major"); for classes it is undefined when a class is missing on one side,
whereas the total variation distance needs no epsilon, lies in [0, 1], and reads plainly: the
share of predictions that would have to change class to match. Both have a sampling-noise floor
on n candidate outputs: about (bins - 1) / n for PSI and 0.4·sqrt(classes / n) for class shares,
so a limit of 0.2 wants a few hundred outputs (more for many classes) before it means much. A
shift over the limit therefore fails a step only when a chi-square test (classes) or a
two-sample Kolmogorov-Smirnov test (numbers) also rejects "same distribution" at p < 0.01;
otherwise the figure is left unjudged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from shipyard.errors import InvalidInput, require
from shipyard.gateway.stats import Totals

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
OUTCOMES = (PASS, FAIL, INCONCLUSIVE)
EARLY_FAIL_P = 0.01
EARLY_FAIL_MIN_REQUESTS = 20
SHIFT_TEST_P = 0.01
_FRACTIONS = ("max_error_rate", "min_agreement")  # limits that are shares, in [0, 1]
_PSI_EPSILON = 1e-4  # stands in for an empty bin's share, so PSI stays finite


@dataclass(frozen=True)
class Limits:
    """What a rollout step requires of its candidate; None switches a figure's limit off."""

    max_error_rate: float | None = 0.01
    max_p99_ms: float | None = None
    max_p50_ms: float | None = None
    max_prediction_shift: float | None = 0.2
    min_agreement: float | None = None  # shadow only
    min_requests: int = 100

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "min_requests":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise InvalidInput(f"min_requests must be a positive integer, got {value!r}")
                continue
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidInput(f"{f.name} must be a number or null, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise InvalidInput(f"{f.name} must be a non-negative number, got {value!r}")
            if f.name in _FRACTIONS and value > 1:
                raise InvalidInput(f"{f.name} must be between 0 and 1, got {value!r}")
            object.__setattr__(self, f.name, float(value))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Limits:
        """Limits from ``to_dict``'s form; missing keys take their defaults."""
        if not isinstance(data, Mapping):
            raise InvalidInput(f"analysis limits must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise InvalidInput(
                f"unknown analysis limit(s): {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known))})"
            )
        return cls(**data)


@dataclass(frozen=True)
class Figure:
    """One measured figure of the candidate, its baseline's, the limit, and whether it passed.

    ``passed`` is None when the figure was not judged: no limit, too little data, or the
    candidate has too few requests. ``baseline`` is None for figures that already compare the
    two (prediction shift, agreement).
    """

    name: str
    candidate: float | None
    baseline: float | None
    limit: float | None
    passed: bool | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Figure:
        try:
            return cls(**{f.name: data[f.name] for f in fields(cls)})
        except (KeyError, TypeError) as exc:
            raise InvalidInput(f"malformed analysis figure {data!r}") from exc


@dataclass(frozen=True)
class Analysis:
    """The judgement of one rollout step: outcome, the figures behind it, and why in a sentence."""

    outcome: str
    figures: tuple[Figure, ...]
    reason: str

    def figure(self, name: str) -> Figure:
        """The figure called ``name``; KeyError if there is none."""
        for fig in self.figures:
            if fig.name == name:
                return fig
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "figures": [f.to_dict() for f in self.figures],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Analysis:
        outcome = data.get("outcome") if isinstance(data, Mapping) else None
        if outcome not in OUTCOMES:
            raise InvalidInput(f"analysis outcome must be one of {', '.join(OUTCOMES)}")
        figures = tuple(Figure.from_dict(f) for f in data.get("figures", ()))
        return cls(outcome=str(outcome), figures=figures, reason=str(data.get("reason", "")))


def analyze_canary(candidate: Totals, baseline: Totals, limits: Limits) -> Analysis:
    """Judge a canary on errors, latency and prediction shift against its baseline."""
    return _analyze(candidate, baseline, limits, shadow=False)


def analyze_shadow(shadow: Totals, primary: Totals, limits: Limits) -> Analysis:
    """Judge a shadow on errors, latency, prediction shift and agreement with the primary."""
    return _analyze(shadow, primary, limits, shadow=True)


def error_budget(baseline: Totals, limits: Limits) -> float | None:
    """The error rate a candidate may reach: the limit on top of the primary's own rate over
    the same window (when the primary had enough requests to tell). Requests that fail on any
    version (a client sending rows no model takes) then do not fail every canary, while a
    candidate that fails where the primary answers does."""
    limit = limits.max_error_rate
    if limit is None or baseline.requests < limits.min_requests or not baseline.error_rate:
        return limit
    return min(1.0, limit + baseline.error_rate)


def _analyze(candidate: Totals, baseline: Totals, limits: Limits, *, shadow: bool) -> Analysis:
    n, enough = candidate.requests, candidate.requests >= limits.min_requests
    budget = error_budget(baseline, limits)
    figures = [
        _figure("error_rate", candidate.error_rate, baseline.error_rate, budget),
        _invalid_figure(candidate, baseline, limits),
        _figure("p99_ms", candidate.p99_ms, baseline.p99_ms, limits.max_p99_ms),
        _figure("p50_ms", candidate.p50_ms, baseline.p50_ms, limits.max_p50_ms),
        _shift_figure(baseline, candidate, limits),
    ]
    if shadow:
        figures.append(
            _figure("agreement", candidate.agreement, None, limits.min_agreement, at_least=True)
        )
    if not enough:
        unjudged = [replace(f, passed=None) for f in figures]
        p_value = _early_fail_p(candidate, limits, budget)
        if p_value is not None and p_value < EARLY_FAIL_P:
            unjudged[0] = replace(figures[0], passed=False)
            reason = f"{_describe(figures[0], n)} (failed early: binomial test p={p_value:.1g})"
            return Analysis(FAIL, tuple(unjudged), reason)
        reason = (
            f"only {n} of the {limits.min_requests} requests needed to judge "
            f"({candidate.errors} errors so far)"
        )
        return Analysis(INCONCLUSIVE, tuple(unjudged), reason)
    failed = [f for f in figures if f.passed is False]
    if failed:
        reason = _describe(failed[0], n)
        if len(failed) > 1:
            reason += "; also over the limit: " + ", ".join(f.name for f in failed[1:])
        return Analysis(FAIL, tuple(figures), reason)
    reason = f"all limits met over {n} requests"
    notes = [
        _why_unjudged(f, baseline, limits)
        for f in figures
        if f.limit is not None and f.passed is None
    ]
    if notes:
        reason += "; not judged: " + "; ".join(notes)
    return Analysis(PASS, tuple(figures), reason)


def _figure(
    name: str,
    candidate: float | None,
    baseline: float | None,
    limit: float | None,
    *,
    at_least: bool = False,
) -> Figure:
    if candidate is None or limit is None:
        passed = None
    else:
        passed = candidate >= limit if at_least else candidate <= limit
    return Figure(name, candidate, baseline, limit, passed)


def _shift_figure(baseline: Totals, candidate: Totals, limits: Limits) -> Figure:
    """Prediction shift, judged only when the baseline has enough requests too. A shift over
    the limit fails only when a test of "both come from one distribution" rejects it
    (p < 0.01): with few outputs or many classes, sampling noise alone often exceeds 0.2, and
    a good canary must not be rolled back for it."""
    limit = limits.max_prediction_shift
    shift = (
        prediction_shift(baseline, candidate) if baseline.requests >= limits.min_requests else None
    )
    figure = _figure("prediction_shift", shift, None, limit)
    if (
        figure.passed is False
        and candidate.kind == baseline.kind
        and _same_distribution_p(baseline, candidate) >= SHIFT_TEST_P
    ):
        return replace(figure, passed=None)
    return figure


def _same_distribution_p(baseline: Totals, candidate: Totals) -> float:
    """p-value of "the candidate's outputs come from the baseline's distribution": a
    chi-square test on class counts, a two-sample Kolmogorov-Smirnov test on numbers."""
    stats: Any = require("scipy.stats", "gateway")
    if candidate.kind == baseline.kind == "class":
        labels = sorted(set(baseline.class_counts) | set(candidate.class_counts))
        table = [
            [counts.get(k, 0) for k in labels]
            for counts in (baseline.class_counts, candidate.class_counts)
        ]
        if len(labels) < 2:
            return 1.0
        return float(stats.chi2_contingency(table).pvalue)
    expected, actual = baseline.numeric_sample(), candidate.numeric_sample()
    if expected is None or actual is None:
        return 1.0
    return float(stats.ks_2samp(expected[0], actual[0]).pvalue)


def _why_unjudged(fig: Figure, baseline: Totals, limits: Limits) -> str:
    if fig.name == "prediction_shift":
        if baseline.requests < limits.min_requests:
            return (
                f"prediction shift (the primary answered {baseline.requests} requests in this "
                f"window, {limits.min_requests} needed to compare)"
            )
        if fig.candidate is not None:
            return (
                f"prediction shift {fig.candidate:.3f} is over {fig.limit:g} but within "
                "sampling noise (a test of same distribution did not reject it, p >= 0.01)"
            )
    return f"{fig.name} (no data)"


def _describe(fig: Figure, n: int) -> str:
    """A failed figure in words, e.g. "error rate 20.1% > limit 1.0% over 412 requests"."""
    assert fig.candidate is not None and fig.limit is not None
    value, limit = fig.candidate, fig.limit
    if fig.name == "error_rate":
        return f"error rate {value:.1%} > limit {limit:.1%} over {n} requests"
    if fig.name in ("p99_ms", "p50_ms"):
        return f"{fig.name[:3]} latency {_ms(value)} > limit {_ms(limit)} over {n} requests"
    if fig.name == "invalid_outputs":
        return (
            f"invalid outputs (NaN, inf, not numbers) {value:.1%} > limit {limit:.1%} "
            f"over {n} requests"
        )
    if fig.name == "agreement":
        return f"agreement with the primary {value:.2%} < minimum {limit:.2%} over {n} requests"
    return f"prediction shift {value:.3f} > limit {limit:.3f} over {n} requests"


def _ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.3g} ms"


def _early_fail_p(candidate: Totals, limits: Limits, budget: float | None) -> float | None:
    """The p-value of "error rate <= budget" given the errors seen, if enough to test."""
    if budget is None or candidate.requests < min(limits.min_requests, EARLY_FAIL_MIN_REQUESTS):
        return None
    stats: Any = require("scipy.stats", "gateway")
    test = stats.binomtest(candidate.errors, candidate.requests, budget, alternative="greater")
    return float(test.pvalue)


def _invalid_figure(candidate: Totals, baseline: Totals, limits: Limits) -> Figure:
    """Share of numeric outputs that were NaN, infinite or not numbers, judged like errors:
    a model answering inf for every request is as broken as one that raises."""
    rate, base = _invalid_rate(candidate), _invalid_rate(baseline)
    limit = limits.max_error_rate
    if limit is not None and base and baseline.requests >= limits.min_requests:
        limit = min(1.0, limit + base)
    return _figure("invalid_outputs", rate, base, limit)


def _invalid_rate(totals: Totals) -> float | None:
    outputs = totals.numeric_n + totals.invalid
    return totals.invalid / outputs if outputs else None


def prediction_shift(baseline: Totals, candidate: Totals) -> float | None:
    """Class-share divergence when both output classes, else PSI; the most a shift can be
    (1.0, or inf for PSI) when one answers labels and the other numbers; None when either
    has no outputs."""
    if candidate.kind is None or baseline.kind is None:
        return None
    if candidate.kind == baseline.kind == "class":
        return class_shift(baseline.class_counts, candidate.class_counts)
    expected, actual = baseline.numeric_sample(), candidate.numeric_sample()
    if expected is None or actual is None:
        if expected is None and actual is None:
            return None
        return 1.0 if candidate.kind != baseline.kind else None  # labels against numbers
    return psi(expected[0], actual[0], expected_weights=expected[1], actual_weights=actual[1])


def psi(
    expected: Sequence[float],
    actual: Sequence[float],
    bins: int = 10,
    *,
    expected_weights: Sequence[float] | None = None,
    actual_weights: Sequence[float] | None = None,
) -> float:
    """Population stability index of ``actual`` against ``expected``, on equal-mass bins.

    Bin edges are the expected sample's (weighted) quantiles, so tied values may merge bins;
    the outer bins are open-ended; an empty bin counts as a share of 1e-4.
    """
    np: Any = require("numpy", "data")
    e, a = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    if e.size == 0 or a.size == 0:
        raise InvalidInput("psi needs a non-empty expected and actual sample")
    if bins < 2:
        raise InvalidInput(f"psi needs at least 2 bins, got {bins}")
    we = np.ones_like(e) if expected_weights is None else np.asarray(expected_weights, float)
    wa = np.ones_like(a) if actual_weights is None else np.asarray(actual_weights, float)
    order = np.argsort(e, kind="stable")
    cumulative = np.cumsum(we[order])
    targets = cumulative[-1] * np.arange(1, bins) / bins
    positions = np.minimum(np.searchsorted(cumulative, targets), e.size - 1)
    edges = np.unique(e[order][positions])
    # Right-closed bins: a value equal to an edge (often, with ties) sits with the values below.
    shares = []
    for sample, weights in ((e, we), (a, wa)):
        counts = np.bincount(
            np.searchsorted(edges, sample, side="left"), weights=weights, minlength=edges.size + 1
        )
        shares.append(np.maximum(counts / weights.sum(), _PSI_EPSILON))
    exp_share, act_share = shares
    return float(np.sum((act_share - exp_share) * np.log(act_share / exp_share)))


def class_shift(expected_counts: Mapping[str, int], actual_counts: Mapping[str, int]) -> float:
    """Total variation distance between two tables of class counts: half the L1 of their shares."""
    expected_total, actual_total = sum(expected_counts.values()), sum(actual_counts.values())
    if expected_total <= 0 or actual_total <= 0:
        raise InvalidInput("class_shift needs at least one count on each side")
    labels = set(expected_counts) | set(actual_counts)
    return 0.5 * math.fsum(
        abs(expected_counts.get(k, 0) / expected_total - actual_counts.get(k, 0) / actual_total)
        for k in labels
    )


__all__ = [
    "Analysis",
    "Figure",
    "Limits",
    "analyze_canary",
    "analyze_shadow",
    "class_shift",
    "prediction_shift",
    "psi",
]
