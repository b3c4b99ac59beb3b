"""What a step execution is outside the scheduling process: a job (the step, its arguments
with step outputs as references to stored files, a run id chosen by the scheduler) that a
worker process or a Ray task runs, and the report it sends back."""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from typing import Any

from shipyard.pipelines.dag import Handle, Node


class _StoredInput:
    """Stands for a step output in a job: the worker reads it from the artifact store."""

    def __init__(self, output: dict[str, Any]) -> None:
        self.output = output


def job_bytes(node: Node, runner: Any, key: str) -> bytes:
    """The job for ``node``, pickled; values that cannot be pickled -> InvalidInput naming
    the step and the type."""
    import cloudpickle

    from shipyard.pipelines.materializers import check_picklable

    def stored(value: Any) -> Any:
        if isinstance(value, Handle):
            return _StoredInput(runner.outcomes[value.node.id].outputs[value.index or 0].to_dict())
        if isinstance(value, list):
            return [stored(v) for v in value]
        if isinstance(value, tuple):
            return tuple(stored(v) for v in value)
        if isinstance(value, dict):
            return {k: stored(v) for k, v in value.items()}
        return value

    arguments = {name: stored(value) for name, value in node.arguments.items()}
    job = {
        "node": node.id,
        "step": node.step,
        "arguments": arguments,
        "params": runner.params_of(node),
        "key": key,
    }
    try:
        return bytes(cloudpickle.dumps(job))
    except Exception:
        check_picklable(node.step.fn, node.id)
        for value in arguments.values():
            check_picklable(value, node.id)
        raise


def create_step_run(
    runner: Any, node: Node, key: str, parent_run_id: str, experiment_id: int
) -> str:
    """The step's child run, created before its worker starts: so it exists, and can be
    marked failed or killed, even if the worker never gets to run."""
    from shipyard.tracking.capture import capture_system

    run = runner.tracker.store.create_run(
        experiment_id,
        node.id,
        parent_id=parent_run_id,
        user=capture_system()["user"],
        tags={"shipyard.step": node.step.name, "shipyard.cache_key": key},
    )
    return str(run.id)


def run_job(
    path: list[str], env: dict[str, str], cwd: str, job: bytes, run_id: str
) -> tuple[str, Any]:
    """Run a step's job in this (worker) process: open its run under the id the scheduler
    chose, run the step, store its outputs, end the run. Returns ("done", outputs) or
    ("failed", error)."""
    sys.path[:] = path
    os.environ.update(env)
    os.chdir(cwd)
    import cloudpickle

    import shipyard as sy

    spec = cloudpickle.loads(job)
    # this process may end without running exit handlers (multiprocessing's children do):
    # what the step logged is stored before it reports
    try:
        report = _run_step(sy, spec, run_id)
    except BaseException:
        with contextlib.suppress(Exception):  # the step's own error is the one to see
            sy.flush()
        raise
    sy.flush()
    return report


def _run_step(sy: Any, spec: dict[str, Any], run_id: str) -> tuple[str, Any]:
    from shipyard.pipelines.runner import (
        _call_with_retries,
        _load_stored,
        _Runner,
        _split,
        record_outputs,
    )

    node_id, step = spec["node"], spec["step"]
    run = sy.start_run(run_id=run_id)  # created by the scheduler
    try:
        run.log_params(spec["params"])
        arguments = {k: _resolve_stored(v, _load_stored) for k, v in spec["arguments"].items()}
        result = _call_with_retries(step, arguments, run)
        node = Node(node_id, step, {}, step.outputs)
        outputs = [_Runner.store_output_in(run, value) for value in _split(node, result)]
        record_outputs(run, outputs)
    except Exception as exc:
        run.end("failed", exc)
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return "failed", {
            "run_id": run.id,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": text,
        }
    run.end("finished")
    return "done", {"run_id": run.id, "outputs": [o.to_dict() for o in outputs]}


def record_result(
    runner: Any, node: Node, key: str, kind: str, payload: Any, started: float
) -> None:
    """Turn a worker's report into the node's outcome; cache what succeeded."""
    from shipyard.pipelines.runner import FAILED, FINISHED, Output, StepOutcome

    duration = time.monotonic() - started
    if kind == "failed":
        print(f"step {node.id!r} failed:\n{payload['traceback']}", file=sys.stderr, end="")
        outcome = StepOutcome(
            node.id,
            node.step.name,
            FAILED,
            payload["run_id"],
            None,
            duration,
            payload["error"],
            key,
        )
    else:
        outputs = [Output.from_dict(o) for o in payload["outputs"]]
        if node.step.options.cache:
            runner.tracker.store.put_step_cache(
                key, payload["run_id"], node.step.name, payload["outputs"]
            )
        runner.remember(node, outputs)
        outcome = StepOutcome(
            node.id, node.step.name, FINISHED, payload["run_id"], None, duration, None, key, outputs
        )
    runner.outcomes[node.id] = outcome
    runner.notify("end", outcome)


def _resolve_stored(value: Any, load: Any) -> Any:
    if isinstance(value, _StoredInput):
        return load(value.output)
    if isinstance(value, list):
        return [_resolve_stored(v, load) for v in value]
    if isinstance(value, tuple):
        return tuple(_resolve_stored(v, load) for v in value)
    if isinstance(value, dict):
        return {k: _resolve_stored(v, load) for k, v in value.items()}
    return value
