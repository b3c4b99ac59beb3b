"""Judging canaries and shadows: limits, the early fail, shift measures and the outcome."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from shipyard.errors import InvalidInput
from shipyard.gateway.analysis import (
    Analysis,
    Figure,
    Limits,
    analyze_canary,
    analyze_shadow,
    class_shift,
    prediction_shift,
    psi,
)
from shipyard.gateway.stats import Recorder, Totals, merge

np = pytest.importorskip("numpy")
pytest.importorskip("scipy")  # the early fail's binomial test


def totals(
    n: int,
    *,
    errors: int = 0,
    latency_s: float = 0.02,
    outputs: Callable[[int], Any] | None = None,
    agreed: float | None = None,
) -> Totals:
    """Figures of n requests, the first `errors` of them failed, through JSON snapshots of 100."""
    recorder, snapshots = Recorder(), []
    for i in range(n):
        failed = i < errors
        recorder.record(latency_s, failed, None if failed or outputs is None else outputs(i))
        if agreed is not None and not failed:
            recorder.record_shadow(int(i % 100 < agreed * 100), 1)
        if i % 100 == 99 or i == n - 1:
            snapshots.append(json.loads(json.dumps(recorder.snapshot())))
    return merge(snapshots)


def scores(mean: float, seed: int) -> Callable[[int], Any]:
    rng = np.random.default_rng(seed)
    return lambda i: rng.normal(mean, 1.0, size=1)


def labels(shares: dict[str, float], seed: int) -> Callable[[int], Any]:
    rng = np.random.default_rng(seed)
    names, weights = list(shares), list(shares.values())
    return lambda i: np.array([rng.choice(names, p=weights)])


def test_a_good_canary_passes() -> None:
    baseline = totals(5000, errors=5, outputs=scores(0.0, 1))
    candidate = totals(1000, errors=1, outputs=scores(0.0, 2))
    analysis = analyze_canary(candidate, baseline, Limits(max_p99_ms=100.0))
    assert analysis.outcome == "pass", analysis.reason
    assert analysis.reason == "all limits met over 1000 requests"
    error_rate = analysis.figure("error_rate")
    assert (error_rate.candidate, error_rate.baseline) == (0.001, 0.001)
    # the budget is the limit on top of the primary's own error rate in the same window
    assert error_rate.limit == pytest.approx(0.011) and error_rate.passed is True
    assert analysis.figure("p99_ms").passed is True
    assert analysis.figure("p50_ms").passed is None  # no limit
    assert analysis.figure("prediction_shift").candidate < 0.05


def test_a_canary_failing_a_fifth_of_requests_fails_after_30() -> None:
    candidate = totals(30, errors=6)
    analysis = analyze_canary(candidate, totals(5000), Limits())
    assert analysis.outcome == "fail"
    assert analysis.reason.startswith(
        "error rate 20.0% > limit 1.0% over 30 requests (failed early"
    )
    assert analysis.figure("error_rate").passed is False
    assert all(f.passed is None for f in analysis.figures if f.name != "error_rate")


@pytest.mark.parametrize(
    ("n", "errors", "outcome"),
    [
        (10, 0, "inconclusive"),
        (10, 5, "inconclusive"),  # too few to test, however bad
        (19, 4, "inconclusive"),
        (20, 4, "fail"),
        (50, 1, "inconclusive"),  # 2% is over 1%, but not clearly so yet
        (99, 0, "inconclusive"),
        (100, 0, "pass"),
        (100, 2, "fail"),
    ],
)
def test_early_fail_and_inconclusive(n: int, errors: int, outcome: str) -> None:
    analysis = analyze_canary(totals(n, errors=errors), totals(5000), Limits())
    assert analysis.outcome == outcome, analysis.reason


def test_inconclusive_says_how_many_more_requests() -> None:
    analysis = analyze_canary(totals(10), totals(5000), Limits())
    assert analysis.reason == "only 10 of the 100 requests needed to judge (0 errors so far)"
    assert all(f.passed is None for f in analysis.figures)


@pytest.mark.parametrize("min_requests", [1, 20, 100, 1000])
def test_a_canary_without_errors_never_fails_early(min_requests: int) -> None:
    limits = Limits(max_error_rate=0.0, min_requests=min_requests)
    for n in range(1, min_requests):
        assert analyze_canary(totals(n), Totals(), limits).outcome == "inconclusive"


def test_one_error_fails_early_when_none_are_allowed() -> None:
    analysis = analyze_canary(totals(20, errors=1), Totals(), Limits(max_error_rate=0))
    assert analysis.outcome == "fail"
    assert analysis.reason == (
        "error rate 5.0% > limit 0.0% over 20 requests (failed early: binomial test p=0)"
    )


def test_no_error_limit_means_no_early_fail() -> None:
    analysis = analyze_canary(totals(50, errors=50), totals(5000), Limits(max_error_rate=None))
    assert analysis.outcome == "inconclusive"


def test_shifted_numeric_predictions_fail() -> None:
    baseline = totals(2000, outputs=scores(0.0, 1))
    candidate = totals(500, outputs=scores(1.0, 2))
    analysis = analyze_canary(candidate, baseline, Limits())
    assert analysis.outcome == "fail"
    assert analysis.reason.startswith("prediction shift ")
    assert analysis.reason.endswith(" > limit 0.200 over 500 requests")
    shift = analysis.figure("prediction_shift")
    assert shift.passed is False and shift.candidate > 0.5 and shift.baseline is None


def test_shifted_class_shares_fail() -> None:
    baseline = totals(2000, outputs=labels({"cat": 0.5, "dog": 0.5}, 1))
    candidate = totals(500, outputs=labels({"cat": 0.9, "dog": 0.1}, 2))
    shift = analyze_canary(candidate, baseline, Limits()).figure("prediction_shift")
    assert shift.passed is False and shift.candidate == pytest.approx(0.4, abs=0.05)


def test_shift_is_not_judged_on_a_small_baseline() -> None:
    baseline = totals(50, outputs=scores(0.0, 1))
    candidate = totals(500, outputs=scores(3.0, 2))
    analysis = analyze_canary(candidate, baseline, Limits())
    assert analysis.outcome == "pass"
    assert analysis.figure("prediction_shift").passed is None
    assert analysis.reason.endswith(
        "; not judged: prediction shift (the primary answered 50 requests in this window, "
        "100 needed to compare)"
    )


def test_latency_over_the_limit_fails() -> None:
    analysis = analyze_canary(
        totals(200, latency_s=0.3), totals(2000, latency_s=0.01), Limits(max_p99_ms=250)
    )
    assert analysis.outcome == "fail"
    p99 = analysis.figure("p99_ms")
    assert p99.passed is False and p99.limit == 250.0
    assert p99.candidate == pytest.approx(300, rel=0.34)
    assert p99.baseline == pytest.approx(10, rel=0.34)
    assert analysis.reason.startswith("p99 latency ")
    assert analysis.reason.endswith(" > limit 250 ms over 200 requests")


def test_every_failed_figure_is_named() -> None:
    analysis = analyze_canary(
        totals(200, errors=100, latency_s=0.3), totals(2000), Limits(max_p50_ms=1, max_p99_ms=1)
    )
    assert analysis.reason.startswith("error rate 50.0% > limit 1.0% over 200 requests")
    assert analysis.reason.endswith("; also over the limit: p99_ms, p50_ms")


@pytest.mark.parametrize(
    ("agreed", "outcome"),
    [(1.0, "pass"), (0.99, "pass"), (0.9, "fail")],
)
def test_shadow_agreement(agreed: float, outcome: str) -> None:
    primary = totals(2000, outputs=scores(0.0, 1))
    shadow = totals(500, outputs=scores(0.0, 2), agreed=agreed)
    analysis = analyze_shadow(shadow, primary, Limits(min_agreement=0.98))
    assert analysis.outcome == outcome, analysis.reason
    assert analysis.figure("agreement").candidate == pytest.approx(agreed)
    if outcome == "fail":
        assert analysis.reason == (
            "agreement with the primary 90.00% < minimum 98.00% over 500 requests"
        )


def test_shadow_errors_fail_early() -> None:
    analysis = analyze_shadow(totals(40, errors=10), totals(2000), Limits())
    assert analysis.outcome == "fail" and analysis.figure("agreement").passed is None


def test_analysis_round_trips_through_json() -> None:
    analysis = analyze_canary(totals(200, latency_s=0.3), totals(2000), Limits(max_p99_ms=250))
    data = json.loads(json.dumps(analysis.to_dict(), allow_nan=False))
    assert Analysis.from_dict(data) == analysis


@pytest.mark.parametrize(
    "data",
    [
        {"outcome": "maybe", "figures": [], "reason": ""},
        {"outcome": "pass", "figures": [{"name": "x"}], "reason": ""},
        ["pass"],
    ],
)
def test_analysis_from_dict_rejects(data: Any) -> None:
    with pytest.raises(InvalidInput):
        Analysis.from_dict(data)


def test_figure_round_trip() -> None:
    figure = Figure("p99_ms", 12.5, 10.0, 100.0, True)
    assert Figure.from_dict(figure.to_dict()) == figure


def test_limits_round_trip() -> None:
    limits = Limits(max_error_rate=0.05, max_p99_ms=250, min_agreement=0.99, min_requests=500)
    assert Limits.from_dict(json.loads(json.dumps(limits.to_dict()))) == limits
    assert Limits.from_dict({}) == Limits()
    assert limits.max_p99_ms == 250.0 and isinstance(limits.max_p99_ms, float)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"max_latency": 1, "p99": 2}, "unknown analysis limit(s): max_latency, p99"),
        ({"max_error_rate": -0.1}, "max_error_rate must be a non-negative number"),
        ({"max_error_rate": 1.5}, "max_error_rate must be between 0 and 1"),
        ({"min_agreement": 2}, "min_agreement must be between 0 and 1"),
        ({"max_p99_ms": "250ms"}, "max_p99_ms must be a number or null"),
        ({"max_p50_ms": True}, "max_p50_ms must be a number or null"),
        ({"max_prediction_shift": float("nan")}, "max_prediction_shift must be a non-negative"),
        ({"min_requests": 0}, "min_requests must be a positive integer"),
        ({"min_requests": 10.0}, "min_requests must be a positive integer"),
        ({"min_requests": None}, "min_requests must be a positive integer"),
    ],
)
def test_limits_are_checked(data: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Limits.from_dict(data)
    assert caught.value.message.startswith(message)


def test_limits_from_a_non_mapping() -> None:
    with pytest.raises(InvalidInput, match="must be a mapping"):
        Limits.from_dict([("max_p99_ms", 1)])  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [200, 2000, 20_000])
def test_psi_of_one_distribution_is_near_zero(size: int) -> None:
    rng = np.random.default_rng(size)
    value = psi(rng.normal(size=size), rng.normal(size=size))
    assert 0 <= value < 0.1 * 2000 / size  # the noise floor is about (bins - 1) * 2 / size


@pytest.mark.parametrize(
    ("shift", "at_least"),
    [(0.5, 0.2), (1.0, 0.8), (3.0, 5.0)],
)
def test_psi_of_a_shifted_distribution_is_large(shift: float, at_least: float) -> None:
    rng = np.random.default_rng(0)
    assert psi(rng.normal(size=5000), rng.normal(shift, size=5000)) > at_least


def test_psi_with_weights_equals_psi_of_repeated_values() -> None:
    rng = np.random.default_rng(1)
    expected, actual = rng.normal(size=300), rng.normal(0.3, size=200)
    counts_e, counts_a = rng.integers(1, 5, 300), rng.integers(1, 5, 200)
    weighted = psi(expected, actual, expected_weights=counts_e, actual_weights=counts_a)
    repeated = psi(np.repeat(expected, counts_e), np.repeat(actual, counts_a))
    assert weighted == pytest.approx(repeated)


def test_psi_of_discrete_values() -> None:
    assert psi([0, 1] * 50, [0, 1] * 50) == 0.0
    assert psi([0, 1] * 50, [1] * 100) > 1.0


@pytest.mark.parametrize(
    ("expected", "actual", "bins", "message"),
    [([], [1.0], 10, "non-empty"), ([1.0], [1.0], 1, "at least 2 bins")],
)
def test_psi_rejects(expected: list[float], actual: list[float], bins: int, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        psi(expected, actual, bins)


@pytest.mark.parametrize(
    ("expected", "actual", "shift"),
    [
        ({"a": 10, "b": 30}, {"a": 100, "b": 300}, 0.0),
        ({"a": 10}, {"b": 3}, 1.0),
        ({"a": 1, "b": 1}, {"a": 3, "b": 1}, 0.25),
        ({"a": 1, "b": 1, "c": 2}, {"a": 1, "c": 1}, 0.25),
    ],
)
def test_class_shift(expected: dict[str, int], actual: dict[str, int], shift: float) -> None:
    assert class_shift(expected, actual) == pytest.approx(shift)


def test_class_shift_needs_counts() -> None:
    with pytest.raises(InvalidInput, match="at least one count"):
        class_shift({}, {"a": 1})


def test_prediction_shift_across_kinds() -> None:
    strings = totals(200, outputs=labels({"cat": 1.0}, 1))
    numbers = totals(200, outputs=scores(0.0, 1))
    ints = totals(200, outputs=lambda i: np.array([i % 3]))
    assert prediction_shift(strings, numbers) == 1.0  # labels against numbers: all moved
    assert prediction_shift(Totals(), numbers) is None
    assert prediction_shift(ints, ints) == 0.0
    assert prediction_shift(numbers, ints) is not None  # integer classes compare as numbers


@pytest.mark.parametrize("seed", range(5))
def test_sampling_noise_over_the_shift_limit_does_not_fail_a_good_canary(seed: int) -> None:
    # 50 equally likely classes and 100 canary outputs: the share distance is about 0.28 by
    # chance alone, over the 0.2 limit; only a significant difference may fail the canary
    shares = {f"c{k}": 1 / 50 for k in range(50)}
    baseline = totals(5000, outputs=labels(shares, 100 + seed))
    candidate = totals(100, outputs=labels(shares, seed))
    analysis = analyze_canary(candidate, baseline, Limits())
    shift = analysis.figure("prediction_shift")
    assert shift.candidate is not None and shift.candidate > 0.2
    assert shift.passed is None and analysis.outcome == "pass"


def test_errors_every_version_makes_do_not_fail_the_canary() -> None:
    # clients send rows no model takes 3% of the time: the primary fails them too
    baseline = totals(2000, errors=60)
    candidate = totals(500, errors=15)
    analysis = analyze_canary(candidate, baseline, Limits(max_error_rate=0.01))
    assert analysis.outcome == "pass", analysis.reason
    worse = totals(500, errors=50)  # 10%: fails where the primary answers
    assert analyze_canary(worse, baseline, Limits(max_error_rate=0.01)).outcome == "fail"


def test_invalid_numeric_outputs_fail_like_errors() -> None:
    baseline = totals(500, outputs=scores(0.0, 1))
    broken = totals(500, outputs=lambda i: np.array([float("inf")]))
    analysis = analyze_canary(broken, baseline, Limits())
    figure = analysis.figure("invalid_outputs")
    assert analysis.outcome == "fail" and figure.candidate == 1.0 and figure.passed is False
    assert "invalid outputs" in analysis.reason


def test_labels_instead_of_numbers_fail_on_shift() -> None:
    baseline = totals(500, outputs=scores(0.0, 1))
    labels_now = totals(500, outputs=labels({"a": 0.5, "b": 0.5}, 2))
    analysis = analyze_canary(labels_now, baseline, Limits())
    assert analysis.outcome == "fail" and analysis.figure("prediction_shift").candidate == 1.0
