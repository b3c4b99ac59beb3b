"""The ``ray`` executor: each step execution is a Ray task with the step's resources.

Connects to ``SHIPYARD_RAY_ADDRESS`` (e.g. ``ray://head:10001`` or ``auto``) or starts a local
Ray instance. A task runs the same job as a process of the ``processes`` executor (see
``worker.py``): it opens the step's child run, runs the step and stores the outputs in the
artifact store, which every task and the scheduler can reach; only references to those files
travel through Ray. A step past its ``timeout`` is cancelled and its run marked failed.
"""

from __future__ import annotations

import os
from typing import Any

from shipyard.errors import InvalidInput, require
from shipyard.pipelines.dag import Node
from shipyard.pipelines.scheduler import Launched, Scheduler, worker_args

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


class RayScheduler(Scheduler):
    """Submits ready steps as Ray tasks; Ray places them by their cpus/gpus (no limit of its
    own unless ``max_workers`` is given)."""

    def __init__(self, runner: Any, max_workers: int | None) -> None:
        super().__init__(runner, max_workers, None)
        self.ray = connect()

    def launch(self, node: Node, job: bytes, run_id: str, env: dict[str, str]) -> Any:
        options = node.step.options
        task = _task().options(num_cpus=options.cpus, num_gpus=options.gpus)
        return task.remote(*worker_args(env, job, run_id))

    def ready(self, wait_for: float) -> list[Launched]:
        items = list(self.running.values())
        done, _ = self.ray.wait([i.handle for i in items], num_returns=1, timeout=wait_for)
        return [i for i in items if any(i.handle == ref for ref in done)]

    def result(self, item: Launched) -> tuple[str, Any] | str:
        try:
            report: tuple[str, Any] = self.ray.get(item.handle)
        except Exception as exc:  # the task's worker died, or Ray failed it
            return f"the Ray task failed: {type(exc).__name__}: {exc}"[:2000]
        return report

    def stop(self, item: Launched) -> None:
        self.ray.cancel(item.handle, force=True)
