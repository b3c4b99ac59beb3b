"""Shipyard's side of benchmarks/pipelines.py; runs in Shipyard's venv, one process per figure.

Usage: python _pipelines_shipyard.py MEASUREMENT '{"n": ...}'  ->  one JSON object on stdout.
The caller sets SHIPYARD_URI / SHIPYARD_ARTIFACTS (a fresh temporary store).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from _pipelines_work import compare, fit_line, make_rows, min_max, standardize

import shipyard as sy

# -- trivial steps: what a pipeline costs beyond its work ------------------------------------
# Each takes a literal ``k`` (its place in the DAG), so that no two nodes share a cache key
# and a first run has no hits.


@sy.step
def leaf(k: int) -> int:
    return k


@sy.step
def inc(x: int, k: int) -> int:
    return (x + k) % 1000


@sy.step
def add(a: int, b: int, k: int) -> int:
    return (a + b + k) % 1000


@sy.pipeline
def chain(n: int = 200) -> Any:
    """n steps, each taking the previous one's output."""
    value = leaf(0)
    for k in range(1, n):
        value = inc(value, k)
    return value


@sy.pipeline
def fan(n: int = 200) -> Any:
    """n independent steps."""
    return [leaf(k) for k in range(n)]


@sy.pipeline
def layered(n: int = 1000, width: int = 10) -> Any:
    """Layers of ``width`` steps; each step takes two outputs of the layer before."""
    layer = [leaf(k) for k in range(width)]
    made = width
    while made < n:
        size = min(width, n - made)
        layer = [add(layer[i], layer[(i + 1) % len(layer)], made + i) for i in range(size)]
        made += size
    return layer


@sy.step
def single(k: int) -> int:
    return k


@sy.pipeline
def one_step(k: int = 0) -> Any:
    return single(k)


@sy.pipeline
def another_step(k: int = 0) -> Any:
    return single(k)


SHAPES = {"chain": chain, "fan": fan, "layered": layered}


def statuses(result: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in result.steps.values():
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return counts


def timed_run(pipe: Any, **kwargs: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = pipe.run(**kwargs)
    return time.perf_counter() - start, result


def cache_hit(shape: str, n: int, reruns: int) -> dict:
    """One run fills the cache; then ``reruns`` runs in which every step is a hit."""
    pipe = SHAPES[shape]
    fill_s, first = timed_run(pipe, n=n)
    times, counts = [], []
    for _ in range(reruns):
        seconds, result = timed_run(pipe, n=n)
        times.append(seconds)
        counts.append(statuses(result))
    assert result.value == first.value, "a rerun returned another value"
    return {
        "shape": shape,
        "n": n,
        "fill_s": fill_s,
        "fill_statuses": statuses(first),
        "rerun_s": times,
        "rerun_statuses": counts,
        "median_s": statistics.median(times),
        "all_hits": all(c == {"cached": n} for c in counts),
    }


def dag(n: int, width: int, cache: bool, rerun: bool) -> dict:
    """The first run of an n-step layered DAG in a fresh process on an empty store."""
    total_s, result = timed_run(layered, n=n, width=width, cache=cache)
    out: dict[str, Any] = {
        "n": n,
        "width": width,
        "cache": cache,
        "total_s": total_s,
        "statuses": statuses(result),
        "steps_s": sum(o.duration for o in result.steps.values()),
    }
    # The same calls as plain Python (outside a pipeline a step is a plain function call).
    start = time.perf_counter()
    plain = layered.fn(n=n, width=width)
    out["plain_s"] = time.perf_counter() - start
    out["same_value"] = plain == result.value
    start = time.perf_counter()
    layered.build(n=n, width=width)
    out["build_s"] = time.perf_counter() - start
    if rerun:
        out["rerun_s"], again = timed_run(layered, n=n, width=width)
        out["rerun_statuses"] = statuses(again)
    return out


def fixed_cost() -> dict:
    """A one-step pipeline: the process's first run (imports, store, environment digest),
    then another one-step pipeline's (a miss too: another parameter)."""
    first_s, first = timed_run(one_step, k=1)
    second_s, second = timed_run(another_step, k=2)
    return {
        "first_s": first_s,
        "second_s": second_s,
        "statuses": [statuses(first), statuses(second)],
    }


# -- CPU-bound steps ----------------------------------------------------------------------------


def burn(iterations: int, seed: int) -> int:
    """Pure-Python work: a linear congruential generator, ``iterations`` times."""
    x = seed
    for _ in range(iterations):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    return x


@sy.step
def spin(iterations: int, seed: int) -> int:
    return burn(iterations, seed)


@sy.pipeline
def two_spins(iterations: int = 1_000_000) -> Any:
    return [spin(iterations, 1), spin(iterations, 2)]


def calibrate(seconds: float) -> dict:
    """How many iterations of ``burn`` take ``seconds`` here: the fastest of 5 short timings
    after a warm-up (the slower ones met other work on these shared cores)."""
    probe = 2_000_000
    _timed_burn(probe)
    best = min(_timed_burn(probe) for _ in range(5))
    return {"iterations": int(probe * seconds / best), "probe_s": best}


def _timed_burn(iterations: int) -> float:
    start = time.perf_counter()
    burn(iterations, 0)
    return time.perf_counter() - start


def parallel(iterations: int, executor: str, max_workers: int, warm: bool) -> dict:
    """Two independent CPU-bound steps, cache off; ``warm``: after a one-step pipeline run
    with the same executor, so the process's one-time costs (imports, the store, the
    environment digest; for processes, starting the forkserver with its preloaded imports)
    are paid before the timed run."""
    warmup_s = None
    if warm:
        warmup_s, _ = timed_run(one_step, k=-1, executor=executor, max_workers=max_workers)
    total_s, result = timed_run(
        two_spins, iterations=iterations, executor=executor, max_workers=max_workers, cache=False
    )
    return {
        "executor": executor,
        "warm": warm,
        "warmup_s": warmup_s,
        "iterations": iterations,
        "total_s": total_s,
        "steps_s": [o.duration for o in result.steps.values()],
        "statuses": statuses(result),
    }


def ceiling(iterations: int) -> dict:
    """The same two pieces of work without Shipyard: one after the other, then in two
    processes forked at once; what these cores allow right now."""
    import multiprocessing

    start = time.perf_counter()
    burn(iterations, 1)
    burn(iterations, 2)
    sequential_s = time.perf_counter() - start
    ctx = multiprocessing.get_context("fork")
    start = time.perf_counter()
    workers = [ctx.Process(target=burn, args=(iterations, seed)) for seed in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {"sequential_s": sequential_s, "forked_s": time.perf_counter() - start}


# -- the small pipeline, beside Metaflow's flow -------------------------------------------------


@sy.step
def load(rows: int = 2_000) -> list[list[float]]:
    return make_rows(rows)


@sy.step
def transform(rows: list[list[float]]) -> list[list[float]]:
    return standardize(rows)


@sy.step
def scale(rows: list[list[float]]) -> list[list[float]]:
    return min_max(rows)


@sy.step
def evaluate(rows: list[list[float]]) -> dict[str, float]:
    return fit_line(rows)


@sy.step
def compare_fits(a: list[list[float]], b: list[list[float]]) -> dict[str, dict[str, float]]:
    return compare(a, b)


@sy.pipeline
def small_linear() -> Any:
    return evaluate(transform(load()))


@sy.pipeline
def small_fan() -> Any:
    rows = load()
    return compare_fits(transform(rows), scale(rows))


def small(shape: str, executor: str) -> dict:
    """The small pipeline's first run on an empty store (the caller times the process)."""
    pipe = small_linear if shape == "linear" else small_fan
    run_s, result = timed_run(pipe, executor=executor, max_workers=2)
    return {
        "shape": shape,
        "executor": executor,
        "run_s": run_s,
        "statuses": statuses(result),
        "value": result.value,
    }


MEASUREMENTS: dict[str, Callable[..., dict]] = {
    "cache_hit": cache_hit,
    "dag": dag,
    "fixed_cost": fixed_cost,
    "calibrate": calibrate,
    "parallel": parallel,
    "ceiling": ceiling,
    "small": small,
}

if __name__ == "__main__":
    name, args = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(MEASUREMENTS[name](**args)))
