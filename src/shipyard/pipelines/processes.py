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
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

from shipyard.pipelines.dag import Node
from shipyard.pipelines.scheduler import Launched, Scheduler, worker_args

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


class ProcessScheduler(Scheduler):
    """Runs the DAG with up to ``max_workers`` step processes at once (default: the CPUs)."""

    def __init__(self, runner: Any, max_workers: int | None) -> None:
        super().__init__(runner, max_workers, os.cpu_count() or 1)
        self.ctx = _context()

    def launch(self, node: Node, job: bytes, run_id: str, env: dict[str, str]) -> Any:
        receive, send = self.ctx.Pipe(duplex=False)
        process = self.ctx.Process(
            target=_worker, args=(*worker_args(env, job, run_id), send), daemon=True
        )
        with _main_module_not_rerun():
            process.start()
        send.close()
        return (process, receive)

    def ready(self, wait_for: float) -> list[Launched]:
        by_conn = {item.handle[1]: item for item in self.running.values()}
        return [by_conn[conn] for conn in wait(list(by_conn), timeout=wait_for)]

    def result(self, item: Launched) -> tuple[str, Any] | str:
        process, conn = item.handle
        try:
            report: tuple[str, Any] = conn.recv()
        except EOFError:  # the worker died without a word
            process.join(5)
            return f"the step's process exited with code {process.exitcode}"
        process.join(5)
        return report

    def stop(self, item: Launched) -> None:
        process = item.handle[0]
        process.terminate()
        process.join(5)
        if process.is_alive():
            process.kill()


def _worker(
    path: list[str], env: dict[str, str], cwd: str, job: bytes, run_id: str, conn: Connection
) -> None:
    """A step's process: run the job and send back what happened."""
    from shipyard.pipelines.worker import run_job

    conn.send(run_job(path, env, cwd, job, run_id))
