"""Prediction logs: buffered off the hot path, written as Parquet blobs, read back for tailing.

The gateway builds a ``LogRecord`` per sampled prediction and hands it to
``PredictionLogger.add``, which only appends to a list. A background thread encodes the
buffer every ``flush_interval`` seconds into one zstd Parquet file per endpoint, stores it in
the content-addressed ``BlobStore`` and records it with ``Store.add_prediction_log``.

Columns: request_id, time (timestamp[us, UTC]: pandas, DuckDB and the CLI show it as a
date without conversion), endpoint, version ("name/N"), role, latency_ms (float64),
status (int32), inputs and outputs (JSON text, null for None), error (nullable).
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput, require

if TYPE_CHECKING:
    import pandas

    from shipyard.artifacts.blobs import BlobStore
    from shipyard.store.base import Store

# An encoded row: the columns in schema order, time still as epoch seconds.
Row = tuple[str, float, str, str, str, float, int, str | None, str | None, str | None]
_INT32 = 2**31


@dataclass(slots=True)
class LogRecord:
    """One prediction, as the hot path builds it; inputs and outputs are encoded later."""

    request_id: str
    time: float  # epoch seconds
    endpoint: str
    version: str  # "name/N"
    role: str  # primary | canary | shadow
    latency_ms: float
    status: int  # the HTTP status the model's answer gave
    inputs: Any  # JSON-able, or the request body's bytes (stored as their text)
    outputs: Any  # JSON-able predictions, or None
    error: str | None = None


class PredictionLogger:
    """Buffers LogRecords and writes them in batches from a background thread."""

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        *,
        gateway: str = "",
        flush_interval: float = 2.0,
        max_rows_per_file: int = 50_000,
        max_buffer: int = 200_000,
    ) -> None:
        if flush_interval <= 0 or max_rows_per_file < 1 or max_buffer < 1:
            raise InvalidInput(
                "flush_interval must be positive; max_rows_per_file and max_buffer at least 1"
            )
        self.store, self.blobs, self.gateway = store, blobs, gateway
        self.flush_interval = flush_interval
        self.max_rows_per_file = max_rows_per_file
        self.max_buffer = max_buffer
        self.dropped = 0  # records refused because the buffer was full, or not encodable
        self.written = 0
        self._records: list[LogRecord] = []
        self._pending: list[Row] = []  # encoded rows a failed write left for the next flush
        # Rows held outside _records (pending plus the batch being flushed), so add()
        # bounds the total without looking at the flush's lists.
        self._held = 0
        self._lock = threading.Lock()  # guards _records, _held and dropped
        self._flush_lock = threading.Lock()  # one flush at a time keeps rows in order
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, record: LogRecord) -> None:
        """Buffer a record (no I/O); when the buffer is full, drop it and count it."""
        with self._lock:
            if len(self._records) + self._held >= self.max_buffer:
                self.dropped += 1
            else:
                self._records.append(record)

    def start(self) -> None:
        """Start the daemon thread that flushes every ``flush_interval`` seconds."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="shipyard-prediction-logs", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and write what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()

    def flush(self) -> int:
        """Write the buffer, one file per endpoint; return the rows written.

        Rows whose write fails stay buffered for the next flush, with one line on stderr.
        """
        with self._flush_lock:
            with self._lock:
                batch, self._records = self._records, []
                self._held += len(batch)
            rows = self._pending + self._encode(batch)
            written, failed, errors = 0, [], []
            for endpoint, chunk in _chunks(rows, self.max_rows_per_file):
                try:
                    self._write(endpoint, chunk)
                except Exception as exc:  # a store or blob store that is down, full, ...
                    failed.extend(chunk)
                    errors.append(f"{endpoint}: {_one_line(exc)}")
                else:
                    written += len(chunk)
            self._pending = failed
            with self._lock:
                self._held = len(failed)
                self.written += written
            if errors:
                print(
                    f"shipyard gateway: could not write {len(failed)} prediction log rows, "
                    f"keeping them for the next flush ({'; '.join(errors)})"[:1000],
                    file=sys.stderr,
                )
            return written

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                self.flush()
            except Exception as exc:  # a bug must not end logging for the process
                print(f"shipyard gateway: prediction logs: {_one_line(exc)}", file=sys.stderr)

    def _encode(self, records: list[LogRecord]) -> list[Row]:
        rows, bad = [], 0
        for r in records:
            try:
                rows.append(_row(r))
            except Exception:  # a field whose str() or float() fails: drop just that record
                bad += 1
        if bad:
            with self._lock:
                self.dropped += bad
                self._held -= bad
            print(
                f"shipyard gateway: dropped {bad} prediction log records with a malformed "
                "request_id, time, latency or status",
                file=sys.stderr,
            )
        return rows

    def _write(self, endpoint: str, rows: list[Row]) -> None:
        pa: Any = require("pyarrow", "data")
        pq: Any = require("pyarrow.parquet", "data")
        columns = list(zip(*rows, strict=True))
        times = columns[1]
        columns[1] = tuple(round(t * 1_000_000) for t in times)
        schema = _schema(pa)
        table = pa.Table.from_arrays(
            [pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
        )
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        digest, _ = self.blobs.put_bytes(sink.getvalue().to_pybytes())
        self.store.add_prediction_log(
            endpoint,
            digest=digest,
            rows=len(rows),
            first_time=min(times),
            last_time=max(times),
            gateway=self.gateway,
        )


def read_logs(
    store: Store,
    blobs: BlobStore,
    endpoint: str,
    *,
    after_id: int = 0,
    limit_files: int = 1000,
    last: int | None = None,
) -> tuple[pandas.DataFrame, int]:
    """Rows of the endpoint's log files after ``after_id`` in time order, and the newest
    file id seen (pass it back as ``after_id`` to follow); ``last`` keeps the newest N rows.

    Reads with pyarrow through ``BlobStore.open``, so it works on any blob store (S3 too);
    DuckDB would need local paths and gains nothing on files this small.
    """
    if last is not None and last < 0:
        raise InvalidInput(f"last must be 0 or more, not {last}")
    pa: Any = require("pyarrow", "data")
    pq: Any = require("pyarrow.parquet", "data")
    files = store.list_prediction_logs(endpoint, after_id=after_id, limit=limit_files)
    newest = files[-1].id if files else after_id
    if last is not None:
        # Only the newest files that hold the last rows need reading.
        needed, count = [], 0
        for f in reversed(files):
            if count >= last:
                break
            needed.append(f)
            count += f.rows
        files = needed[::-1]
    tables = []
    for f in files:
        with blobs.open(f.digest) as stream:
            tables.append(pq.read_table(stream))
    table = pa.concat_tables(tables) if tables else _schema(pa).empty_table()
    frame = table.to_pandas()
    # Stable, so rows with equal times keep their file order.
    frame = frame.sort_values("time", kind="stable", ignore_index=True)
    if last is not None:
        frame = frame.tail(last).reset_index(drop=True)
    return frame, newest


def follow_logs(
    store: Store,
    blobs: BlobStore,
    endpoint: str,
    *,
    last: int = 20,
    poll: float = 1.0,
    stop: Callable[[], bool] | None = None,
) -> Iterator[pandas.DataFrame]:
    """The newest ``last`` rows, then new rows as files appear, until ``stop()`` is true."""
    frame, cursor = read_logs(store, blobs, endpoint, last=last)
    if len(frame):
        yield frame
    while stop is None or not stop():
        frame, cursor = read_logs(store, blobs, endpoint, after_id=cursor)
        if len(frame):
            yield frame
        else:
            time.sleep(poll)


def _schema(pa: Any) -> Any:
    return pa.schema(
        [
            ("request_id", pa.string()),
            ("time", pa.timestamp("us", tz="UTC")),
            ("endpoint", pa.string()),
            ("version", pa.string()),
            ("role", pa.string()),
            ("latency_ms", pa.float64()),
            ("status", pa.int32()),
            ("inputs", pa.string()),
            ("outputs", pa.string()),
            ("error", pa.string()),
        ]
    )


def _row(r: LogRecord) -> Row:
    status = int(r.status)
    if not -_INT32 <= status < _INT32:
        raise ValueError(f"status {status} does not fit in int32")
    when = float(r.time)
    if not math.isfinite(when):
        raise ValueError(f"time {when} is not a moment")
    return (
        str(r.request_id),
        when,
        str(r.endpoint),
        str(r.version),
        str(r.role),
        float(r.latency_ms),
        status,
        _to_json(r.inputs),
        _to_json(r.outputs),
        None if r.error is None else str(r.error),
    )


def _chunks(rows: list[Row], size: int) -> Iterator[tuple[str, list[Row]]]:
    by_endpoint: dict[str, list[Row]] = {}
    for row in rows:
        by_endpoint.setdefault(row[2], []).append(row)
    for endpoint, group in by_endpoint.items():
        for start in range(0, len(group), size):
            yield endpoint, group[start : start + size]


def _to_json(value: Any) -> str | None:
    """JSON text for a value; a value that cannot be encoded becomes a note saying why."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        # a request body kept as the client sent it (JSON or CSV): stored as its text,
        # which costs nothing on the hot path and says exactly what came in
        return bytes(value).decode("utf-8", errors="replace")
    try:
        # The C encoder handles plain data fast; NaN, infinity and odd keys fall through.
        return json.dumps(value, allow_nan=False, default=_default, separators=(",", ":"))
    except (TypeError, ValueError):
        pass
    try:
        return json.dumps(_plain(value), allow_nan=False, separators=(",", ":"))
    except Exception as exc:  # anything at all: a bad record must not stop the flush
        return json.dumps({"unencodable": _one_line(exc)})


def _default(value: Any) -> Any:
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return None
    if hasattr(value, "tolist"):  # numpy arrays and scalars, pandas Series and Index
        return value.tolist()
    if hasattr(value, "to_dict"):  # a pandas DataFrame: one object per row
        return value.to_dict(orient="records")
    if hasattr(value, "isoformat"):  # datetime, date, pandas Timestamp
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _plain(value: Any) -> Any:
    """The value as plain JSON data, NaN and infinity as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return _plain(_default(value))


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


__all__ = ["LogRecord", "PredictionLogger", "follow_logs", "read_logs"]
