"""Applying a WriteBatch in one transaction, with the fast paths that bulk metrics need."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from shipyard.store.entities import WriteBatch
from shipyard.store.sql import schema as t
from shipyard.store.validation import numeric_or_none

PkOf = Callable[[sa.Connection, str], int]
_METRIC_COLUMNS = "run, key, value, step, timestamp, is_nan"


def apply_batch(conn: sa.Connection, batch: WriteBatch, pk_of: PkOf) -> list[str]:
    """Write the batch; return a message per param that would have changed a stored value."""
    if batch.runs:
        conn.execute(
            t.runs.insert(),
            [
                {
                    "run_id": r.id,
                    "experiment_id": r.experiment_id,
                    "name": r.name,
                    "status": r.status,
                    "start_time": r.start_time,
                    "end_time": r.end_time,
                    "parent_id": r.parent_id,
                    "user": r.user,
                    "lifecycle": r.lifecycle,
                    "error": r.error,
                }
                for r in batch.runs
            ],
        )
    conflicts = _write_params(conn, batch.params, pk_of) if batch.params else []
    if batch.tags:
        rows = [{"run": pk_of(conn, rid), "key": k, "value": val} for rid, k, val in batch.tags]
        _upsert(conn, t.tags, rows, ["run", "key"], ["value"])
    if batch.metrics:
        _write_metrics(conn, batch.metrics, pk_of)
    for run_id, status, end_time, error in batch.statuses:
        conn.execute(
            t.runs.update()
            .where(t.runs.c.run_id == run_id)
            .values(status=status, end_time=end_time, error=error)
        )
    return conflicts


def _write_params(
    conn: sa.Connection, items: Sequence[tuple[str, str, str]], pk_of: PkOf
) -> list[str]:
    p = t.params.c
    wanted: dict[tuple[int, str], tuple[str, str]] = {}
    for run_id, key, value in items:
        wanted[(pk_of(conn, run_id), key)] = (run_id, value)
    stored: dict[tuple[int, str], str] = {}
    for pk in {pk for pk, _ in wanted}:
        keys = [key for run, key in wanted if run == pk]
        for key, value in conn.execute(
            sa.select(p.key, p.value).where(p.run == pk, p.key.in_(keys))
        ):
            stored[(pk, key)] = value
    conflicts, rows = [], []
    for (pk, key), (run_id, value) in wanted.items():
        old = stored.get((pk, key))
        if old is None:
            rows.append(
                {"run": pk, "key": key, "value": value, "value_num": numeric_or_none(value)}
            )
        elif old != value:
            conflicts.append(
                f"param {key!r} of run {run_id} is already {old!r}; "
                f"refusing to change it to {value!r}"
            )
    if rows:
        conn.execute(t.params.insert(), rows)
    return conflicts


def _write_metrics(
    conn: sa.Connection, items: Sequence[tuple[str, str, float, int, float]], pk_of: PkOf
) -> None:
    pks: dict[str, int] = {}
    rows: list[tuple[int, str, float | None, int, float, bool]] = []
    latest: dict[tuple[int, str], tuple[float | None, int, float, bool]] = {}
    for run_id, key, value, step, ts in items:
        pk = pks.get(run_id)
        if pk is None:
            pk = pks[run_id] = pk_of(conn, run_id)
        nan = value != value
        row = (pk, key, None if nan else value, step, ts, nan)
        rows.append(row)
        best = latest.get((pk, key))
        if best is None or (step, ts) >= (best[1], best[2]):
            latest[(pk, key)] = row[2:]
    _bulk_insert_metrics(conn, rows)
    lm = t.latest_metrics
    upsert_rows = [
        {"run": pk, "key": key, "value": val, "step": step, "timestamp": ts, "is_nan": nan}
        for (pk, key), (val, step, ts, nan) in latest.items()
    ]
    newer = lambda excluded: sa.or_(  # noqa: E731
        excluded.step > lm.c.step,
        sa.and_(excluded.step == lm.c.step, excluded.timestamp >= lm.c.timestamp),
    )
    _upsert(
        conn, lm, upsert_rows, ["run", "key"], ["value", "step", "timestamp", "is_nan"], where=newer
    )


def _bulk_insert_metrics(conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
    if conn.dialect.name == "postgresql":
        # COPY is several times faster than executemany for the metric history.
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        with cursor, cursor.copy(f"COPY metrics ({_METRIC_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        # The driver's executemany on plain tuples; SQLAlchemy's per-row processing would
        # cost more than the insert itself.
        conn.exec_driver_sql(
            f"INSERT INTO metrics ({_METRIC_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", rows
        )


def _upsert(
    conn: sa.Connection,
    table: sa.Table,
    rows: list[dict[str, Any]],
    keys: list[str],
    update: list[str],
    where: Callable[[Any], Any] | None = None,
) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=keys,
        set_={col: stmt.excluded[col] for col in update},
        where=where(stmt.excluded) if where else None,
    )
    conn.execute(stmt, rows)
