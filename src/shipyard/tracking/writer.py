"""The batched background writer: logging appends to memory, one thread writes batches.

Everything logged reaches the Store in the order it was logged, one transaction per batch.
``flush()`` waits until everything logged before it is stored (or raises why it cannot be).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque

from shipyard.errors import Conflict, InvalidInput, NotFound, ShipyardError, StoreError
from shipyard.store.base import Store
from shipyard.store.entities import ArtifactEntry, Dataset, Environment, Run, WriteBatch

log = logging.getLogger("shipyard.tracking")

Point = tuple[str, float, int, float]  # key, value, step, timestamp


def _started_by_multiprocessing() -> bool:
    """A process started by multiprocessing (a Pool's worker, say) ends with ``os._exit``."""
    import multiprocessing

    return multiprocessing.parent_process() is not None


class Writer:
    """Buffers metrics, params, tags, new runs and status changes for one Store."""

    def __init__(
        self,
        store: Store,
        *,
        flush_interval: float = 1.0,
        flush_size: int = 200_000,
        max_buffer: int = 1_000_000,
        group_commit: float = 0.1,
    ) -> None:
        self.store = store
        self.flush_interval = flush_interval
        self.group_commit = group_commit
        # a process that may end past any exit flush (os._exit) commits every run end at once
        self._skips_exit = _started_by_multiprocessing()
        self.flush_size = flush_size
        self.max_buffer = max(max_buffer, flush_size)
        self._series: dict[str, deque[Point]] = {}
        self._init_state()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(before=self._before_fork, after_in_child=self._after_fork)

    def _before_fork(self) -> None:
        # Store what is buffered, so that a child logging to a run the parent opened finds
        # the run in the database, and nothing is written twice.
        try:
            self.flush()
        except Exception as exc:  # the fork must happen anyway; the data stays buffered
            log.warning("shipyard: could not flush before fork: %s", exc)

    def _after_fork(self) -> None:
        # The child must not write the parent's buffered points again, nor use its lock
        # state or thread; its open runs keep their queues, which now fill for the child.
        for queue in self._series.values():
            queue.clear()
        self._init_state()
        self._skips_exit = True  # a forked child often ends with os._exit

    def _init_state(self) -> None:
        # A forked child must not inherit the parent's buffers, lock state or thread.
        self._cond = threading.Condition(threading.Lock())
        self._ops = WriteBatch()
        self._failed: WriteBatch | None = None
        # held while a batch is written: by the background thread, or by flush() so that
        # a caller waiting for its data writes it itself instead of waiting for a hand-off
        self._write_lock = threading.Lock()
        self._errors: list[ShipyardError] = []
        # why buffered data is not stored yet: forgotten once a later write stores it
        self._transient: list[ShipyardError] = []
        # inside sy.batched() (a counter, blocks nest): run ends do not flush; `ended` lists
        # them so their queues can be released after the block's flush
        self.deferred = 0
        self.ended: list[str] = []
        # group commit: run ends in quick succession (a sweep) are committed together by the
        # background thread, at most ``group_commit`` seconds later
        self._last_end = float("-inf")
        self._streak = 0
        self._grouped: list[str] = []
        self._due: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._wake = threading.Event()

    # -- producers (any thread) ------------------------------------------------------------

    def series(self, run_id: str) -> deque[Point]:
        """The queue a run appends its points to; call ``full()`` when it grows long."""
        with self._cond:
            queue = self._series.get(run_id)
            if queue is None:
                queue = self._series[run_id] = deque()
        self._ensure_thread()
        return queue

    def release(self, run_id: str) -> None:
        """Forget an ended run's queue once it is empty."""
        with self._cond:
            queue = self._series.get(run_id)
            if queue is not None and not queue:
                del self._series[run_id]

    def full(self, queue: deque[Point]) -> None:
        """A queue passed flush_size: wake the writer, and wait if far behind."""
        self._ensure_thread()
        self._wake.set()
        if len(queue) >= self.max_buffer:
            self._wait_for_room(queue)

    def add_run(self, run: Run) -> None:
        with self._cond:
            self._ops.runs.append(run)
        self._ensure_thread()

    def add_params(self, rows: list[tuple[str, str, str]]) -> None:
        with self._cond:
            self._ops.params.extend(rows)
        self._ensure_thread()

    def add_tags(self, rows: list[tuple[str, str, str]]) -> None:
        with self._cond:
            self._ops.tags.extend(rows)
        self._ensure_thread()

    def add_artifacts(self, run_id: str, entries: list[ArtifactEntry]) -> None:
        with self._cond:
            self._ops.artifacts.extend((run_id, entry) for entry in entries)
        self._ensure_thread()

    def add_dataset(self, run_id: str, dataset: Dataset) -> None:
        with self._cond:
            self._ops.datasets.append((run_id, dataset))
        self._ensure_thread()

    def add_environment(self, env: Environment) -> None:
        with self._cond:
            self._ops.environments.append(env)
        self._ensure_thread()

    def add_status(
        self, run_id: str, status: str, end_time: float | None, error: str | None
    ) -> None:
        with self._cond:
            self._ops.statuses.append((run_id, status, end_time, error))
        self._ensure_thread()

    def group(self, run_id: str) -> bool:
        """Called at a run's end, after its status is queued: True when the end is left to
        the background thread, to be committed with the other ends of a quick succession
        within ``group_commit`` seconds; False when the caller must flush now.

        The third and later of run ends less than ``group_commit`` apart are grouped: a
        script's single run, or a few, still commit as each ends; a sweep of many short
        runs pays one transaction per group instead of one per run. Never in a process
        that may end without exit handlers (started by multiprocessing, or forked), and
        not while an earlier write is failing: then the end flushes, and raises why.
        """
        now = time.monotonic()
        with self._cond:
            quick = now - self._last_end < self.group_commit
            self._last_end = now
            self._streak = self._streak + 1 if quick else 0
            if (
                self._streak < 2
                or self._closed
                or self._skips_exit
                or self._failed is not None
                or self._errors
                or self._transient
            ):
                return False
            self._grouped.append(run_id)
            starts_group = self._due is None
            if starts_group:
                self._due = now + self.group_commit
        if starts_group:
            self._ensure_thread()
            self._wake.set()
        return True

    def _wait_for_room(self, queue: deque[Point]) -> None:
        """Bound memory: a producer far ahead of the database waits for the writer."""
        with self._cond:
            while len(queue) >= self.max_buffer and not self._closed:
                self._wake.set()
                self._cond.wait(0.5)

    # -- flushing ---------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """Write everything logged so far, in the calling thread; raise what went wrong."""
        if not self._write_lock.acquire(timeout=-1 if timeout is None else timeout):
            raise StoreError(f"the tracking writer did not finish within {timeout}s")
        try:
            self._write_once()
        finally:
            self._write_lock.release()
        self._raise_errors()

    def close(self) -> None:
        """Flush everything and stop the background thread."""
        self._closed = True
        self._stop.set()
        try:
            self.flush()
        finally:
            self._wake.set()
            thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=30)
            self._thread = None

    def pending_count(self) -> int:
        with self._cond:
            points = sum(len(queue) for queue in self._series.values())
            return points + len(self._ops) + len(self._failed or ())

    def _raise_errors(self) -> None:
        with self._cond:
            errors, self._errors = self._errors + self._transient, []
            self._transient = []
        if errors:
            if all(isinstance(e, Conflict) for e in errors):
                raise Conflict("; ".join(e.message for e in errors))
            raise errors[-1]

    # -- the writing side ---------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None and not self._closed:
            with self._cond:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._loop, name="shipyard-writer", daemon=True
                    )
                    self._thread.start()

    def _loop(self) -> None:
        backoff = self.flush_interval
        while not self._closed:
            self._wake.wait(backoff)
            self._wake.clear()
            due = self._due
            if due is not None:
                # let the group gather: the run ends of the next moment share its commit
                self._stop.wait(max(0.0, due - time.monotonic()))
            with self._write_lock:
                ok = self._write_once()
            backoff = self.flush_interval if ok else min(backoff * 2, 30.0)

    def _take(self) -> WriteBatch:
        with self._cond:
            batch, self._ops = self._ops, WriteBatch()
            self._due = None
            batch.metrics = {
                run_id: [queue.popleft() for _ in range(len(queue))]
                for run_id, queue in self._series.items()
                if queue
            }
            failed, self._failed = self._failed, None
            self._cond.notify_all()  # producers waiting for room
        return batch if failed is None else _concat(failed, batch)

    def _write_once(self) -> bool:
        """Write what is buffered (the caller holds the write lock); keep it if that fails."""
        with self._cond:
            grouped, self._grouped = self._grouped, []
        batch = self._take()
        try:
            written = self._write_batch(batch)
            if written:  # what an earlier write kept was in this batch: stored now
                with self._cond:
                    self._transient = []
            return written
        finally:
            for run_id in grouped:  # ended runs: their emptied queues go
                self.release(run_id)

    def _write_batch(self, batch: WriteBatch) -> bool:
        if not len(batch):
            return True
        try:
            self._write_refused_apart(batch)
        except _PartlyWritten as partly:
            self._keep(partly.rest, partly.error)
            return False
        except ShipyardError as exc:
            self._keep(batch, exc)
            return False
        except Exception as exc:  # a driver error we did not foresee: keep the data anyway
            self._keep(batch, StoreError(f"writing to {self.store.uri} failed: {exc}"))
            return False
        except BaseException:
            # SIGTERM or Ctrl-C in the middle of a write: keep the batch for the exit flush
            with self._cond:
                self._failed = batch if self._failed is None else _concat(self._failed, batch)
            raise
        return True

    def _write_refused_apart(self, batch: WriteBatch) -> None:
        """Write the batch. If the database refuses its data, write each run's share on its
        own, so that one bad item costs only its run's share (reported), never other runs'.

        A transient failure after some shares were written raises _PartlyWritten with the rest.
        """
        try:
            self._report(self.store.write(batch))
            return
        except (InvalidInput, NotFound) as exc:
            parts = _split_by_run(batch)
            if len(parts) == 1:
                self._refused(batch, exc)
                return
        for i, part in enumerate(parts):
            try:
                self._report(self.store.write(part))
            except (InvalidInput, NotFound) as exc:
                self._refused(part, exc)
            except ShipyardError as exc:
                rest = parts[i]
                for later in parts[i + 1 :]:
                    rest = _concat(rest, later)
                raise _PartlyWritten(exc, rest) from exc

    def _report(self, conflicts: list[str]) -> None:
        if conflicts:
            with self._cond:
                self._errors.extend(Conflict(c) for c in conflicts)

    def _refused(self, batch: WriteBatch, exc: InvalidInput | NotFound) -> None:
        runs = sorted(_run_ids(batch))
        whose = f" of run {', '.join(runs)}" if runs else ""
        log.error("shipyard: %d logged items%s were refused: %s", len(batch), whose, exc.message)
        with self._cond:
            self._errors.append(
                type(exc)(f"{len(batch)} logged items{whose} were not stored: {exc.message}")
            )

    def _keep(self, batch: WriteBatch, exc: ShipyardError) -> None:
        log.warning("shipyard: %d buffered items not written yet: %s", len(batch), exc.message)
        with self._cond:
            self._failed = batch if self._failed is None else _concat(self._failed, batch)
            self._transient.append(
                type(exc)(f"{len(batch)} logged items are not stored yet: {exc.message}")
            )


class _PartlyWritten(Exception):
    def __init__(self, error: ShipyardError, rest: WriteBatch) -> None:
        super().__init__(error.message)
        self.error, self.rest = error, rest


def _run_ids(batch: WriteBatch) -> set[str]:
    ids = {r.id for r in batch.runs}
    ids.update(row[0] for row in batch.params)
    ids.update(row[0] for row in batch.tags)
    ids.update(row[0] for row in batch.statuses)
    ids.update(run_id for run_id, points in batch.metrics.items() if points)
    ids.update(run_id for run_id, _ in batch.artifacts)
    ids.update(run_id for run_id, _ in batch.datasets)
    return ids


def _split_by_run(batch: WriteBatch) -> list[WriteBatch]:
    """One batch per run mentioned (environments ride with the first)."""
    parts = []
    for run_id in sorted(_run_ids(batch)):
        parts.append(
            WriteBatch(
                runs=[r for r in batch.runs if r.id == run_id],
                params=[row for row in batch.params if row[0] == run_id],
                tags=[row for row in batch.tags if row[0] == run_id],
                metrics={run_id: batch.metrics[run_id]} if batch.metrics.get(run_id) else {},
                statuses=[row for row in batch.statuses if row[0] == run_id],
                artifacts=[row for row in batch.artifacts if row[0] == run_id],
                datasets=[row for row in batch.datasets if row[0] == run_id],
            )
        )
    if not parts:
        return [batch]
    parts[0].environments = list(batch.environments)
    return parts


def _concat(first: WriteBatch, second: WriteBatch) -> WriteBatch:
    return WriteBatch(
        runs=first.runs + second.runs,
        params=first.params + second.params,
        tags=first.tags + second.tags,
        metrics={
            run_id: first.metrics.get(run_id, []) + second.metrics.get(run_id, [])
            for run_id in first.metrics.keys() | second.metrics.keys()
        },
        statuses=first.statuses + second.statuses,
        artifacts=first.artifacts + second.artifacts,
        datasets=first.datasets + second.datasets,
        environments=first.environments + second.environments,
    )
