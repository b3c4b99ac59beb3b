"""The module-level API: ``sy.start_run``, ``sy.log_metric`` and friends act on the active run."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shipyard.config import get_settings
from shipyard.errors import InvalidInput
from shipyard.store.entities import ArtifactEntry, Experiment, Metric, Run
from shipyard.tracking.run import ActiveRun
from shipyard.tracking.tracker import Tracker, get_tracker

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.tracking.models import LoggedModel

log = logging.getLogger("shipyard.tracking")

_active: contextvars.ContextVar[tuple[ActiveRun, ...]] = contextvars.ContextVar(
    "shipyard_active_runs", default=()
)
_experiment: dict[str, Experiment] = {}  # store uri -> experiment chosen by set_experiment
MAX_SOURCE_BYTES = 5_000_000


def set_experiment(name: str) -> Experiment:
    """Make ``name`` the experiment for new runs, creating it if needed."""
    tracker = get_tracker()
    exp = tracker.store.get_or_create_experiment(name)
    if exp.lifecycle != "active":
        raise InvalidInput(
            f"experiment {name!r} is deleted; "
            f"restore it with `shipyard experiments restore {exp.id}`"
        )
    _experiment[tracker.uri] = exp
    return exp


def _current_experiment(tracker: Tracker, ref: int | str | None) -> Experiment:
    if ref is not None:
        exp = (
            tracker.store.get_or_create_experiment(ref)
            if isinstance(ref, str) and not ref.isdigit()
            else tracker.store.get_experiment(ref)
        )
    else:
        exp = _experiment.get(tracker.uri) or tracker.store.get_or_create_experiment(
            get_settings().experiment
        )
    if exp.lifecycle != "active":
        raise InvalidInput(f"experiment {exp.name!r} is deleted; restore it to log runs in it")
    return exp


def start_run(
    name: str | None = None,
    *,
    run_id: str | None = None,
    experiment: int | str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    nested: bool = False,
    parent_id: str | None = None,
) -> ActiveRun:
    """Open a run (or resume ``run_id``) and make it the active run.

    Inside another active run, pass ``nested=True`` to open a child run.
    """
    tracker = get_tracker()
    stack = _active.get()
    inherited = None
    if stack and parent_id is None:
        if not nested:
            raise InvalidInput(
                f"run {stack[-1].id} is already active; pass nested=True to start a child run, "
                "or end it first"
            )
        parent_id = stack[-1].id
        if experiment is None:
            # a child run belongs to its parent's experiment, which is known to be active:
            # no read of the store (a pipeline starts one child run per step)
            inherited = stack[-1].experiment_id
    if run_id is not None:
        handle = _resume(tracker, run_id)
    else:
        handle = _new_run(tracker, name, experiment, parent_id, None, inherited)
    tracker.open_runs[handle.id] = handle
    _active.set((*stack, handle))
    _process_runs.append(handle)
    try:
        if params:
            handle.log_params(params)
        if tags:
            handle.set_tags(tags)
    except BaseException as exc:
        handle.__exit__(type(exc), exc, exc.__traceback__)
        raise
    return handle


def _new_run(
    tracker: Tracker,
    name: str | None,
    experiment: int | str | None,
    parent_id: str | None,
    run_id: str | None,
    experiment_id: int | None = None,
) -> ActiveRun:
    from shipyard.tracking.capture import capture_system

    if experiment_id is None:
        experiment_id = _current_experiment(tracker, experiment).id
    record = Run.new(
        experiment_id, name, parent_id=parent_id, user=capture_system()["user"], run_id=run_id
    )
    tracker.writer.add_run(record)
    handle = ActiveRun(tracker, record)
    if get_settings().capture:
        _start_capture(tracker, handle)
    return handle


def _resume(tracker: Tracker, run_id: str) -> ActiveRun:
    tracker.writer.flush()
    record = tracker.store.get_run(run_id)
    if record.lifecycle == "deleted":
        raise InvalidInput(f"run {run_id} is deleted; restore it before resuming")
    if record.status == "running" and run_id in tracker.open_runs:
        raise InvalidInput(f"run {run_id} is already active in this process")
    tracker.writer.add_status(run_id, "running", None, None)
    return ActiveRun(tracker, record, resumed=True)


def _start_capture(tracker: Tracker, run: ActiveRun) -> None:
    """Record what ran: at once from this process's earlier capture, or in the background."""
    cached = _captured.get((tracker.artifact_root, os.getcwd()))
    if cached is not None:
        _apply_capture(tracker, run, *cached)
        return
    run._capture = threading.Thread(
        target=_capture_into, args=(tracker, run), name="shipyard-capture", daemon=True
    )
    run._capture.start()


# (artifact root, cwd) -> (tags, artifact entries) of a script process, whose code, git state
# and packages do not change while it runs: it is captured once, for its first run.
_captured: dict[tuple[str, str], tuple[dict[str, str], list[ArtifactEntry]]] = {}


def _capture_into(tracker: Tracker, run: ActiveRun) -> None:
    """Record git, entry point, system and environment; never breaks the user's run."""
    from shipyard.tracking import capture

    try:
        entry = capture.capture_entry_point()
        git = capture.capture_git()
        tags = capture.run_tags(git, entry, capture.capture_system())
        env = capture.capture_environment()
        tracker.writer.add_environment(env)
        tags["shipyard.env.digest"] = env.digest
        entries = []
        if git is not None and git.diff:
            digest, size = tracker.blobs.put_bytes(git.diff.encode("utf-8", "replace"))
            entries.append(ArtifactEntry("shipyard/git.diff", digest, size))
        src = entry.source_path
        if src and os.path.isfile(src) and os.path.getsize(src) <= MAX_SOURCE_BYTES:
            digest, size = tracker.blobs.put_file(src)
            entries.append(ArtifactEntry(f"shipyard/source/{os.path.basename(src)}", digest, size))
        _apply_capture(tracker, run, tags, entries)
        # Notebooks and shells change as they go: capture them again for every run.
        if entry.kind not in ("notebook", "interactive", "unknown"):
            _captured[(tracker.artifact_root, os.getcwd())] = (tags, entries)
    except Exception as exc:
        log.warning("shipyard: could not record the environment of run %s: %s", run.id, exc)


def _apply_capture(
    tracker: Tracker, run: ActiveRun, tags: dict[str, str], entries: list[ArtifactEntry]
) -> None:
    tracker.writer.add_tags([(run.id, k, v) for k, v in tags.items()])
    run._record(entries)


def _pop_active(run: ActiveRun) -> None:
    stack = _active.get()
    if run in stack:
        _active.set(tuple(r for r in stack if r is not run))
    with contextlib.suppress(ValueError):
        _process_runs.remove(run)


# Every open run in start order, whatever thread or task opened it: a worker thread (whose
# context starts empty) logs to the run its program opened instead of starting another.
_process_runs: list[ActiveRun] = []


def active_run() -> ActiveRun | None:
    """The innermost active run in this context (else the newest one open in the process)."""
    stack = _active.get()
    if stack:
        return stack[-1]
    return _process_runs[-1] if _process_runs else None


def end_run(status: str = "finished") -> None:
    """End the active run (no-op when there is none)."""
    run = active_run()
    if run is not None:
        try:
            run.end(status)
        finally:
            _pop_active(run)


@contextlib.contextmanager
def batched() -> Iterator[None]:
    """Commit the runs that end inside the block together, when it ends.

    For sweeps of many small runs: each run end then costs no transaction of its own. What
    was logged is still written by the background writer as it goes, and at the block's end,
    at an exception, Ctrl-C, SIGTERM or interpreter exit, as everywhere else.
    """
    writer = get_tracker().writer
    writer.deferred += 1
    try:
        yield
    finally:
        writer.deferred -= 1
        if not writer.deferred:
            ended, writer.ended = writer.ended, []
            try:
                writer.flush()
            finally:
                for run_id in ended:
                    writer.release(run_id)


def _run() -> ActiveRun:
    # Like MLflow, logging with no active run opens one; it ends at interpreter exit.
    return active_run() or start_run()


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: float | None = None
) -> None:
    _run().log_metric(key, value, step, timestamp)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    _run().log_metrics(metrics, step)


def log_param(key: str, value: Any) -> None:
    _run().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    _run().log_params(params)


def set_tag(key: str, value: Any) -> None:
    _run().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    _run().set_tags(tags)


def log_artifact(local_path: str | os.PathLike[str], path: str | None = None) -> list[str]:
    return _run().log_artifact(local_path, path)


def log_text(text: str, path: str) -> str:
    return _run().log_text(text, path)


def log_dict(obj: Any, path: str) -> str:
    return _run().log_dict(obj, path)


def log_figure(figure: Any, path: str) -> str:
    return _run().log_figure(figure, path)


def log_dataset(data: Any, name: str, *, context: str = "training", source: str = "") -> Any:
    return _run().log_dataset(data, name, context=context, source=source)


def log_model(
    model: Any,
    name: str,
    *,
    input_example: Any = None,
    register: bool = True,
    artifact_path: str | None = None,
    description: str = "",
    tags: Mapping[str, Any] | None = None,
) -> LoggedModel:
    """``ActiveRun.log_model`` on the active run."""
    return _run().log_model(
        model,
        name,
        input_example=input_example,
        register=register,
        artifact_path=artifact_path,
        description=description,
        tags=tags,
    )


def get_run(run_id: str) -> Run:
    """The stored run (everything logged in this process so far is flushed first)."""
    tracker = get_tracker()
    tracker.writer.flush()
    return tracker.store.get_run(run_id)


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    tracker = get_tracker()
    tracker.writer.flush()
    return tracker.store.get_metric_history(run_id, key)


def search_runs(
    filter: str = "",
    *,
    experiments: Sequence[int | str] | int | str | None = None,
    order_by: Sequence[str] | str = (),
    max_results: int = 1000,
    include_deleted: bool = False,
    as_frame: bool = False,
) -> list[Run] | pd.DataFrame:
    """Runs matching ``filter`` across the given experiments (default: all active ones)."""
    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
        raise InvalidInput(f"max_results must be a positive integer, got {max_results!r}")
    tracker = get_tracker()
    tracker.writer.flush()
    ids = None
    if experiments is not None:
        refs = [experiments] if isinstance(experiments, (int, str)) else list(experiments)
        ids = [tracker.store.get_experiment(ref).id for ref in refs]
    orders = [order_by] if isinstance(order_by, str) else list(order_by)
    runs: list[Run] = []
    token = None
    while len(runs) < max_results:
        page = tracker.store.search_runs(
            ids, filter, orders, min(max_results - len(runs), 50_000), token, include_deleted
        )
        runs.extend(page.runs)
        token = page.next_page_token
        if token is None:
            break
    return runs_to_frame(runs) if as_frame else runs


def runs_to_frame(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run: attributes, then params.*, metrics.* and tags.* columns."""
    from shipyard.errors import require

    pd: Any = require("pandas", "data")
    rows = []
    for run in runs:
        row: dict[str, Any] = {
            "run_id": run.id,
            "experiment_id": run.experiment_id,
            "name": run.name,
            "status": run.status,
            "start_time": pd.to_datetime(run.start_time, unit="s", utc=True),
            "end_time": pd.to_datetime(run.end_time, unit="s", utc=True) if run.end_time else None,
            "duration": run.duration,
            "user": run.user,
            "parent_id": run.parent_id,
        }
        row.update({f"params.{k}": val for k, val in run.params.items()})
        row.update({f"metrics.{k}": val for k, val in run.metrics.items()})
        row.update({f"tags.{k}": val for k, val in run.tags.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def delete_run(run_id: str) -> None:
    tracker = get_tracker()
    tracker.writer.flush()  # a run this process just ended may still be buffered
    tracker.store.delete_run(run_id)


def flush() -> None:
    """Store everything this process has logged so far, run ends left to group commit
    included, before another process reads it (a CLI call after a sweep, say); raises
    what could not be stored."""
    get_tracker().writer.flush()


def get_experiment(ref: int | str) -> Experiment:
    return get_tracker().store.get_experiment(ref)
