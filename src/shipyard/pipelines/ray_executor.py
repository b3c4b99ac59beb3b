"""The ``ray`` executor: each step execution is a Ray task with the step's resources.

Connects to ``SHIPYARD_RAY_ADDRESS`` (e.g. ``ray://head:10001`` or ``auto``) or starts a local
Ray instance. A task runs the same job as a process of the ``processes`` executor (see
``worker.py``): it opens the step's child run, runs the step and stores the outputs in the
artifact store, which every task and the scheduler can reach; only references to those files
travel through Ray. A step past its ``timeout`` is cancelled and its run marked failed.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from shipyard.errors import InvalidInput, NotFound, require
from shipyard.pipelines.dag import Node
from shipyard.pipelines.worker import create_step_run, job_bytes, record_result

_remote: Any = None


def _task() -> Any:
    """The remote function, made once per process (ray.remote needs Ray initialised)."""
    global _remote
    if _remote is None:
        ray: Any = require("ray", "ray")

        @ray.remote(max_retries=0)
        def run_step(
            path: list[str], env: dict[str, str], cwd: str, job: bytes, run_id: str
        ) -> Any:
            from shipyard.pipelines.worker import run_job

            return run_job(path, env, cwd, job, run_id)

        _remote = run_step
    return _remote


def connect() -> Any:
    """Ray, initialised: the configured cluster, or a local instance."""
    ray: Any = require("ray", "ray")
    if not ray.is_initialized():
        address = os.environ.get("SHIPYARD_RAY_ADDRESS") or None
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, ValueError) as exc:
            raise InvalidInput(f"cannot connect to Ray at {address!r}: {exc}") from None
    return ray


@dataclass
class _Submitted:
    node: Node
    ref: Any
    key: str
    run_id: str
    started: float
    deadline: float | None


class RayScheduler:
    """Submits ready steps as Ray tasks; Ray places them by their cpus/gpus."""

    def __init__(self, runner: Any, max_workers: int | None) -> None:
        if max_workers is not None and (isinstance(max_workers, bool) or max_workers < 1):
            raise InvalidInput(f"max_workers must be at least 1, got {max_workers!r}")
        self.runner = runner
        self.max_workers = max_workers
        self.ray = connect()
        self.submitted: dict[str, _Submitted] = {}

    def run_all(self, parent_run_id: str, experiment_id: int) -> None:
        from shipyard.pipelines.runner import FAILED, SKIPPED, StepOutcome

        runner = self.runner
        pending = list(runner.dag.nodes)
        try:
            while pending or self.submitted:
                for node in list(pending):
                    states = [runner.outcomes.get(up.id) for up in node.upstream]
                    if any(o is not None and o.status in (FAILED, SKIPPED) for o in states):
                        pending.remove(node)
                        blocked = [
                            up.id
                            for up in node.upstream
                            if runner.outcomes[up.id].status in (FAILED, SKIPPED)
                        ]
                        outcome = StepOutcome(
                            node.id,
                            node.step.name,
                            SKIPPED,
                            error=f"upstream failed: {', '.join(blocked)}",
                        )
                        runner.outcomes[node.id] = outcome
                        runner.notify("end", outcome)
                    elif all(o is not None for o in states) and self._has_room():
                        pending.remove(node)
                        self._submit_or_reuse(node, parent_run_id, experiment_id)
                self._collect()
        except BaseException:
            for item in list(self.submitted.values()):
                self._cancel(item, "killed", "the pipeline was interrupted")
            raise

    def _has_room(self) -> bool:
        return self.max_workers is None or len(self.submitted) < self.max_workers

    def _submit_or_reuse(self, node: Node, parent_run_id: str, experiment_id: int) -> None:
        from shipyard.pipelines.keys import step_cache_key
        from shipyard.pipelines.runner import FAILED, StepOutcome

        runner = self.runner
        runner.notify("start", node)
        key = step_cache_key(node, runner.input_digests(node))
        entry = runner.lookup(node, key)
        if entry is not None:
            runner.outcomes[node.id] = runner.reuse(node, key, entry)
            runner.notify("end", runner.outcomes[node.id])
            return
        try:
            job = job_bytes(node, runner, key)
        except InvalidInput as exc:
            print(f"step {node.id!r} failed: {exc.message}", file=sys.stderr)
            outcome = StepOutcome(
                node.id, node.step.name, FAILED, None, None, 0.0, exc.message, key
            )
            runner.outcomes[node.id] = outcome
            runner.notify("end", outcome)
            return
        run_id = create_step_run(runner, node, key, parent_run_id, experiment_id)
        env = {
            "SHIPYARD_URI": runner.tracker.uri,
            "SHIPYARD_ARTIFACTS": runner.tracker.artifact_root,
            "SHIPYARD_CAPTURE": "false",
        }
        options = node.step.options
        ref = (
            _task()
            .options(num_cpus=options.cpus, num_gpus=options.gpus)
            .remote(list(sys.path), env, os.getcwd(), job, run_id)
        )
        now = time.monotonic()
        deadline = None if options.timeout is None else now + options.timeout
        self.submitted[node.id] = _Submitted(node, ref, key, run_id, now, deadline)

    def _collect(self) -> None:
        if not self.submitted:
            return
        deadlines = [s.deadline for s in self.submitted.values() if s.deadline is not None]
        wait_for = 0.2
        if deadlines:
            wait_for = max(0.0, min(wait_for, min(deadlines) - time.monotonic()))
        refs = [s.ref for s in self.submitted.values()]
        ready, _ = self.ray.wait(refs, num_returns=1, timeout=wait_for)
        for item in list(self.submitted.values()):
            if any(item.ref == r for r in ready):
                self._receive(item)
            elif item.deadline is not None and time.monotonic() >= item.deadline:
                self._cancel(
                    item, "failed", f"timed out after {item.node.step.options.timeout:g} s"
                )

    def _receive(self, item: _Submitted) -> None:
        del self.submitted[item.node.id]
        try:
            kind, payload = self.ray.get(item.ref)
        except Exception as exc:  # the task's worker died, or Ray failed it
            self._failed(item, f"the Ray task failed: {type(exc).__name__}: {exc}"[:2000])
            return
        record_result(self.runner, item.node, item.key, kind, payload, item.started)

    def _cancel(self, item: _Submitted, status: str, why: str) -> None:
        with contextlib.suppress(Exception):
            self.ray.cancel(item.ref, force=True)
        self.submitted.pop(item.node.id, None)
        self._failed(item, why, status)

    def _failed(self, item: _Submitted, why: str, status: str = "failed") -> None:
        from shipyard.pipelines.runner import FAILED, StepOutcome

        with contextlib.suppress(NotFound):
            self.runner.tracker.store.set_run_status(
                item.run_id, status, end_time=time.time(), error=why
            )
        node = item.node
        outcome = StepOutcome(
            node.id,
            node.step.name,
            FAILED,
            item.run_id,
            None,
            time.monotonic() - item.started,
            why,
            item.key,
        )
        self.runner.outcomes[node.id] = outcome
        print(f"step {node.id!r} failed: {why}", file=sys.stderr)
        self.runner.notify("end", outcome)
