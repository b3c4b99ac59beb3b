"""What the executors that run steps elsewhere share: which step can start, cache hits, the
job and the step's run made before launch, timeouts, and turning a stopped step into an
outcome. Subclasses say how to launch a job, wait for results and stop one."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from shipyard.errors import InvalidInput, NotFound
from shipyard.pipelines.dag import Node
from shipyard.pipelines.worker import create_step_run, job_bytes

POLL_SECONDS = 0.2


@dataclass
class Launched:
    """A step execution running elsewhere; ``handle`` is the executor's own."""

    node: Node
    handle: Any
    key: str
    run_id: str
    started: float
    deadline: float | None


class Scheduler:
    """Runs a ``_Runner``'s DAG, starting every step whose inputs are ready, up to a limit."""

    def __init__(self, runner: Any, max_workers: int | None, default_workers: int | None) -> None:
        if max_workers is not None and (isinstance(max_workers, bool) or max_workers < 1):
            raise InvalidInput(f"max_workers must be at least 1, got {max_workers!r}")
        self.runner = runner
        self.max_workers = max_workers or default_workers
        self.running: dict[str, Launched] = {}

    # -- what an executor provides -------------------------------------------------------

    def launch(self, node: Node, job: bytes, run_id: str, env: dict[str, str]) -> Any:
        raise NotImplementedError

    def ready(self, wait_for: float) -> list[Launched]:
        """The launched steps that have reported back, waiting up to ``wait_for`` seconds."""
        raise NotImplementedError

    def result(self, item: Launched) -> tuple[str, Any] | str:
        """The worker's report, or why there is none (the worker died)."""
        raise NotImplementedError

    def stop(self, item: Launched) -> None:
        raise NotImplementedError

    # -- the shared loop -----------------------------------------------------------------

    def run_all(self, parent_run_id: str, experiment_id: int) -> None:
        from shipyard.pipelines.runner import FAILED, SKIPPED, StepOutcome

        runner = self.runner
        pending = list(runner.dag.nodes)
        try:
            while pending or self.running:
                for node in list(pending):
                    states = [runner.outcomes.get(up.id) for up in node.upstream]
                    blocked = [
                        up.id
                        for up, o in zip(node.upstream, states, strict=True)
                        if o is not None and o.status in (FAILED, SKIPPED)
                    ]
                    if blocked:
                        pending.remove(node)
                        why = f"upstream failed: {', '.join(blocked)}"
                        self._outcome(StepOutcome(node.id, node.step.name, SKIPPED, error=why))
                    elif all(o is not None for o in states) and self._has_room():
                        pending.remove(node)
                        self._start_or_reuse(node, parent_run_id, experiment_id)
                self._collect()
        except BaseException:
            for item in list(self.running.values()):
                self._stopped(item, "killed", "the pipeline was interrupted")
            raise

    def _has_room(self) -> bool:
        return self.max_workers is None or len(self.running) < self.max_workers

    def _outcome(self, outcome: Any) -> None:
        self.runner.outcomes[outcome.node] = outcome
        self.runner.notify("end", outcome)

    def _start_or_reuse(self, node: Node, parent_run_id: str, experiment_id: int) -> None:
        from shipyard.pipelines.keys import step_cache_key
        from shipyard.pipelines.runner import FAILED, StepOutcome

        runner = self.runner
        runner.notify("start", node)
        key = step_cache_key(node, runner.input_digests(node))
        entry = runner.lookup(node, key)
        if entry is not None:
            self._outcome(runner.reuse(node, key, entry))
            return
        try:
            job = job_bytes(node, runner, key)
        except InvalidInput as exc:
            print(f"step {node.id!r} failed: {exc.message}", file=sys.stderr)
            self._outcome(
                StepOutcome(node.id, node.step.name, FAILED, None, None, 0.0, exc.message, key)
            )
            return
        run_id = create_step_run(runner, node, key, parent_run_id, experiment_id)
        env = {
            "SHIPYARD_URI": runner.tracker.uri,
            "SHIPYARD_ARTIFACTS": runner.tracker.artifact_root,
            "SHIPYARD_CAPTURE": "false",  # the pipeline run has it; each step need not
        }
        handle = self.launch(node, job, run_id, env)
        timeout = node.step.options.timeout
        now = time.monotonic()
        deadline = None if timeout is None else now + timeout
        self.running[node.id] = Launched(node, handle, key, run_id, now, deadline)

    def _collect(self) -> None:
        from shipyard.pipelines.worker import record_result

        if not self.running:
            return
        deadlines = [r.deadline for r in self.running.values() if r.deadline is not None]
        wait_for = POLL_SECONDS
        if deadlines:
            wait_for = max(0.0, min(wait_for, min(deadlines) - time.monotonic()))
        done = {item.node.id for item in self.ready(wait_for)}
        for item in list(self.running.values()):
            if item.node.id in done:
                report = self.result(item)
                if isinstance(report, str):
                    self._stopped(item, "failed", report)
                else:
                    del self.running[item.node.id]
                    record_result(self.runner, item.node, item.key, *report, item.started)
            elif item.deadline is not None and time.monotonic() >= item.deadline:
                timeout = item.node.step.options.timeout
                self._stopped(item, "failed", f"timed out after {timeout:g} s")

    def _stopped(self, item: Launched, status: str, why: str) -> None:
        """Stop a step's worker and record it as failed (or killed) with ``why``."""
        from shipyard.pipelines.runner import FAILED, StepOutcome

        with contextlib.suppress(Exception):  # stopping what has already ended
            self.stop(item)
        self.running.pop(item.node.id, None)
        with contextlib.suppress(NotFound):
            self.runner.tracker.store.set_run_status(
                item.run_id, status, end_time=time.time(), error=why
            )
        node = item.node
        print(f"step {node.id!r} failed: {why}", file=sys.stderr)
        self._outcome(
            StepOutcome(
                node.id,
                node.step.name,
                FAILED,
                item.run_id,
                None,
                time.monotonic() - item.started,
                why,
                item.key,
            )
        )


def worker_args(env: dict[str, str], job: bytes, run_id: str) -> tuple[Any, ...]:
    """What a worker needs besides the job: this process's import path and folder."""
    return (list(sys.path), env, os.getcwd(), job, run_id)
