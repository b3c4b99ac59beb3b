"""Per-deployment request figures: a cheap thread-safe Recorder, its JSON snapshots, their merge.

A gateway keeps one Recorder per deployment and writes ``snapshot()`` to the store once a
second; the rollout controller ``merge``s a window of snapshots from every gateway into Totals.
Pure Python, so that recording needs no numpy and a snapshot is plain JSON.
"""

from __future__ import annotations

import math
import numbers
import operator
import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import InvalidInput

SNAPSHOT_VERSION = 1
# Latency bucket i in 1..TOP holds (LOW·10^((i-1)/8), LOW·10^(i/8)], each bound 33% above the
# last; bucket 0 holds everything up to 50 µs and bucket TOP+1 everything above ~67 s.
LATENCY_LOW_S = 50e-6
PER_DECADE = 8
_TOP = math.ceil(PER_DECADE * math.log10(60.0 / LATENCY_LOW_S))
BUCKET_BOUNDS: tuple[float, ...] = tuple(
    LATENCY_LOW_S * 10 ** (i / PER_DECADE) for i in range(_TOP + 1)
)
N_BUCKETS = _TOP + 2
_HIGH = BUCKET_BOUNDS[-1]
_LOG_LOW = math.log(LATENCY_LOW_S)
_PER_LN = PER_DECADE / math.log(10)
# Integer outputs with more distinct values than this (over a Recorder's life, or in a merge)
# are numbers, not classes: a regression on counts would otherwise make sparse class tables
# whose divergence is all sampling noise. Other labels beyond it share one count, to keep a
# snapshot small.
MAX_CLASSES = 100
OTHER = "(other)"


def _bucket(latency_s: float) -> int:
    if latency_s > _HIGH:
        return N_BUCKETS - 1
    if not latency_s > LATENCY_LOW_S:  # also zero, negatives and NaN, which log() rejects
        return 0
    return math.ceil((math.log(latency_s) - _LOG_LOW) * _PER_LN)


def _flatten(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if isinstance(item, (list, tuple)):
            out.extend(_flatten(list(item)))
        else:
            out.append(item)
    return out


def _as_list(predictions: Any) -> list[Any]:
    """One request's outputs as a (possibly nested) list of Python scalars."""
    if hasattr(predictions, "tolist"):  # numpy arrays and scalars, pandas Series
        out = predictions.tolist()
    elif hasattr(predictions, "to_numpy"):  # a DataFrame
        out = predictions.to_numpy().tolist()
    else:
        out = predictions
    if isinstance(out, list):
        return out
    return list(out) if isinstance(out, tuple) else [out]


def _values(predictions: Any) -> list[Any]:
    out = _as_list(predictions)
    return _flatten(out) if out and isinstance(out[0], (list, tuple)) else out


def _kind_of(value: Any) -> str:
    if isinstance(value, (bool, str)):
        return "class"
    if isinstance(value, numbers.Integral):
        return "int"  # classes until they have too many distinct values
    return "numeric" if isinstance(value, numbers.Real) else "class"


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number * number) else None


class _Numbers:
    """Count, sum and sum of squares of numbers, and a uniform sample of them (Li's Algorithm L)."""

    __slots__ = ("_next", "_rng", "_w", "invalid", "n", "sample", "size", "sum", "sumsq")

    def __init__(self, size: int, rng: random.Random) -> None:
        self.size, self._rng = size, rng
        self.n = self.invalid = 0
        self.sum = self.sumsq = 0.0
        self.sample: list[float] = []
        self._w = 0.0
        self._next = 0

    def add(self, values: list[Any]) -> None:
        try:
            total, squares = sum(values), sum(map(operator.mul, values, values))
            ok = math.isfinite(total) and math.isfinite(squares)
        except (TypeError, OverflowError):
            ok = False
        if not ok:  # the rare path: drop NaN, infinities and non-numbers, and count them
            kept = [f for f in map(_finite, values) if f is not None]
            self.invalid += len(values) - len(kept)
            values, total = kept, sum(kept)
            squares = sum(map(operator.mul, kept, kept))
        start = self.n
        self.n += len(values)
        self.sum += total
        self.sumsq += squares
        self._sample(values, start)

    def add_counts(self, counts: Mapping[float, int]) -> None:
        """Start from a table of value -> count (this must be empty), sampling it uniformly."""
        total = sum(counts.values())
        self.n = total
        self.sum = math.fsum(v * c for v, c in counts.items())
        self.sumsq = math.fsum(v * v * c for v, c in counts.items())
        if total < self.size:
            self.sample = [v for v, c in counts.items() for _ in range(c)]
        else:
            self.sample = self._rng.sample(list(counts), self.size, counts=list(counts.values()))
            self._arm(total)

    def _sample(self, values: list[Any], start: int) -> None:
        size, sample = self.size, self.sample
        if start < size:
            sample.extend(values[: size - start])
            if len(sample) < size:
                return
            self._arm(size)
        end, rng = start + len(values), self._rng
        # Algorithm L jumps straight to the next value to keep, so a large batch costs
        # O(size · log) random draws rather than one per value.
        while self._next < end:
            sample[rng.randrange(size)] = values[self._next - start]
            self._w *= math.exp(math.log(1.0 - rng.random()) / size)
            self._skip()

    def _arm(self, seen: int) -> None:
        # W is the largest uniform key among the kept values: after `seen` values, the
        # size-th smallest of `seen` uniforms, which is Beta(size, seen - size + 1).
        self._w = self._rng.betavariate(self.size, seen - self.size + 1)
        self._next = seen - 1
        self._skip()

    def _skip(self) -> None:
        self._next += math.floor(math.log(1.0 - self._rng.random()) / math.log1p(-self._w)) + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "numeric",
            "n": self.n,
            "sum": float(self.sum),
            "sumsq": float(self.sumsq),
            "invalid": self.invalid,
            "sample": [float(v) for v in self.sample],
        }


class Recorder:
    """Per-deployment figures since the last snapshot; ``record`` is cheap and thread-safe."""

    def __init__(self, *, sample_size: int = 200, seed: int | None = None) -> None:
        if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 1:
            raise InvalidInput(f"sample_size must be a positive integer, got {sample_size!r}")
        self._size = sample_size
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        # Decided by the first outputs seen and kept across snapshots, so that one process does
        # not flip between kinds; "int" is classes until too many distinct labels are seen.
        self._kind: str | None = None
        self._int_labels: set[str] = set()
        self._reset()

    def _reset(self) -> None:
        self._requests = self._errors = 0
        self._buckets = [0] * N_BUCKETS
        self._counts: dict[str, int] = {}
        self._numbers = _Numbers(self._size, self._rng)
        self._compared = self._agreed = 0
        self._abs_diff = 0.0

    def record(self, latency_s: float, error: bool, predictions: Any = None) -> None:
        """Count one request: its latency, whether it failed, and its outputs (None if none)."""
        bucket = _bucket(latency_s)
        values = None if predictions is None else _values(predictions)
        with self._lock:
            self._requests += 1
            if error:
                self._errors += 1
            self._buckets[bucket] += 1
            if values:
                if self._kind is None:
                    self._kind = _kind_of(values[0])
                if self._kind == "numeric":
                    self._numbers.add(values)
                else:
                    self._count(values)

    def _count(self, values: list[Any]) -> None:
        counts, new = self._counts, False
        for value in values:
            key = str(value)
            if key in counts:
                counts[key] += 1
            elif self._kind == "class" and len(counts) >= MAX_CLASSES:
                counts[OTHER] = counts.get(OTHER, 0) + 1
            else:
                counts[key] = 1
                new = True
        if new and self._kind == "int":
            self._int_labels.update(counts)
            if len(self._int_labels) > MAX_CLASSES:
                parsed = _numeric_labels(counts)
                if parsed is None:  # a string among the integers: they are labels after all
                    self._kind = "class"
                else:
                    self._kind = "numeric"
                    self._numbers.add_counts(parsed)
                    self._counts = {}
                self._int_labels = set()

    def record_rejected(self) -> None:
        """Count a request this deployment's signature refused: an error for the analysis (a
        candidate that refuses what the primary takes is broken for those clients), with no
        latency, since nothing was predicted."""
        with self._lock:
            self._requests += 1
            self._errors += 1

    def record_shadow(self, agreed: int, compared: int, abs_diff_sum: float = 0.0) -> None:
        """Count pairs of (primary, shadow) outputs on the same request, as ``agree`` returns."""
        with self._lock:
            self._agreed += agreed
            self._compared += compared
            self._abs_diff += abs_diff_sum

    def snapshot(self) -> dict[str, Any] | None:
        """Everything since the last snapshot as a JSON-able dict, and reset; None if nothing."""
        with self._lock:
            if not self._requests and not self._compared:
                return None
            requests, errors, buckets = self._requests, self._errors, self._buckets
            counts, numbers = self._counts, self._numbers
            compared, agreed, abs_diff = self._compared, self._agreed, self._abs_diff
            self._reset()
        out: dict[str, Any] = {
            "v": SNAPSHOT_VERSION,
            "requests": requests,
            "errors": errors,
            "latency": {"buckets": {str(i): c for i, c in enumerate(buckets) if c}},
        }
        if counts:
            out["predictions"] = {"kind": "class", "counts": counts}
        elif numbers.n or numbers.invalid:
            out["predictions"] = numbers.to_dict()
        if compared:
            out["shadow"] = {"compared": compared, "agreed": agreed, "abs_diff_sum": abs_diff}
        return out


@dataclass
class Totals:
    """Merged figures of one deployment over a window of snapshots.

    Numeric outputs keep every snapshot's sample, each value weighted by how many outputs it
    stands for, so that the weighted sample is uniform over the whole window.
    """

    requests: int = 0
    errors: int = 0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * N_BUCKETS)
    kind: str | None = None  # "class", "numeric", or None when no outputs were recorded
    class_counts: dict[str, int] = field(default_factory=dict)
    numeric_n: int = 0
    numeric_sum: float = 0.0
    numeric_sumsq: float = 0.0
    invalid: int = 0  # numeric outputs that were NaN, infinite or not numbers
    sample: list[float] = field(default_factory=list)
    sample_weights: list[float] = field(default_factory=list)
    shadow_compared: int = 0
    shadow_agreed: int = 0
    shadow_abs_diff_sum: float = 0.0

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def latency_quantile(self, q: float) -> float | None:
        """The q-quantile of latency in seconds, interpolated log-linearly inside its bucket.

        Below 50 µs it interpolates linearly from 0; in the overflow bucket it returns the top
        bound (~67 s), a lower bound on the truth. None when nothing was recorded.
        """
        if not 0.0 <= q <= 1.0:
            raise InvalidInput(f"quantile must be between 0 and 1, got {q!r}")
        total = sum(self.latency_buckets)
        if not total:
            return None
        target, below = q * total, 0
        for i, count in enumerate(self.latency_buckets):
            if count and below + count >= target:
                frac = (target - below) / count
                if i == 0:
                    return LATENCY_LOW_S * frac
                if i == N_BUCKETS - 1:
                    return _HIGH
                low, high = BUCKET_BOUNDS[i - 1], BUCKET_BOUNDS[i]
                return float(low * (high / low) ** frac)
            below += count
        return _HIGH  # unreachable: the loop ends on the last non-empty bucket

    @property
    def p50_ms(self) -> float | None:
        return self._quantile_ms(0.5)

    @property
    def p99_ms(self) -> float | None:
        return self._quantile_ms(0.99)

    def _quantile_ms(self, q: float) -> float | None:
        value = self.latency_quantile(q)
        return None if value is None else value * 1000.0

    @property
    def agreement(self) -> float | None:
        return self.shadow_agreed / self.shadow_compared if self.shadow_compared else None

    def numeric_sample(self) -> tuple[list[float], list[float]] | None:
        """(values, weights) of numeric outputs, or of classes whose labels are all numbers."""
        if self.kind == "numeric":
            return (self.sample, self.sample_weights) if self.sample else None
        if self.kind == "class":
            parsed = _numeric_labels(self.class_counts)
            if parsed:
                return list(parsed), [float(c) for c in parsed.values()]
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary, for ``endpoints status`` and stored analyses."""
        predictions: dict[str, Any] | None = None
        if self.kind == "class":
            predictions = {"kind": "class", "counts": dict(self.class_counts)}
        elif self.kind == "numeric":
            n = self.numeric_n
            mean = self.numeric_sum / n if n else None
            var = max(self.numeric_sumsq / n - mean * mean, 0.0) if mean is not None else None
            predictions = {
                "kind": "numeric",
                "n": n,
                "mean": mean,
                "std": None if var is None else math.sqrt(var),
                "invalid": self.invalid,
            }
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "predictions": predictions,
            "agreement": self.agreement,
            "shadow": {
                "compared": self.shadow_compared,
                "agreed": self.shadow_agreed,
                "mean_abs_diff": self.shadow_abs_diff_sum / self.shadow_compared,
            }
            if self.shadow_compared
            else None,
        }


def _numeric_labels(counts: Mapping[str, int]) -> dict[float, int] | None:
    out: dict[float, int] = {}
    for label, count in counts.items():
        number = _finite(label)
        if number is None:
            return None
        out[number] = out.get(number, 0) + count
    return out


def merge(snapshots: Iterable[Mapping[str, Any]]) -> Totals:
    """Add up snapshots (from any gateways and periods) of one deployment."""
    totals = Totals()
    class_counts: dict[str, int] = {}
    numeric: list[Mapping[str, Any]] = []
    for snap in snapshots:
        if snap.get("v", SNAPSHOT_VERSION) != SNAPSHOT_VERSION:
            raise InvalidInput(f"unknown stats snapshot version {snap.get('v')!r}")
        totals.requests += int(snap.get("requests", 0))
        totals.errors += int(snap.get("errors", 0))
        for key, count in snap.get("latency", {}).get("buckets", {}).items():
            if not 0 <= int(key) < N_BUCKETS:
                raise InvalidInput(f"latency bucket {key!r} out of range in a stats snapshot")
            totals.latency_buckets[int(key)] += int(count)
        predictions = snap.get("predictions")
        if predictions and predictions.get("kind") == "class":
            for label, count in predictions["counts"].items():
                class_counts[label] = class_counts.get(label, 0) + int(count)
        elif predictions:
            numeric.append(predictions)
        shadow = snap.get("shadow")
        if shadow:
            totals.shadow_compared += int(shadow["compared"])
            totals.shadow_agreed += int(shadow["agreed"])
            totals.shadow_abs_diff_sum += float(shadow.get("abs_diff_sum", 0.0))
    _merge_predictions(totals, class_counts, numeric)
    return totals


def _merge_predictions(
    totals: Totals, class_counts: dict[str, int], numeric: list[Mapping[str, Any]]
) -> None:
    # The same rule as the Recorder's, so that snapshots from gateways that decided
    # differently (one saw more distinct integers than another) still merge.
    parsed = _numeric_labels(class_counts) if class_counts else None
    ints = parsed is not None and all(k.is_integer() for k in parsed)
    if not numeric and not (ints and len(class_counts) > MAX_CLASSES):
        totals.kind = "class" if class_counts else None
        totals.class_counts = class_counts
        return
    if class_counts and parsed is None:
        shown = ", ".join(sorted(class_counts)[:3])
        raise InvalidInput(f"cannot merge class outputs ({shown}, ...) with numeric outputs")
    totals.kind = "numeric"
    for value, count in (parsed or {}).items():
        totals.numeric_n += count
        totals.numeric_sum += value * count
        totals.numeric_sumsq += value * value * count
        totals.sample.append(value)
        totals.sample_weights.append(float(count))
    for part in numeric:
        sample = [float(v) for v in part.get("sample", ())]
        totals.numeric_n += int(part["n"])
        totals.numeric_sum += float(part["sum"])
        totals.numeric_sumsq += float(part["sumsq"])
        totals.invalid += int(part.get("invalid", 0))
        if sample:
            totals.sample.extend(sample)
            totals.sample_weights.extend([int(part["n"]) / len(sample)] * len(sample))


def _shape(items: list[Any]) -> tuple[int, ...]:
    shape: list[int] = []
    node: Any = items
    while isinstance(node, (list, tuple)):
        shape.append(len(node))
        node = node[0] if node else None
    return tuple(shape)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def agree(
    primary: Any, shadow: Any, *, rtol: float = 1e-6, atol: float = 1e-9
) -> tuple[int, int, float]:
    """(agreed, compared, sum of absolute differences) of two outputs of one request, elementwise.

    Numbers agree as numpy.isclose with the primary as reference (and NaN agrees with NaN);
    anything else compares as its ``str``, like class labels are counted. Outputs of different
    shapes disagree everywhere.
    """
    a, b = _as_list(primary), _as_list(shadow)
    if _shape(a) != _shape(b):
        return 0, max(len(_flatten(a)), len(_flatten(b))), 0.0
    a, b = _flatten(a), _flatten(b)
    agreed, diff = 0, 0.0
    for x, y in zip(a, b, strict=False):  # ragged lists of one shape may differ in length
        if _is_number(x) and _is_number(y):
            d = abs(x - y)
            if x == y or d <= atol + rtol * abs(x) or (x != x and y != y):
                agreed += 1
            if math.isfinite(d):
                diff += d
        elif x == y or str(x) == str(y):
            agreed += 1
    return agreed, max(len(a), len(b)), diff


__all__ = ["BUCKET_BOUNDS", "MAX_CLASSES", "OTHER", "Recorder", "Totals", "agree", "merge"]
