"""The gateway's state and its background loop: what it serves, kept in step with the Store.

A background thread polls the Store's serving revision a few times a second. When it moved,
the gateway reads every endpoint, starts loading the deployments it does not hold yet (in
worker threads, so serving goes on), and swaps in new routes. Once a second it writes what
each deployment recorded to the Store, reports itself (a heartbeat naming what it has loaded
and whether each load worked), and lets the rollout controller judge running rollouts.
Everything it decides from is in the Store, so any number of gateways on one store agree,
and a restarted one picks up where the last one was.
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from shipyard.artifacts.blobs import BlobStore
from shipyard.gateway import controller
from shipyard.gateway.loading import Opener, Served, load, local_opener
from shipyard.gateway.logs import LogRecord, PredictionLogger
from shipyard.gateway.routing import Route, build_route
from shipyard.gateway.stats import agree
from shipyard.store.base import Store
from shipyard.store.entities import Endpoint

STATS_KEEP_S = 7 * 24 * 3600  # figures older than this are deleted
PRUNE_EVERY_S = 600.0
SHADOW_BATCH = 256  # most queued shadow requests answered by one predict call
SHADOW_LINGER_S = 0.02  # how long the first copy waits for others to join its batch


@dataclass
class ShadowJob:
    """A request copied to the shadow, with what the primary made of it (parsed again for
    the shadow only when its signature differs)."""

    route: Route
    parse: Any  # (body, signature) -> model input
    body: bytes
    primary_outputs: Any
    data: Any  # the input as parsed for the deployment that answered
    signature: Any  # that deployment's signature: the shadow reuses `data` when it has the same
    request_id: str
    log: bool


class Gateway:
    """Serves every endpoint in ``store``; ``start`` begins following it."""

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        *,
        address: str = "",
        opener: Opener | None = None,
        trust: bool = False,
        poll_interval: float = 0.25,
        tick_interval: float = 1.0,
        shadow_queue: int = 1000,
        max_body: int = 10 * 1024 * 1024,
        run_controller: bool = True,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.address = address
        # host names can be long (cloud FQDNs, pod names): the id must fit its 64-char column
        self.id = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.started_at = time.time()
        self.opener = opener or local_opener(store, blobs, trust=trust)
        self.poll_interval = poll_interval
        self.tick_interval = tick_interval
        self.max_body = max_body
        self.run_controller = run_controller
        self.routes: dict[str, Route] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.served: dict[int, Served] = {}
        self.revision = -1
        self.logger = PredictionLogger(store, blobs, gateway=self.id)
        self.shadow_jobs: queue.Queue[ShadowJob | None] = queue.Queue(maxsize=shadow_queue)
        self.shadow_dropped = 0
        self._lock = threading.Lock()
        self._loader = ThreadPoolExecutor(max_workers=2, thread_name_prefix="shipyard-load")
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._next_prune = 0.0

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self.sync()
        self.logger.start()
        for target, name in ((self._follow, "sync"), (self._shadow_worker, "shadow")):
            thread = threading.Thread(target=target, name=f"shipyard-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self.shadow_jobs.put_nowait(None)  # the worker also sees _stop within a linger
        for thread in self._threads:
            thread.join(timeout=10)
        self._loader.shutdown(wait=False, cancel_futures=True)
        try:
            self.flush_stats()
            self.store.remove_gateway(self.id)
        except Exception as exc:
            print(f"shipyard gateway: on stop: {exc}", file=sys.stderr)
        self.logger.close()
        for served in self.served.values():
            if served.predictor is not None:
                served.predictor.close()

    def wait_ready(self, timeout: float = 60.0) -> bool:
        """Wait until every endpoint's primary has loaded (or failed to)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready() or all(
                s.state != "loading"
                for s in list(self.served.values())
                if s.deployment.role == "primary"
            ):
                return self.ready()
            time.sleep(0.02)
        return False

    def ready(self) -> bool:
        return all(name in self.routes for name in self.endpoints)

    # -- following the store -------------------------------------------------------------

    def _follow(self) -> None:
        next_tick = time.monotonic() + self.tick_interval
        while not self._stop.wait(self.poll_interval):
            try:
                self.sync()
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self.tick_interval
                    self.tick()
            except Exception as exc:  # the store may be briefly unreachable: keep serving
                print(f"shipyard gateway: {type(exc).__name__}: {exc}", file=sys.stderr)

    def sync(self) -> None:
        """Reload the serving configuration if it changed since the last look."""
        revision = self.store.serving_revision()
        if revision == self.revision:
            return
        endpoints = {e.name: e for e in self.store.list_endpoints()}
        with self._lock:
            self.revision = revision
            self.endpoints = endpoints
            wanted = {d.id: d for e in endpoints.values() for d in e.deployments}
            for deployment_id, deployment in wanted.items():
                served = self.served.get(deployment_id)
                if served is None:
                    served = self.served[deployment_id] = Served(deployment)
                    self._loader.submit(self._load, served)
                else:
                    served.deployment = deployment
            self._rebuild_locked()
            released = self._release_locked(wanted)
        for served in released:
            if served.predictor is not None:
                served.predictor.close()

    def lost(self, served: Served, error: str) -> None:
        """A deployment that can no longer answer (its worker process died): out of the
        routes at once, then loaded again (a new worker) in the background."""
        with self._lock:
            if served.state != "ready" or self.served.get(served.id) is not served:
                return  # already being replaced, or released: nobody needs a new worker
            dead, served.predictor = served.predictor, None
            served.state, served.error = "loading", f"{error}; starting it again"
            self._rebuild_locked()
        print(f"shipyard gateway: {served.label} {error}; starting it again", file=sys.stderr)
        if dead is not None:
            dead.close()
        self._loader.submit(self._load, served)

    def failure(self, endpoint: str) -> str | None:
        """Why an endpoint has no route here: its primary failed to load (None: loading)."""
        found = self.endpoints.get(endpoint)
        if found is None:
            return None
        served = self.served.get(found.primary.id)
        return served.error if served is not None and served.state == "failed" else None

    def _load(self, served: Served) -> None:
        load(served, self.opener)
        with self._lock:
            orphan = self.served.get(served.id) is not served
        if orphan:  # released while it loaded (its rollout ended meanwhile): let it go
            if served.predictor is not None:
                served.predictor.close()
            return
        if served.state == "failed":
            print(
                f"shipyard gateway: {served.label} on {served.deployment.endpoint} failed to "
                f"load: {served.error}",
                file=sys.stderr,
            )
        with self._lock:
            self._rebuild_locked()
        try:
            self.heartbeat()  # the controller waits for this to start a step
        except Exception as exc:
            print(f"shipyard gateway: heartbeat: {exc}", file=sys.stderr)

    def _rebuild_locked(self) -> None:
        routes = {}
        for name, endpoint in self.endpoints.items():
            route = build_route(endpoint, self.served, self.routes.get(name))
            if route is not None:
                routes[name] = route
        self.routes = routes  # swapped whole: a request sees the old routes or the new ones

    def _release_locked(self, wanted: dict[int, Any]) -> list[Served]:
        """Drop what no endpoint wants any more; the caller closes them outside the lock
        (stopping a worker process takes seconds, and requests wait on this lock)."""
        in_use = {s.id for r in self.routes.values() for s in r.deployments}
        return [
            self.served.pop(d) for d in list(self.served) if d not in wanted and d not in in_use
        ]

    # -- once a second -------------------------------------------------------------------

    def tick(self) -> None:
        now = self.flush_stats()
        self.heartbeat()
        if self.run_controller:
            controller.tick_all(self.store, now=now)
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY_S
            self.store.prune_stats(before=now - STATS_KEEP_S)

    def flush_stats(self) -> float:
        now = time.time()
        rows = []
        for served in list(self.served.values()):
            snapshot = served.recorder.snapshot()
            if snapshot is not None:
                rows.append((served.id, now, snapshot))
        self.store.add_stats(self.id, rows)
        return now

    def heartbeat(self) -> None:
        info = {
            "deployments": {str(s.id): s.describe() for s in list(self.served.values())},
            "shadow_dropped": self.shadow_dropped,
            "logs_dropped": self.logger.dropped,
        }
        self.store.heartbeat(
            self.id, address=self.address, pid=os.getpid(), started_at=self.started_at, info=info
        )

    # -- shadow traffic ------------------------------------------------------------------

    def copy_to_shadow(self, job: ShadowJob) -> None:
        """Queue a request for the shadow; drop (and count) it when the queue is full, so
        the shadow never slows the primary."""
        try:
            self.shadow_jobs.put_nowait(job)
        except queue.Full:
            self.shadow_dropped += 1

    def _shadow_worker(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.shadow_jobs.get(timeout=0.5)
            except queue.Empty:
                continue
            if job is None:
                return
            batch = [job]
            # let copies gather, then answer them in one predict call: a model takes 100
            # rows for about the cost of one, so the shadow keeps up while taking the GIL
            # from the event loop far less often; a shadow's answers are never waited for
            self._stop.wait(SHADOW_LINGER_S)
            while len(batch) < SHADOW_BATCH:
                try:
                    more = self.shadow_jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._shadow_safely(batch)
                    return
                batch.append(more)
            self._shadow_safely(batch)

    def _shadow_safely(self, batch: list[ShadowJob]) -> None:
        try:
            self._shadow_batch(batch)
        except Exception as exc:  # the shadow must go on: one bad batch is dropped, counted
            self.shadow_dropped += len(batch)
            print(f"shipyard gateway: shadow batch dropped: {exc!r}", file=sys.stderr)

    def _shadow_batch(self, jobs: list[ShadowJob]) -> None:
        by_shadow: dict[int, list[ShadowJob]] = {}
        for job in jobs:
            shadow = job.route.shadow
            if shadow is not None and shadow.predictor is not None:
                by_shadow.setdefault(shadow.id, []).append(job)
        for group in by_shadow.values():
            shadow = group[0].route.shadow
            if shadow is None or shadow.predictor is None:  # lost meanwhile (a dead worker)
                continue
            results = _predict_each(shadow, group)
            for job, (outputs, error, latency) in zip(group, results, strict=True):
                shadow.recorder.record(latency, error is not None, outputs)
                shadow.count(latency, error is not None)
                if error is None:
                    shadow.recorder.record_shadow(*agree(job.primary_outputs, outputs))
                if job.log:
                    self.logger.add(
                        LogRecord(
                            request_id=job.request_id,
                            time=time.time(),
                            endpoint=job.route.endpoint,
                            version=shadow.label,
                            role="shadow",
                            latency_ms=latency * 1000,
                            status=500 if error else 200,
                            inputs=None,
                            outputs=outputs,
                            error=error,
                        )
                    )


Outcome = tuple[Any, "str | None", float]  # outputs, error, seconds


def _predict_each(shadow: Served, jobs: list[ShadowJob]) -> list[Outcome]:
    """Each job's answer from the shadow: one predict call on all of their rows when their
    inputs stack, else one call per job. A batch's time is shared out per row."""
    predictor = shadow.predictor
    assert predictor is not None  # checked by the caller just before
    parsed: list[Any] = []
    failed: dict[int, str] = {}
    for i, job in enumerate(jobs):
        if job.signature == shadow.signature:
            parsed.append(job.data)  # the shadow takes what the primary took: no second parse
            continue
        try:
            parsed.append(job.parse(job.body, shadow.signature))
        except Exception as exc:
            failed[i] = f"{type(exc).__name__}: {exc}"
            parsed.append(None)
    good = [i for i in range(len(jobs)) if i not in failed]
    out: list[Outcome] = [(None, failed.get(i), 0.0) for i in range(len(jobs))]
    stacked = _stack([parsed[i] for i in good]) if len(good) > 1 else None
    if stacked is not None:
        data, sizes = stacked
        started = time.perf_counter()
        try:
            outputs = predictor.predict(data)
            pieces = _split(outputs, sizes)
        except Exception:
            pieces = None  # one bad row must not fail the others: predict them one by one
        if pieces is not None:
            each = (time.perf_counter() - started) / len(good)
            for i, piece in zip(good, pieces, strict=True):
                out[i] = (piece, None, each)
            return out
    for i in good:
        started = time.perf_counter()
        try:
            out[i] = (predictor.predict(parsed[i]), None, time.perf_counter() - started)
        except Exception as exc:
            out[i] = (None, f"{type(exc).__name__}: {exc}", time.perf_counter() - started)
    return out


def _stack(inputs: list[Any]) -> tuple[Any, list[int]] | None:
    """The inputs as one frame or array, with each one's row count; None if they differ in
    kind, columns or trailing shape."""
    first = inputs[0]
    sizes = [len(x) for x in inputs]
    if hasattr(first, "columns"):
        import pandas as pd

        if any(not hasattr(x, "columns") or list(x.columns) != list(first.columns) for x in inputs):
            return None
        return pd.concat(inputs, ignore_index=True), sizes
    import numpy as np

    if any(
        not isinstance(x, np.ndarray) or x.shape[1:] != first.shape[1:] or x.dtype != first.dtype
        for x in inputs
    ):
        return None
    return np.concatenate(inputs), sizes


def _split(outputs: Any, sizes: list[int]) -> list[Any] | None:
    """A batch's outputs cut back into each input's rows; None if they do not line up."""
    if len(outputs) != sum(sizes):
        return None
    pieces, start = [], 0
    for size in sizes:
        pieces.append(outputs[start : start + size])
        start += size
    return pieces
