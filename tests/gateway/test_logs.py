"""Prediction logs: buffered, written as Parquet blobs per endpoint, read back and followed."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.artifacts.blobs import BlobStore
from shipyard.gateway.logs import LogRecord, PredictionLogger, follow_logs, read_logs
from shipyard.store import open_store
from shipyard.store.base import Store

T0 = 1_700_000_000.0


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "shipyard.db"


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{db}")
    yield s
    s.close()


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(str(tmp_path / "artifacts"))


@pytest.fixture
def logger(store: Store, blobs: BlobStore) -> Iterator[PredictionLogger]:
    log = PredictionLogger(store, blobs, gateway="gw-1", flush_interval=3600)
    yield log
    log.close()


def record(i: int, endpoint: str = "iris", **changes: Any) -> LogRecord:
    fields: dict[str, Any] = {
        "request_id": f"req-{i}",
        "time": T0 + i,
        "endpoint": endpoint,
        "version": f"{endpoint}-clf/1",
        "role": "primary",
        "latency_ms": 1.5 + i,
        "status": 200,
        "inputs": {"x": [i, i + 1]},
        "outputs": [i],
    }
    return LogRecord(**(fields | changes))


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.01)


def test_rows_round_trip_with_every_column_and_type(
    logger: PredictionLogger, store: Store, blobs: BlobStore
) -> None:
    logger.add(record(0, time=T0 + 0.123456))
    logger.add(record(1, role="canary", status=500, outputs=None, error="ValueError: bad"))
    assert logger.flush() == 2 and logger.written == 2

    (file,) = store.list_prediction_logs("iris")
    assert (file.rows, file.first_time, file.last_time, file.gateway) == (
        2,
        T0 + 0.123456,
        T0 + 1,
        "gw-1",
    )
    with blobs.open(file.digest) as f:
        parquet = pq.ParquetFile(f)
        assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
        assert parquet.schema_arrow == pa.schema(
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

    frame, newest = read_logs(store, blobs, "iris")
    assert newest == file.id
    rows = frame.to_dict(orient="records")
    assert rows[0] | {"error": None} == {
        "request_id": "req-0",
        "time": pd.Timestamp("2023-11-14T22:13:20.123456", tz="UTC"),
        "endpoint": "iris",
        "version": "iris-clf/1",
        "role": "primary",
        "latency_ms": 1.5,
        "status": 200,
        "inputs": '{"x":[0,1]}',
        "outputs": "[0]",
        "error": None,
    }
    assert pd.isna(rows[0]["error"]) and pd.isna(rows[1]["outputs"])
    assert (rows[1]["role"], rows[1]["status"], rows[1]["error"]) == (
        "canary",
        500,
        "ValueError: bad",
    )
    assert str(frame["time"].dtype) == "datetime64[us, UTC]"
    assert frame["status"].dtype == np.int32 and frame["latency_ms"].dtype == np.float64


def test_one_file_per_endpoint_per_flush(
    logger: PredictionLogger, store: Store, blobs: BlobStore
) -> None:
    for i in range(6):
        logger.add(record(i, endpoint="iris" if i % 2 else "wine"))
    assert logger.flush() == 6
    assert logger.flush() == 0  # nothing buffered: no empty files
    for endpoint, ids in (("iris", ["req-1", "req-3", "req-5"]), ("wine", ["req-0", "req-2"])):
        files = store.list_prediction_logs(endpoint)
        assert len(files) == 1
        frame, _ = read_logs(store, blobs, endpoint)
        assert frame["request_id"].tolist()[: len(ids)] == ids
        assert set(frame["endpoint"]) == {endpoint}


def test_large_flushes_split_at_max_rows_per_file(store: Store, blobs: BlobStore) -> None:
    logger = PredictionLogger(store, blobs, max_rows_per_file=2)
    for i in range(5):
        logger.add(record(i))
    assert logger.flush() == 5
    assert [f.rows for f in store.list_prediction_logs("iris")] == [2, 2, 1]


def test_full_buffer_drops_and_counts(store: Store, blobs: BlobStore) -> None:
    logger = PredictionLogger(store, blobs, max_buffer=3)
    for i in range(5):
        logger.add(record(i))
    assert logger.dropped == 2
    assert logger.flush() == 3
    logger.add(record(5))  # flushing made room again
    assert logger.flush() == 1 and logger.dropped == 2


def _hide_table(db: Path, name: str, new: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(f"ALTER TABLE {name} RENAME TO {new}")


def _break_store(db: Path, tmp_path: Path) -> Callable[[], None]:
    # A real SQLite failure: the write's table is gone until renamed back. (We run as root,
    # so making the file read-only would not stop the write.)
    _hide_table(db, "prediction_logs", "prediction_logs_away")
    return lambda: _hide_table(db, "prediction_logs_away", "prediction_logs")


def _break_blobs(db: Path, tmp_path: Path) -> Callable[[], None]:
    # A real blob store failure: its temp folder is a file, so no upload can start.
    tmp = tmp_path / "artifacts" / "tmp"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text("in the way")
    return tmp.unlink


@pytest.mark.parametrize("breaker", [_break_store, _break_blobs], ids=["store", "blobs"])
def test_failed_write_keeps_rows_for_the_next_flush(
    breaker: Callable[[Path, Path], Callable[[], None]],
    store: Store,
    blobs: BlobStore,
    db: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = PredictionLogger(store, blobs, max_buffer=5)
    for i in range(3):
        logger.add(record(i))
    repair = breaker(db, tmp_path)
    assert logger.flush() == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could not write 3 prediction log rows" in err

    for i in range(3, 6):  # the kept rows count against the bound
        logger.add(record(i))
    assert logger.dropped == 1
    assert logger.flush() == 0  # still broken: still kept, nothing more dropped
    assert logger.dropped == 1

    repair()
    assert logger.flush() == 5 and logger.written == 5
    frame, _ = read_logs(store, blobs, "iris")
    assert frame["request_id"].tolist() == [f"req-{i}" for i in range(5)]
    assert logger.flush() == 0


def test_malformed_record_is_dropped_alone(
    logger: PredictionLogger, store: Store, blobs: BlobStore, capsys: pytest.CaptureFixture[str]
) -> None:
    logger.add(record(0, status="teapot"))
    logger.add(record(1, time=float("nan")))
    logger.add(record(2))
    assert logger.flush() == 1 and logger.dropped == 2
    assert "dropped 2 prediction log records" in capsys.readouterr().err
    assert read_logs(store, blobs, "iris")[0]["request_id"].tolist() == ["req-2"]


def test_background_thread_flushes(store: Store, blobs: BlobStore) -> None:
    logger = PredictionLogger(store, blobs, flush_interval=0.05)
    logger.start()
    try:
        logger.add(record(0))
        wait_for(lambda: len(store.list_prediction_logs("iris")) == 1)
        logger.add(record(1))
        wait_for(lambda: len(store.list_prediction_logs("iris")) == 2)
    finally:
        logger.close()
    assert logger.written == 2


def test_close_stops_the_thread_and_flushes_the_remainder(store: Store, blobs: BlobStore) -> None:
    logger = PredictionLogger(store, blobs, flush_interval=3600)
    logger.start()
    for i in range(4):
        logger.add(record(i))
    logger.close()
    assert [f.rows for f in store.list_prediction_logs("iris")] == [4]
    logger.close()  # twice is fine
    assert logger.written == 4


def test_read_logs_last_keeps_the_newest_rows(
    logger: PredictionLogger, store: Store, blobs: BlobStore
) -> None:
    for start in (0, 3, 6):
        for i in range(start, start + 3):
            logger.add(record(i))
        logger.flush()
    files = store.list_prediction_logs("iris")
    frame, newest = read_logs(store, blobs, "iris", last=4)
    assert frame["request_id"].tolist() == ["req-5", "req-6", "req-7", "req-8"]
    assert newest == files[-1].id
    frame, newest = read_logs(store, blobs, "iris", last=0)
    assert frame.empty and list(frame.columns)[:2] == ["request_id", "time"]
    assert newest == files[-1].id
    frame, newest = read_logs(store, blobs, "iris", after_id=files[1].id)
    assert frame["request_id"].tolist() == ["req-6", "req-7", "req-8"]
    assert read_logs(store, blobs, "unknown")[1] == 0


def test_follow_logs_yields_the_last_rows_then_new_ones(
    logger: PredictionLogger, store: Store, blobs: BlobStore
) -> None:
    for i in range(5):
        logger.add(record(i))
    logger.flush()
    stopped = False
    follow = follow_logs(store, blobs, "iris", last=2, poll=0.01, stop=lambda: stopped)
    assert next(follow)["request_id"].tolist() == ["req-3", "req-4"]

    logger.add(record(5))
    logger.add(record(6, endpoint="wine"))
    logger.flush()
    assert next(follow)["request_id"].tolist() == ["req-5"]

    stopped = True
    assert list(follow) == []


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ({"x": np.array([1.5, np.nan]), "n": np.int64(3)}, {"x": [1.5, None], "n": 3}),
        ([float("nan"), float("inf"), np.float64("nan"), np.float32(0.5)], [None, None, None, 0.5]),
        (np.array([[1, 2], [3, 4]], dtype=np.int32), [[1, 2], [3, 4]]),
        (np.bool_(True), True),
        (
            pd.DataFrame({"a": [1.0, np.nan], "b": ["x", "y"]}),
            [{"a": 1.0, "b": "x"}, {"a": None, "b": "y"}],
        ),
        (pd.Series([1, 2]), [1, 2]),
        (
            {np.int64(1): pd.NA, "t": dt.date(2024, 1, 2), "nat": pd.NaT},
            {"1": None, "t": "2024-01-02", "nat": None},
        ),
        ({"nested": [{"deep": np.array([np.inf])}]}, {"nested": [{"deep": [None]}]}),
        ("plain text", "plain text"),
    ],
    ids=[
        "numpy-dict",
        "nan-inf",
        "int-matrix",
        "numpy-bool",
        "frame",
        "series",
        "keys",
        "deep",
        "str",
    ],
)
def test_inputs_with_numpy_pandas_and_nan_encode_as_json(
    logger: PredictionLogger, store: Store, blobs: BlobStore, inputs: Any, expected: Any
) -> None:
    logger.add(record(0, inputs=inputs))
    logger.flush()
    text = read_logs(store, blobs, "iris")[0]["inputs"][0]
    assert json.loads(text) == expected
    assert "NaN" not in text and "Infinity" not in text


def test_unencodable_inputs_become_a_note_and_the_flush_goes_on(
    logger: PredictionLogger, store: Store, blobs: BlobStore
) -> None:
    loop: list[Any] = []
    loop.append(loop)
    logger.add(record(0, inputs={"handle": object()}))
    logger.add(record(1, inputs=loop))
    logger.add(record(2))
    assert logger.flush() == 3
    inputs = read_logs(store, blobs, "iris")[0]["inputs"].map(json.loads).tolist()
    assert "object is not JSON serializable" in inputs[0]["unencodable"]
    assert "Recursion" in inputs[1]["unencodable"]
    assert inputs[2] == {"x": [2, 3]}
