"""Applying a WriteBatch in one transaction, with the fast paths that bulk metrics need."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from shipyard.store.entities import WriteBatch
from shipyard.store.sql import schema as t
from shipyard.store.validation import numeric_or_none

PkOf = Callable[[sa.Connection, str], int]
_METRIC_COLUMNS = "run, key, value, step, timestamp"


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
    conn: sa.Connection, series: dict[str, list[tuple[str, float, int, float]]], pk_of: PkOf
) -> None:
    for run_id, points in series.items():
        if points:
            pk = pk_of(conn, run_id)
            if conn.dialect.name == "postgresql":
                _write_metrics_postgres(conn, pk, points)
            else:
                _write_metrics_sqlite(conn, pk, points)


# The latest value per (run, key) is the point with the highest step, then the newest time.
_NEWER = (
    "excluded.step > latest_metrics.step OR (excluded.step = latest_metrics.step "
    "AND excluded.timestamp >= latest_metrics.timestamp)"
)
_SET_LATEST = (
    "DO UPDATE SET value = excluded.value, step = excluded.step, "
    f"timestamp = excluded.timestamp WHERE {_NEWER}"
)


def _write_metrics_sqlite(
    conn: sa.Connection, pk: int, points: list[tuple[str, float, int, float]]
) -> None:
    # The points go to the driver as the tracking writer buffered them (SQLite binds NaN as
    # NULL by itself; `pk` is an integer from the database, safe to inline): no Python work
    # per point at all.
    values = f"VALUES ({int(pk)}, ?, ?, ?, ?)"
    conn.exec_driver_sql(f"INSERT INTO metrics ({_METRIC_COLUMNS}) {values}", points)
    conn.exec_driver_sql(
        f"INSERT INTO latest_metrics ({_METRIC_COLUMNS}) {values} "
        f"ON CONFLICT (run, key) {_SET_LATEST}",
        _latest(points),
    )


def _latest(points: list[tuple[str, float, int, float]]) -> list[tuple[str, float, int, float]]:
    """Per key, the point with the highest step, then the newest time, then the last logged."""
    latest: dict[str, tuple[str, float, int, float]] = {}
    get = latest.get
    for point in points:
        best = get(point[0])
        if best is None or point[2] > best[2] or (point[2] == best[2] and point[3] >= best[3]):
            latest[point[0]] = point
    return list(latest.values())


def _write_metrics_postgres(
    conn: sa.Connection, pk: int, points: list[tuple[str, float, int, float]]
) -> None:
    # COPY into a per-transaction staging table, then two set-based statements: several times
    # faster than executemany for long metric histories.
    conn.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS metrics_stage "
        "(run integer, key varchar(250), value double precision, step bigint, "
        "timestamp double precision) ON COMMIT DELETE ROWS"
    )
    conn.exec_driver_sql("TRUNCATE metrics_stage")
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    with cursor, cursor.copy(f"COPY metrics_stage ({_METRIC_COLUMNS}) FROM STDIN") as copy:
        for key, value, step, ts in points:
            copy.write_row((pk, key, None if value != value else value, step, ts))
    conn.exec_driver_sql(
        f"INSERT INTO metrics ({_METRIC_COLUMNS}) SELECT {_METRIC_COLUMNS} FROM metrics_stage"
    )
    conn.exec_driver_sql(
        f"INSERT INTO latest_metrics ({_METRIC_COLUMNS}) "
        f"SELECT DISTINCT ON (run, key) {_METRIC_COLUMNS} FROM metrics_stage "
        "ORDER BY run, key, step DESC, timestamp DESC "
        f"ON CONFLICT (run, key) {_SET_LATEST}"
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
