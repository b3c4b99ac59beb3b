"""The Recorder's figures, its snapshots, their merge, and output agreement."""

from __future__ import annotations

import collections
import json
import math
import random
import threading
import timeit
from typing import Any

import pytest

from shipyard.errors import InvalidInput
from shipyard.gateway.stats import (
    BUCKET_BOUNDS,
    MAX_CLASSES,
    N_BUCKETS,
    OTHER,
    Recorder,
    Totals,
    agree,
    merge,
)

np = pytest.importorskip("numpy")
BUCKET_RATIO = 10 ** (1 / 8)


def strict_json(snapshot: dict[str, Any] | None) -> dict[str, Any]:
    """The snapshot as the store gives it back: through JSON, which must not need NaN."""
    assert snapshot is not None
    return json.loads(json.dumps(snapshot, allow_nan=False))


@pytest.mark.parametrize(
    "latencies",
    [
        pytest.param(lambda rng: rng.lognormal(math.log(0.005), 0.5, 5000), id="lognormal-5ms"),
        pytest.param(lambda rng: rng.lognormal(math.log(0.2), 1.0, 5000), id="lognormal-200ms"),
        pytest.param(lambda rng: rng.uniform(1e-4, 2.0, 5000), id="uniform-0.1ms-2s"),
        pytest.param(lambda rng: rng.exponential(0.03, 300), id="exponential-300"),
    ],
)
@pytest.mark.parametrize("q", [0.01, 0.5, 0.9, 0.99])
def test_quantile_is_within_one_bucket_of_numpy(latencies: Any, q: float) -> None:
    values = latencies(np.random.default_rng(7))
    recorder = Recorder()
    for value in values:
        recorder.record(float(value), False)
    estimate = merge([strict_json(recorder.snapshot())]).latency_quantile(q)
    assert estimate is not None
    assert abs(math.log(estimate / np.quantile(values, q))) <= math.log(BUCKET_RATIO) + 1e-9


@pytest.mark.parametrize(
    ("latency", "bucket"),
    [
        (0.0, 0),
        (-1.0, 0),
        (float("nan"), 0),
        (50e-6, 0),
        (60e-6, 1),
        (BUCKET_BOUNDS[-1] * 1.01, N_BUCKETS - 1),
        (float("inf"), N_BUCKETS - 1),
        (1e9, N_BUCKETS - 1),
    ],
)
def test_any_latency_lands_in_a_bucket(latency: float, bucket: int) -> None:
    recorder = Recorder()
    recorder.record(latency, False)
    assert strict_json(recorder.snapshot())["latency"]["buckets"] == {str(bucket): 1}


def test_quantiles_of_nothing_are_none_and_q_is_checked() -> None:
    totals = Totals()
    assert totals.latency_quantile(0.5) is None
    assert totals.p99_ms is None and totals.error_rate is None and totals.agreement is None
    with pytest.raises(InvalidInput, match="quantile"):
        totals.latency_quantile(1.5)


def test_overflow_quantile_is_the_top_bound() -> None:
    recorder = Recorder()
    recorder.record(500.0, False)
    assert merge([strict_json(recorder.snapshot())]).latency_quantile(0.5) == BUCKET_BOUNDS[-1]


def _requests(kind: str, n: int, seed: int = 3) -> list[tuple[float, bool, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        error = bool(rng.random() < 0.1)
        if error:
            outputs = None
        elif kind == "class":
            outputs = rng.choice(["cat", "dog", "eel"], size=int(rng.integers(1, 4)))
        elif kind == "int":
            outputs = rng.integers(0, 3, size=1)
        else:
            outputs = rng.normal(size=(1, 2))
        out.append((float(rng.lognormal(-4, 1)), error, outputs))
    return out


@pytest.mark.parametrize("kind", ["class", "int", "numeric"])
def test_merging_snapshots_equals_recording_everything_at_once(kind: str) -> None:
    requests = _requests(kind, 600)
    whole = Recorder(sample_size=10_000)
    for request in requests:
        whole.record(*request)
    snapshots = []
    for gateway in range(3):  # three gateways, each flushing every 50 requests
        recorder = Recorder(sample_size=10_000)
        for i, request in enumerate(requests[gateway::3]):
            recorder.record(*request)
            if i % 50 == 49 or i == len(requests[gateway::3]) - 1:
                snapshots.append(strict_json(recorder.snapshot()))
        assert recorder.snapshot() is None
    merged, expected = merge(snapshots), merge([strict_json(whole.snapshot())])
    errors = sum(error for _, error, _ in requests)
    assert (merged.requests, merged.errors) == (expected.requests, expected.errors) == (600, errors)
    assert merged.latency_buckets == expected.latency_buckets
    assert merged.kind == expected.kind == ("numeric" if kind == "numeric" else "class")
    assert merged.class_counts == expected.class_counts
    assert merged.numeric_n == expected.numeric_n
    assert merged.numeric_sum == pytest.approx(expected.numeric_sum)
    assert merged.numeric_sumsq == pytest.approx(expected.numeric_sumsq)
    assert sorted(merged.sample) == sorted(expected.sample)
    assert set(merged.sample_weights) <= {1.0}
    summary, expected_summary = merged.to_dict(), expected.to_dict()
    predictions, expected_predictions = (
        summary.pop("predictions"),
        expected_summary.pop("predictions"),
    )
    if kind == "numeric":  # sums added in another order
        expected_predictions = pytest.approx(expected_predictions)
    assert predictions == expected_predictions
    assert summary == expected_summary


def test_snapshot_resets() -> None:
    recorder = Recorder()
    assert recorder.snapshot() is None
    recorder.record(0.01, True)
    recorder.record(0.02, False, np.array([1]))
    first = strict_json(recorder.snapshot())
    assert (first["requests"], first["errors"]) == (2, 1)
    assert first["predictions"] == {"kind": "class", "counts": {"1": 1}}
    assert recorder.snapshot() is None
    recorder.record(0.03, False, np.array([2]))
    second = strict_json(recorder.snapshot())
    assert (second["requests"], second["errors"]) == (1, 0)
    assert second["predictions"]["counts"] == {"2": 1}


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [
        (np.array([1]), {"kind": "class", "counts": {"1": 1}}),
        (np.array(["a", "b", "a"]), {"kind": "class", "counts": {"a": 2, "b": 1}}),
        (np.array([True]), {"kind": "class", "counts": {"True": 1}}),
        (np.int64(4), {"kind": "class", "counts": {"4": 1}}),
        (["x", "y"], {"kind": "class", "counts": {"x": 1, "y": 1}}),
        (0.5, {"kind": "numeric", "n": 1, "sum": 0.5, "sumsq": 0.25}),
        (np.array([[0.25, 0.75]]), {"kind": "numeric", "n": 2, "sum": 1.0, "sumsq": 0.625}),
        ([[1.5], [2.5]], {"kind": "numeric", "n": 2, "sum": 4.0, "sumsq": 8.5}),
        ((2.0,), {"kind": "numeric", "n": 1, "sum": 2.0, "sumsq": 4.0}),
    ],
    ids=["int", "str", "bool", "int-scalar", "list-str", "float", "proba", "nested", "tuple"],
)
def test_outputs_are_classes_or_numbers(outputs: Any, expected: dict[str, Any]) -> None:
    recorder = Recorder()
    recorder.record(0.01, False, outputs)
    predictions = strict_json(recorder.snapshot())["predictions"]
    assert {k: predictions[k] for k in expected} == expected


def test_pandas_outputs() -> None:
    pd = pytest.importorskip("pandas")
    recorder = Recorder()
    recorder.record(0.01, False, pd.Series(["a", "b"]))
    recorder.record(0.01, False, pd.DataFrame({"label": ["a"]}))
    assert strict_json(recorder.snapshot())["predictions"]["counts"] == {"a": 2, "b": 1}


def test_no_outputs_means_no_predictions_key() -> None:
    recorder = Recorder()
    recorder.record(0.01, True, None)
    recorder.record(0.01, False, np.array([]))
    assert "predictions" not in strict_json(recorder.snapshot())


def test_the_kind_is_decided_once() -> None:
    recorder = Recorder()
    recorder.record(0.01, False, np.array([0.5]))
    recorder.snapshot()
    recorder.record(0.01, False, np.array([1]))  # an int later is a number, not a class
    assert strict_json(recorder.snapshot())["predictions"]["kind"] == "numeric"


@pytest.mark.parametrize("batch", [1, 7, 1000])
def test_many_distinct_integers_become_numbers(batch: int) -> None:
    values = list(range(3 * MAX_CLASSES))
    recorder = Recorder(sample_size=50)
    for start in range(0, len(values), batch):
        recorder.record(0.01, False, np.array(values[start : start + batch]))
    predictions = strict_json(recorder.snapshot())["predictions"]
    assert predictions["kind"] == "numeric"
    assert (predictions["n"], predictions["sum"]) == (len(values), sum(values))
    assert len(predictions["sample"]) == 50
    assert set(predictions["sample"]) <= set(values)


def test_integers_then_strings_stay_classes() -> None:
    recorder = Recorder()
    recorder.record(0.01, False, np.array([1]))
    recorder.record(0.01, False, [f"label{i}" for i in range(MAX_CLASSES + 50)])
    predictions = strict_json(recorder.snapshot())["predictions"]
    assert predictions["kind"] == "class" and len(predictions["counts"]) == MAX_CLASSES + 51


def test_many_string_labels_share_one_count() -> None:
    recorder = Recorder()
    recorder.record(0.01, False, [f"label{i}" for i in range(MAX_CLASSES + 50)])
    counts = strict_json(recorder.snapshot())["predictions"]["counts"]
    assert len(counts) == MAX_CLASSES + 1 and counts[OTHER] == 50


def test_nan_and_non_numbers_are_counted_apart() -> None:
    recorder = Recorder()
    recorder.record(0.01, False, np.array([1.0, np.nan, np.inf, 2.0]))
    recorder.record(0.01, False, [3.0, None, 1e300])
    predictions = strict_json(recorder.snapshot())["predictions"]
    assert (predictions["n"], predictions["invalid"], predictions["sum"]) == (3, 4, 6.0)
    assert sorted(predictions["sample"]) == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("batch", [1, 10, 500])
def test_reservoir_is_bounded_and_uniform(batch: int) -> None:
    size, n, trials = 10, 500, 400
    seen: collections.Counter[float] = collections.Counter()
    recorder = Recorder(sample_size=size, seed=11)
    values = np.arange(n, dtype=float)
    for _ in range(trials):
        for start in range(0, n, batch):
            recorder.record(0.01, False, values[start : start + batch])
        sample = strict_json(recorder.snapshot())["predictions"]["sample"]
        assert len(sample) == size and len(set(sample)) == size
        seen.update(sample)
    # Each value is kept with probability size/n; compare tenths of the range, which should
    # each get a tenth of the draws (4000 per tenth, sd ~60).
    tenths = collections.Counter(int(v) * 10 // n for v in seen.elements())
    assert all(abs(tenths[t] - size * trials / 10) < 300 for t in range(10)), tenths


def test_recording_from_threads_counts_everything() -> None:
    recorder, threads, per_thread = Recorder(), 4, 5000
    barrier = threading.Barrier(threads)
    snapshots: list[dict[str, Any]] = []

    def work(i: int) -> None:
        barrier.wait()
        for j in range(per_thread):
            recorder.record(0.001 * (j % 7 + 1), j % 10 == 0, np.array([i]))
            recorder.record_shadow(1, 2, 0.5)
            if i == 0 and j % 1000 == 0:
                snapshots.append(strict_json(recorder.snapshot()))

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    totals = merge([*snapshots, strict_json(recorder.snapshot())])
    assert (totals.requests, totals.errors) == (threads * per_thread, threads * per_thread // 10)
    assert sum(totals.latency_buckets) == threads * per_thread
    assert totals.class_counts == {str(i): per_thread for i in range(threads)}
    assert (totals.shadow_agreed, totals.shadow_compared) == (threads * per_thread, 40_000)
    assert totals.agreement == 0.5


def test_merge_mixes_integer_classes_with_numbers() -> None:
    numeric, classes = Recorder(), Recorder()
    numeric.record(0.01, False, np.arange(10, 11 + MAX_CLASSES))  # too many: numbers
    classes.record(0.01, False, np.array([5, 5, 7]))
    totals = merge([strict_json(numeric.snapshot()), strict_json(classes.snapshot())])
    assert totals.kind == "numeric"
    assert totals.numeric_n == MAX_CLASSES + 4
    assert totals.numeric_sum == sum(range(10, 11 + MAX_CLASSES)) + 17
    weighted = dict(zip(totals.sample, totals.sample_weights, strict=True))
    assert (weighted[5.0], weighted[7.0]) == (2.0, 1.0)


def test_merge_turns_many_distinct_integer_classes_into_numbers() -> None:
    snapshots = []
    for start in range(0, 2 * MAX_CLASSES, 50):
        recorder = Recorder()
        recorder.record(0.01, False, np.arange(start, start + 50))
        snapshots.append(strict_json(recorder.snapshot()))
    totals = merge(snapshots)
    assert totals.kind == "numeric" and totals.numeric_n == 2 * MAX_CLASSES


@pytest.mark.parametrize(
    ("snapshot", "message"),
    [
        ({"v": 2, "requests": 1}, "version"),
        ({"requests": 1, "latency": {"buckets": {str(N_BUCKETS): 1}}}, "bucket"),
        ({"requests": 1, "predictions": {"kind": "class", "counts": {"cat": 1}}}, "cannot merge"),
    ],
)
def test_merge_rejects(snapshot: dict[str, Any], message: str) -> None:
    numeric = {"requests": 1, "predictions": {"kind": "numeric", "n": 1, "sum": 1, "sumsq": 1}}
    with pytest.raises(InvalidInput, match=message):
        merge([numeric, snapshot])


def test_totals_to_dict_is_json() -> None:
    recorder = Recorder()
    for value in (1.0, 2.0, 3.0):
        recorder.record(0.01, False, value)
    recorder.record_shadow(2, 3, 0.3)
    out = merge([strict_json(recorder.snapshot())]).to_dict()
    json.dumps(out, allow_nan=False)
    assert out["predictions"] == pytest.approx(
        {"kind": "numeric", "n": 3, "mean": 2.0, "std": math.sqrt(2 / 3), "invalid": 0}
    )
    assert out["agreement"] == pytest.approx(2 / 3)
    assert out["shadow"] == pytest.approx({"compared": 3, "agreed": 2, "mean_abs_diff": 0.1})


@pytest.mark.parametrize("size", [0, -1, 1.5, True])
def test_sample_size_is_checked(size: Any) -> None:
    with pytest.raises(InvalidInput, match="sample_size"):
        Recorder(sample_size=size)


@pytest.mark.parametrize(
    ("primary", "shadow", "expected"),
    [
        (np.array([1, 2, 3]), np.array([1, 2, 4]), (2, 3, 1.0)),
        (np.array(["a", "b"]), ["a", "c"], (1, 2, 0.0)),
        (np.array([[0.1, 0.9]]), np.array([[0.1 + 1e-12, 0.9]]), (2, 2, 1e-12)),
        (np.array([0.5]), np.array([0.6]), (0, 1, 0.1)),
        (np.array([1.0, 2.0]), np.array([[1.0, 2.0]]), (0, 2, 0.0)),
        (np.array([1.0, 2.0]), np.array([1.0, 2.0, 3.0]), (0, 3, 0.0)),
        ([float("nan")], [float("nan")], (1, 1, 0.0)),
        ([1], ["1"], (1, 1, 0.0)),
        (3.0, np.float64(3.0), (1, 1, 0.0)),
        (True, False, (0, 1, 0.0)),
    ],
    ids=[
        "ints",
        "labels",
        "proba-close",
        "floats-far",
        "shape",
        "length",
        "nan",
        "int-vs-str",
        "scalars",
        "bools",
    ],
)
def test_agree(primary: Any, shadow: Any, expected: tuple[int, int, float]) -> None:
    agreed, compared, diff = agree(primary, shadow)
    assert (agreed, compared) == expected[:2]
    assert diff == pytest.approx(expected[2], abs=1e-15)


def test_agree_tolerances() -> None:
    assert agree([100.0], [100.5], rtol=0.01)[0] == 1
    assert agree([0.0], [1e-6], atol=1e-5)[0] == 1
    assert agree([0.0], [1e-6])[0] == 0


@pytest.mark.parametrize(
    "outputs",
    [np.array([1]), 0.5, np.array([0.5])],
    ids=["numpy-int", "float", "numpy-float"],
)
def test_record_is_cheap(outputs: Any) -> None:
    recorder = Recorder()
    rng = random.Random(0)
    latencies = [rng.lognormvariate(-4, 1) for _ in range(10_000)]
    cost = min(
        timeit.repeat(
            lambda: [recorder.record(lat, False, outputs) for lat in latencies],
            number=1,
            repeat=5,
        )
    )
    # The target is well under 10 µs a call (about 1 µs here); the bound leaves room for
    # slow CI machines.
    assert cost / len(latencies) < 20e-6
