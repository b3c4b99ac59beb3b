"""ActiveRun: the handle a user logs through while a run is open."""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import traceback
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from shipyard.errors import Conflict, InvalidInput, ShipyardError
from shipyard.store import validation as v
from shipyard.store.entities import ArtifactEntry, Run

if TYPE_CHECKING:
    from shipyard.tracking.models import LoggedModel
    from shipyard.tracking.tracker import Tracker

_now = time.time
_STEP_MIN, _STEP_MAX = v.INT64
log = logging.getLogger("shipyard.tracking")


class ActiveRun:
    """An open run. Use as a context manager, or call ``end()``."""

    def __init__(self, tracker: Tracker, record: Run, *, resumed: bool = False) -> None:
        self.id = record.id
        self.name = record.name
        self.experiment_id = record.experiment_id
        self.parent_id = record.parent_id
        self.status = "running"
        self._tracker = tracker
        self._points = tracker.writer.series(record.id)
        self._flush_size = tracker.writer.flush_size
        self._params: dict[str, str] = dict(record.params)
        self._metric_keys: set[str] = set()
        self._next_step: dict[str, int] = {}
        self._resumed = resumed
        self._capture: threading.Thread | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<ActiveRun {self.id} {self.name!r} {self.status}>"

    # -- metrics ------------------------------------------------------------------------------

    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: float | None = None
    ) -> None:
        """Record one point; ``step`` defaults to one past this key's previous step."""
        if self.status != "running":
            raise self._ended_error()
        if key not in self._metric_keys:
            self._first_use(key)
        if type(value) is not float:
            value = v.check_metric_value(key, value)
        if step is None:
            step = self._next_step[key]
        elif type(step) is not int or not _STEP_MIN <= step <= _STEP_MAX:
            step = v.check_step(key, step)
        self._next_step[key] = step + 1
        timestamp = _now() if timestamp is None else v.check_timestamp(key, timestamp)
        points = self._points
        points.append((key, value, step, timestamp))
        if len(points) >= self._flush_size:
            self._tracker.writer.full(points)

    def _first_use(self, key: str) -> None:
        v.check_key(key, "metric")
        self._metric_keys.add(key)
        next_step = 0
        if self._resumed:
            from shipyard.errors import NotFound

            try:
                history = self._tracker.store.get_metric_history(self.id, key)
                next_step = history[-1].step + 1 if history else 0
            except NotFound:
                pass
        self._next_step[key] = next_step

    def log_metrics(
        self, metrics: Mapping[str, float], step: int | None = None, timestamp: float | None = None
    ) -> None:
        """Record several metrics at once (the same step and time for all)."""
        if not isinstance(metrics, Mapping):
            raise InvalidInput(f"log_metrics takes a mapping of key to number, got {metrics!r:.80}")
        ts = _now() if timestamp is None else timestamp
        for key, value in metrics.items():
            self.log_metric(key, value, step, ts)

    # -- params and tags ----------------------------------------------------------------------

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record parameters. Re-logging the same value is fine; another value -> Conflict."""
        if self.status != "running":
            raise self._ended_error()
        if not isinstance(params, Mapping):
            raise InvalidInput(f"log_params takes a mapping of key to value, got {params!r:.80}")
        rows = []
        for key, value in params.items():
            v.check_key(key, "param")
            text = v.param_value(key, value)
            old = self._params.get(key)
            if old is not None and old != text:
                raise Conflict(
                    f"param {key!r} of run {self.id} is already {old!r}; "
                    f"refusing to change it to {text!r}"
                )
            if old is None:
                rows.append((self.id, key, text))
        with self._lock:
            for _, key, text in rows:
                self._params[key] = text
        if rows:
            self._tracker.writer.add_params(rows)

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if self.status != "running":
            raise self._ended_error()
        if not isinstance(tags, Mapping):
            raise InvalidInput(f"set_tags takes a mapping of key to value, got {tags!r:.80}")
        rows = [(self.id, v.check_key(k, "tag"), v.tag_value(k, val)) for k, val in tags.items()]
        self._tracker.writer.add_tags(rows)

    # -- artifacts and datasets ---------------------------------------------------------------

    def log_artifact(
        self, local_path: str | os.PathLike[str], path: str | None = None
    ) -> list[str]:
        """Store a file, or a folder recursively; ``path`` is where it goes in the run."""
        from shipyard.artifacts.paths import iter_local_files

        self._check_open()
        files = iter_local_files(local_path, path)
        sizes = [src.stat().st_size for _, src in files]
        put = self._tracker.blobs.put_file
        if sum(sizes) < PROGRESS_BYTES and len(files) < PROGRESS_FILES:
            entries = [ArtifactEntry(dest, *put(src)) for dest, src in files]
        else:
            entries = _put_with_progress(put, files, sizes, str(local_path))
        self._record(entries)
        return [e.path for e in entries]

    def log_bytes(self, data: bytes, path: str) -> str:
        from shipyard.artifacts.paths import normalize_artifact_path

        self._check_open()
        dest = normalize_artifact_path(path)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidInput(f"log_bytes takes bytes, got {type(data).__name__}")
        self._record([ArtifactEntry(dest, *self._tracker.blobs.put_bytes(bytes(data)))])
        return dest

    def log_text(self, text: str, path: str) -> str:
        if not isinstance(text, str):
            raise InvalidInput(f"log_text takes a str, got {type(text).__name__}")
        return self.log_bytes(text.encode("utf-8"), path)

    def log_dict(self, obj: Mapping[str, Any] | list[Any], path: str) -> str:
        """Store a dict or list as JSON (or YAML when the path ends in .yaml/.yml)."""
        if not isinstance(path, str):
            raise InvalidInput(f"log_dict needs a path string, got {path!r}")
        if path.endswith((".yaml", ".yml")):
            from shipyard.errors import require

            yaml: Any = require("yaml", "yaml")
            text = yaml.safe_dump(obj, sort_keys=False)
        else:
            try:
                text = json.dumps(obj, indent=2, default=_json_default, allow_nan=True)
            except (TypeError, ValueError) as exc:
                raise InvalidInput(f"cannot write {path!r} as JSON: {exc}") from None
        return self.log_text(text, path)

    def log_figure(self, figure: Any, path: str) -> str:
        """Store a matplotlib figure as an image (format from the path's extension)."""
        import io

        if not hasattr(figure, "savefig"):
            raise InvalidInput(f"log_figure takes a matplotlib figure, got {type(figure).__name__}")
        buf = io.BytesIO()
        ext = os.path.splitext(path)[1].lstrip(".") or "png"
        figure.savefig(buf, format=ext, bbox_inches="tight")
        return self.log_bytes(buf.getvalue(), path)

    def log_dataset(
        self, data: Any, name: str, *, context: str = "training", source: str = ""
    ) -> Any:
        """Record a data set's digest, schema, row count and summary statistics."""
        from shipyard.tracking.datasets import describe_dataset

        self._check_open()
        v.check_name(name, "dataset")
        dataset = describe_dataset(data, name, context=context, source=source)
        self._tracker.writer.add_dataset(self.id, dataset)
        return dataset

    def log_model(
        self,
        model: Any,
        name: str,
        *,
        input_example: Any = None,
        register: bool = True,
        artifact_path: str | None = None,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
    ) -> LoggedModel:
        """Save ``model`` by its flavor under ``name`` in this run and, unless
        ``register=False``, register it as the next version of the model ``name``.

        ``input_example`` (a few rows of input) gives the signature the loaded model enforces.
        """
        from shipyard.tracking.models import log_model

        return log_model(
            self,
            model,
            name,
            input_example=input_example,
            register=register,
            artifact_path=artifact_path,
            description=description,
            tags=tags,
        )

    def _record(self, entries: list[ArtifactEntry]) -> None:
        # The blobs are stored already; the manifest entries go with the next batch.
        if entries:
            self._tracker.writer.add_artifacts(self.id, entries)

    # -- reading back ------------------------------------------------------------------------

    @property
    def info(self) -> Run:
        """The run as stored right now (flushes what is buffered first)."""
        self._tracker.writer.flush()
        return self._tracker.store.get_run(self.id)

    def get_metric_history(self, key: str) -> list[Any]:
        self._tracker.writer.flush()
        return self._tracker.store.get_metric_history(self.id, key)

    # -- ending ------------------------------------------------------------------------------

    def end(self, status: str = "finished", error: BaseException | str | None = None) -> None:
        """End the run with a status; idempotent. Everything logged is stored on return;
        inside ``sy.batched()``, when the block ends; for the third and later of run ends
        in quick succession (a sweep of short runs), together with the others by the
        background writer, at most ``SHIPYARD_GROUP_COMMIT`` seconds later (and at exit,
        SIGTERM or Ctrl-C, like everything buffered)."""
        if status not in ("finished", "failed", "killed"):
            raise InvalidInput(f"a run ends as finished, failed or killed; got {status!r}")
        with self._lock:
            if self.status != "running":
                return
            self.status = status
        if self._capture is not None and self._capture is not threading.current_thread():
            self._capture.join(timeout=10)
        self._tracker.open_runs.pop(self.id, None)
        from shipyard.tracking.fluent import _pop_active

        _pop_active(self)
        writer = self._tracker.writer
        writer.add_status(self.id, status, _now(), _describe(error))
        if writer.deferred:  # inside sy.batched(): committed with the others at its end
            writer.ended.append(self.id)
            return
        # one of many quick run ends: committed with the others (not a resumed run, whose
        # params may conflict with stored ones: that must raise here)
        if not self._resumed and writer.group(self.id):
            return
        try:
            writer.flush()
        finally:
            writer.release(self.id)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        from shipyard.tracking.fluent import _pop_active
        from shipyard.tracking.tracker import status_for

        try:
            self.end(status_for(exc), error=exc)
        except ShipyardError as store_error:
            if exc is None:
                raise
            # The block's own exception is the one to see; the store's goes to the log.
            log.warning("shipyard: ending run %s failed: %s", self.id, store_error)
        finally:
            _pop_active(self)

    def _check_open(self) -> None:
        if self.status != "running":
            raise self._ended_error()

    def _ended_error(self) -> Conflict:
        return Conflict(
            f"run {self.id} is {self.status}; it takes no more data "
            f"(resume it with sy.start_run(run_id={self.id!r}))"
        )


PROGRESS_BYTES = 64 * 1024 * 1024
PROGRESS_FILES = 500


def _put_with_progress(
    put: Any, files: list[tuple[str, Any]], sizes: list[int], label: str
) -> list[ArtifactEntry]:
    """Store many or large files with a progress bar on stderr (bytes done, rate, time left)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    entries = []
    columns = (
        TextColumn("[bold]storing[/] {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    console = Console(stderr=True)
    # In a terminal the bar disappears when done; in a log file its final state stays.
    with Progress(*columns, console=console, transient=console.is_terminal) as progress:
        task = progress.add_task(label, total=sum(sizes))
        for (dest, src), size in zip(files, sizes, strict=True):
            entries.append(ArtifactEntry(dest, *put(src)))
            progress.advance(task, size)
    return entries


def _describe(error: BaseException | str | None) -> str | None:
    if error is None or isinstance(error, str):
        return error
    if isinstance(error, SystemExit) and error.code in (None, 0):
        return None
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))[-20000:]


def _json_default(obj: Any) -> Any:
    for attr in ("tolist", "item"):  # numpy arrays and scalars
        if hasattr(obj, attr):
            return getattr(obj, attr)()
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
