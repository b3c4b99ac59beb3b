"""Metaflow's side of benchmarks/pipelines.py: the small pipeline as a flow (.bench/metaflow).

Usage, in an empty temporary folder (Metaflow's local datastore goes there):

    BENCH_FLOW=linear|fan BENCH_OUT=result.json PYTHONPATH=benchmarks \\
        METAFLOW_DEFAULT_DATASTORE=local METAFLOW_DEFAULT_METADATA=local USERNAME=bench \\
        .bench/metaflow/bin/python benchmarks/_pipelines_metaflow.py --no-pylint run

The flow is chosen by an environment variable, not an argument, because Metaflow runs each
task as ``python this_file.py step ...`` with the same environment. Metaflow requires a
``start`` and an ``end`` step, and ``end`` may not be a join: the linear flow maps
load -> transform -> evaluate onto start -> transform -> end; the fan needs one more step
than Shipyard's pipeline (start -> standardize, min_max -> compare -> end).
"""

from __future__ import annotations

import json
import os

from _pipelines_work import compare, fit_line, make_rows, min_max, standardize
from metaflow import FlowSpec, step


def _write(value: dict) -> None:
    """The flow's result, for the caller to check against Shipyard's."""
    out = os.environ.get("BENCH_OUT")
    if out:
        with open(out, "w") as f:
            json.dump(value, f)


class LinearFlow(FlowSpec):
    """load -> transform -> evaluate."""

    @step
    def start(self) -> None:
        self.rows = make_rows()
        self.next(self.transform)

    @step
    def transform(self) -> None:
        self.scaled = standardize(self.rows)
        self.next(self.end)

    @step
    def end(self) -> None:
        self.result = fit_line(self.scaled)
        _write(self.result)


class FanFlow(FlowSpec):
    """load -> (standardize, min_max) -> compare, and Metaflow's own end."""

    @step
    def start(self) -> None:
        self.rows = make_rows()
        self.next(self.standardize, self.min_max)

    @step
    def standardize(self) -> None:
        self.scaled = standardize(self.rows)
        self.next(self.compare)

    @step
    def min_max(self) -> None:
        self.scaled = min_max(self.rows)
        self.next(self.compare)

    @step
    def compare(self, inputs: list) -> None:
        self.result = compare(inputs.standardize.scaled, inputs.min_max.scaled)
        self.next(self.end)

    @step
    def end(self) -> None:
        _write(self.result)


if __name__ == "__main__":
    {"linear": LinearFlow, "fan": FanFlow}[os.environ.get("BENCH_FLOW", "linear")]()
