"""The ``processes`` executor: independent steps run at once, each in its own process.

Each step execution is a fresh process forked from a forkserver (a clean, single-threaded
parent that has Shipyard and pandas imported already), so a step can be stopped at its
timeout and a crash takes only that step down. The step, its arguments and the stored
outputs it reads travel to the worker with cloudpickle; the worker opens the step's child
run, runs the step, stores its outputs in the artifact store and ends the run; the parent
schedules, reuses cache hits itself, and writes cache entries only for steps that succeeded.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from shipyard.errors import InvalidInput, NotFound
from shipyard.pipelines.dag import Node
from shipyard.pipelines.worker import create_step_run, job_bytes, record_result

# Imported once in the forkserver, so that a step's process starts with them loaded.
PRELOAD = [
    "shipyard.pipelines.processes",
    "shipyard.pipelines.runner",
    "shipyard.pipelines.worker",
    "shipyard.pipelines.materializers",
    "shipyard.tracking.fluent",
    "shipyard.tracking.tracker",
    "shipyard.store.sql.store",
    "shipyard.artifacts.folders",
    "shipyard.config",
    "cloudpickle",
    "pandas",
]


@dataclass
class _Running:
    node: Node
    process: Any
    conn: Connection
    key: str
    started: float
    deadline: float | None
    run_id: str | None = None


def _context() -> Any:
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(PRELOAD)
        from multiprocessing import forkserver

        # Start it now, in the background: its imports overlap the pipeline run's start.
        threading.Thread(target=forkserver.ensure_running, daemon=True).start()
    return ctx


@contextlib.contextmanager
def _main_module_not_rerun() -> Iterator[None]:
    """Start a process without multiprocessing's re-import of ``__main__`` in it.

    multiprocessing runs the main script again in each child (as ``__mp_main__``) so that
    functions defined there can be unpickled by name; a script that calls ``.run()`` without
    an ``if __name__ == "__main__":`` guard would then run its pipeline again in every step's
    process. The job carries everything by value (cloudpickle pickles ``__main__`` functions
    whole), so the child needs no main module.
    """
    from multiprocessing import spawn

    original = spawn.get_preparation_data

    def without_main(name: str) -> dict[str, Any]:
        data: dict[str, Any] = original(name)
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
        return data

    spawn.get_preparation_data = without_main
    try:
        yield
    finally:
        spawn.get_preparation_data = original


class ProcessScheduler:
    """Runs the DAG of a ``_Runner`` with up to ``max_workers`` step processes at once."""

    def __init__(self, runner: Any, max_workers: int | None) -> None:
        if max_workers is not None and (isinstance(max_workers, bool) or max_workers < 1):
            raise InvalidInput(f"max_workers must be at least 1, got {max_workers!r}")
        self.runner = runner
        self.max_workers = max_workers or os.cpu_count() or 1
        self.ctx = _context()
        self.running: dict[str, _Running] = {}

    def run_all(self, parent_run_id: str, experiment_id: int) -> None:
        from shipyard.pipelines.runner import SKIPPED, StepOutcome

        runner = self.runner
        pending = list(runner.dag.nodes)
        try:
            while pending or self.running:
                for node in list(pending):
                    states = [runner.outcomes.get(up.id) for up in node.upstream]
                    blocked = [
                        up.id
                        for up, o in zip(node.upstream, states, strict=True)
                        if o is not None and o.status in ("failed", SKIPPED)
                    ]
                    if blocked:
                        pending.remove(node)
                        runner.outcomes[node.id] = StepOutcome(
                            node.id,
                            node.step.name,
                            SKIPPED,
                            error=f"upstream failed: {', '.join(blocked)}",
                        )
                        runner.notify("end", runner.outcomes[node.id])
                    elif (
                        all(o is not None for o in states) and len(self.running) < self.max_workers
                    ):
                        pending.remove(node)
                        self._start_or_reuse(node, parent_run_id, experiment_id)
                self._collect()
        except BaseException:
            self._stop_all("killed", "the pipeline was interrupted")
            raise

    def _start_or_reuse(self, node: Node, parent_run_id: str, experiment_id: int) -> None:
        from shipyard.pipelines.keys import step_cache_key

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
            from shipyard.pipelines.runner import FAILED, StepOutcome

            print(f"step {node.id!r} failed: {exc.message}", file=sys.stderr)
            runner.outcomes[node.id] = StepOutcome(
                node.id, node.step.name, FAILED, None, None, 0.0, exc.message, key
            )
            runner.notify("end", runner.outcomes[node.id])
            return
        receive, send = self.ctx.Pipe(duplex=False)
        run_id = create_step_run(runner, node, key, parent_run_id, experiment_id)
        env = {
            "SHIPYARD_URI": runner.tracker.uri,
            "SHIPYARD_ARTIFACTS": runner.tracker.artifact_root,
            "SHIPYARD_CAPTURE": "false",  # the pipeline run has it; each step need not
        }
        process = self.ctx.Process(
            target=_worker, args=(list(sys.path), env, os.getcwd(), job, run_id, send), daemon=True
        )
        with _main_module_not_rerun():
            process.start()
        send.close()
        timeout = node.step.options.timeout
        now = time.monotonic()
        self.running[node.id] = _Running(
            node, process, receive, key, now, None if timeout is None else now + timeout, run_id
        )

    def _collect(self) -> None:
        if not self.running:
            return
        deadlines = [r.deadline for r in self.running.values() if r.deadline is not None]
        wait_for = 0.2
        if deadlines:
            wait_for = max(0.0, min(wait_for, min(deadlines) - time.monotonic()))
        ready = wait([r.conn for r in self.running.values()], timeout=wait_for)
        for item in list(self.running.values()):
            if item.conn in ready:
                self._receive(item)
            elif item.deadline is not None and time.monotonic() >= item.deadline:
                timeout = item.node.step.options.timeout
                self._finish_killed(item, "failed", f"timed out after {timeout:g} s")

    def _receive(self, item: _Running) -> None:
        try:
            kind, payload = item.conn.recv()
        except EOFError:  # the worker died without a word
            item.process.join(5)
            code = item.process.exitcode
            self._finish_killed(item, "failed", f"the step's process exited with code {code}")
            return
        item.process.join(5)
        del self.running[item.node.id]
        record_result(self.runner, item.node, item.key, kind, payload, item.started)

    def _finish_killed(self, item: _Running, status: str, why: str) -> None:
        from shipyard.pipelines.runner import FAILED, StepOutcome

        item.process.terminate()
        item.process.join(5)
        if item.process.is_alive():
            item.process.kill()
        self.running.pop(item.node.id, None)
        if item.run_id is not None:
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

    def _stop_all(self, status: str, why: str) -> None:
        for item in list(self.running.values()):
            self._finish_killed(item, status, why)


def _worker(
    path: list[str], env: dict[str, str], cwd: str, job: bytes, run_id: str, conn: Connection
) -> None:
    """A step's process: run the job and send back what happened."""
    from shipyard.pipelines.worker import run_job

    conn.send(run_job(path, env, cwd, job, run_id))
