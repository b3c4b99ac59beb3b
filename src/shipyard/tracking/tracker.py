"""The Tracker: one store, one blob store and one writer per (store URI, artifact root)."""

from __future__ import annotations

import atexit
import functools
import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from shipyard.config import get_settings

if TYPE_CHECKING:
    from shipyard.artifacts.blobs import BlobStore
    from shipyard.store.base import Store
    from shipyard.tracking.run import ActiveRun
    from shipyard.tracking.writer import Writer


class Terminated(SystemExit):
    """Raised in the main thread on SIGTERM so that open runs end as killed, flushed."""


class Tracker:
    """Everything a run needs to record itself; shared by all runs on the same store."""

    def __init__(self, uri: str, artifact_root: str) -> None:
        from shipyard.store import open_store
        from shipyard.tracking.writer import Writer

        settings = get_settings()
        self.uri = uri
        self.store: Store = open_store(uri)
        self.artifact_root = artifact_root
        self.writer: Writer = Writer(
            self.store,
            flush_interval=settings.flush_interval,
            flush_size=settings.flush_size,
            max_buffer=settings.max_buffer,
            group_commit=settings.group_commit,
        )
        self.open_runs: dict[str, ActiveRun] = {}

    @functools.cached_property
    def blobs(self) -> BlobStore:
        from shipyard.artifacts.blobs import BlobStore

        return BlobStore(self.artifact_root)

    def close(self) -> None:
        self.writer.close()


_trackers: dict[tuple[str, str], Tracker] = {}
_lock = threading.Lock()
_last_exception: BaseException | None = None


def get_tracker(uri: str | None = None, artifacts: str | None = None) -> Tracker:
    """The Tracker for the given (or configured) store and artifact root."""
    settings = get_settings()
    key = (uri or settings.store_uri(), artifacts or settings.artifact_root())
    tracker = _trackers.get(key)
    if tracker is None:
        with _lock:
            tracker = _trackers.get(key)
            if tracker is None:
                tracker = _trackers[key] = Tracker(*key)
                _install_exit_hooks()
    return tracker


_hooks_installed = False


def _install_exit_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_at_exit)
    previous_hook = sys.excepthook

    def remember(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        global _last_exception
        _last_exception = exc
        previous_hook(kind, exc, tb)

    sys.excepthook = remember
    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):  # not allowed here (embedded interpreters)
            pass


def _on_sigterm(signum: int, frame: FrameType | None) -> Any:
    # Unwind the main thread like Ctrl-C does: `with` blocks end their runs as killed, and
    # the exit hook flushes whatever is still buffered and ends the runs left open as killed
    # (SystemExit never reaches sys.excepthook, so it is remembered here).
    # 128 + signal number, as a shell reports.
    global _last_exception
    _last_exception = Terminated(128 + signum)
    raise _last_exception


def _at_exit() -> None:
    """Normal interpreter exit: end runs left open and store everything still buffered."""
    for tracker in list(_trackers.values()):
        for run in list(tracker.open_runs.values())[::-1]:
            try:
                run.end(status_for(_last_exception), error=_last_exception)
            except Exception as exc:  # keep closing the others
                print(f"shipyard: could not end run {run.id}: {exc}", file=sys.stderr)
        try:
            tracker.close()
        except Exception as exc:
            print(f"shipyard: {exc}", file=sys.stderr)


def status_for(exc: BaseException | None) -> str:
    """The status a run ends with when it is left because of ``exc`` (None: normally)."""
    if exc is None:
        return "finished"
    if isinstance(exc, (KeyboardInterrupt, Terminated)):
        return "killed"
    if isinstance(exc, SystemExit):
        return "finished" if exc.code in (None, 0) else "failed"
    return "failed"
