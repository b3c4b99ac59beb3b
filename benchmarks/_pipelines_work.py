"""The work of benchmarks/pipelines.py's small pipeline, shared by both sides (stdlib only).

Shipyard's steps (_pipelines_shipyard.py) and Metaflow's (_pipelines_metaflow.py) call these
same functions on the same data, so the two tools differ only in how they run them.
"""

from __future__ import annotations

import random

ROWS = 2_000  # (x, y) pairs: small data, as in a quick experiment


def make_rows(rows: int = ROWS, seed: int = 0) -> list[list[float]]:
    """``rows`` points near the line y = 3x + 2."""
    rng = random.Random(seed)
    out = []
    for _ in range(rows):
        x = rng.uniform(0.0, 10.0)
        out.append([x, 3.0 * x + 2.0 + rng.gauss(0.0, 1.0)])
    return out


def standardize(rows: list[list[float]]) -> list[list[float]]:
    """x scaled to mean 0 and standard deviation 1."""
    xs = [x for x, _ in rows]
    mean = sum(xs) / len(xs)
    std = (sum((x - mean) ** 2 for x in xs) / len(xs)) ** 0.5
    return [[(x - mean) / std, y] for x, y in rows]


def min_max(rows: list[list[float]]) -> list[list[float]]:
    """x scaled to [0, 1]."""
    xs = [x for x, _ in rows]
    low, high = min(xs), max(xs)
    return [[(x - low) / (high - low), y] for x, y in rows]


def fit_line(rows: list[list[float]]) -> dict[str, float]:
    """Least-squares slope and intercept, and the mean squared error of the fit."""
    n = len(rows)
    mx = sum(x for x, _ in rows) / n
    my = sum(y for _, y in rows) / n
    slope = sum((x - mx) * (y - my) for x, y in rows) / sum((x - mx) ** 2 for x, _ in rows)
    intercept = my - slope * mx
    mse = sum((y - slope * x - intercept) ** 2 for x, y in rows) / n
    return {"slope": slope, "intercept": intercept, "mse": mse}


def compare(a: list[list[float]], b: list[list[float]]) -> dict[str, dict[str, float]]:
    """Both scalings' fits, side by side."""
    return {"standardized": fit_line(a), "min_max": fit_line(b)}
