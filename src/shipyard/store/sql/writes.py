"""Applying a WriteBatch in one transaction, with the fast paths that bulk metrics need."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from shipyard.store.entities import Dataset, Environment, Run, WriteBatch
from shipyard.store.sql import schema as t
from shipyard.store.validation import numeric_or_none

PkOf = Callable[[sa.Connection, str], int]
_METRIC_COLUMNS = "run, key, value, step, timestamp"


def apply_batch(
    conn: sa.Connection,
    batch: WriteBatch,
    pk_of: PkOf,
    prefetch: Callable[[sa.Connection, set[str]], None],
    remember: Callable[[dict[str, int]], None],
) -> list[str]:
    """Write the batch; return a message per param that would have changed a stored value.

    ``prefetch`` resolves the run ids the batch mentions in a few queries, so that ``pk_of``
    needs no query per run; ``remember`` is told the keys of the runs this batch creates.
    """
    new = {r.id: r for r in batch.runs}
    updates = []
    for run_id, status, end_time, error in batch.statuses:
        run = new.get(run_id)
        if run is None:  # a run created in an earlier batch
            updates.append((status, end_time, error, run_id))
        else:  # a run that starts and ends within this batch is inserted as it ends
            new[run_id] = dataclasses.replace(run, status=status, end_time=end_time, error=error)
    if batch.environments:
        _write_environments(conn, batch.environments)
    if new:
        # RETURNING gives each new row's key without another query
        remember({r.id: _driver(conn, _INSERT_RUN, _run_row(r)).scalar_one() for r in new.values()})
    prefetch(
        conn,
        {item[0] for item in batch.params}
        | {item[0] for item in batch.tags}
        | {run_id for run_id, points in batch.metrics.items() if points}
        | {run_id for run_id, _ in batch.artifacts}
        | {run_id for run_id, _ in batch.datasets},
    )
    conflicts = _write_params(conn, batch.params, pk_of, set(new)) if batch.params else []
    if batch.tags:
        _driver(conn, _UPSERT_TAG, [(pk_of(conn, rid), k, val) for rid, k, val in batch.tags])
    if batch.metrics:
        _write_metrics(conn, batch.metrics, pk_of)
    if batch.artifacts:
        rows = [(pk_of(conn, rid), e.path, e.digest, e.size) for rid, e in batch.artifacts]
        _driver(conn, _UPSERT_ARTIFACT, rows)
    for run_id, dataset in batch.datasets:
        _write_dataset(conn, pk_of(conn, run_id), dataset)
    if updates:
        _driver(conn, _SET_STATUS, updates)
    return conflicts


# The statements every run end executes are plain SQL run on the driver: going through
# SQLAlchemy's compiled-statement machinery costs more than SQLite spends executing them.
# They are valid on SQLite and PostgreSQL alike; `?` becomes `%s` for psycopg.
_INSERT_RUN = (
    "INSERT INTO runs (run_id, experiment_id, name, status, start_time, end_time, parent_id, "
    '"user", lifecycle, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id'
)
_SET_STATUS = "UPDATE runs SET status = ?, end_time = ?, error = ? WHERE run_id = ?"
_INSERT_PARAM = "INSERT INTO params (run, key, value, value_num) VALUES (?, ?, ?, ?)"
_UPSERT_TAG = (
    "INSERT INTO tags (run, key, value) VALUES (?, ?, ?) "
    "ON CONFLICT (run, key) DO UPDATE SET value = excluded.value"
)
_UPSERT_ARTIFACT = (
    "INSERT INTO artifacts (run, path, digest, size) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (run, path) DO UPDATE SET digest = excluded.digest, size = excluded.size"
)


def _driver(conn: sa.Connection, sql: str, params: Any) -> Any:
    """Execute ``sql`` (with ``?`` placeholders) on the driver: one row, or many."""
    if conn.dialect.name == "postgresql":
        sql = sql.replace("?", "%s")
    return conn.exec_driver_sql(sql, params)


def _run_row(r: Run) -> tuple[Any, ...]:
    return (
        r.id, r.experiment_id, r.name, r.status, r.start_time, r.end_time, r.parent_id, r.user,
        r.lifecycle, r.error,
    )  # fmt: skip


def _write_environments(conn: sa.Connection, envs: Sequence[Environment]) -> None:
    e = t.environments.c
    digests = {env.digest for env in envs}
    known = set(conn.execute(sa.select(e.digest).where(e.digest.in_(digests))).scalars())
    rows = {
        env.digest: {
            "digest": env.digest,
            "python": env.python,
            "platform": env.platform,
            "packages": json.dumps(env.packages),
            "created_at": time.time(),
        }
        for env in envs
        if env.digest not in known
    }
    if rows:
        conn.execute(t.environments.insert(), list(rows.values()))


def _write_dataset(conn: sa.Connection, pk: int, dataset: Dataset) -> None:
    d = t.datasets.c
    found = conn.execute(
        sa.select(d.id).where(d.name == dataset.name, d.digest == dataset.digest)
    ).scalar()
    if found is None:
        found = conn.execute(
            t.datasets.insert()
            .values(
                name=dataset.name,
                digest=dataset.digest,
                rows=dataset.rows,
                schema=json.dumps(dataset.schema),
                stats=json.dumps(dataset.stats),
                source=dataset.source,
            )
            .returning(d.id)
        ).scalar_one()
    ri = t.run_inputs.c
    linked = conn.execute(
        sa.select(ri.run).where(ri.run == pk, ri.dataset_id == found, ri.context == dataset.context)
    ).first()
    if linked is None:
        conn.execute(
            t.run_inputs.insert().values(run=pk, dataset_id=found, context=dataset.context)
        )


def _write_params(
    conn: sa.Connection, items: Sequence[tuple[str, str, str]], pk_of: PkOf, fresh: set[str]
) -> list[str]:
    wanted: dict[tuple[int, str], tuple[str, str]] = {}
    for run_id, key, value in items:
        wanted[(pk_of(conn, run_id), key)] = (run_id, value)
    stored: dict[tuple[int, str], str] = {}
    # runs created in this batch have no stored params to conflict with
    pks = sorted({pk_of(conn, run_id) for run_id, _, _ in items if run_id not in fresh})
    for i in range(0, len(pks), 500):
        for run, key, value in conn.execute(_PARAMS_OF, {"pks": pks[i : i + 500]}):
            stored[(run, key)] = value
    conflicts, rows = [], []
    for (pk, key), (run_id, value) in wanted.items():
        old = stored.get((pk, key))
        if old is None:
            rows.append((pk, key, value, numeric_or_none(value)))
        elif old != value:
            conflicts.append(
                f"param {key!r} of run {run_id} is already {old!r}; "
                f"refusing to change it to {value!r}"
            )
    if rows:
        _driver(conn, _INSERT_PARAM, rows)
    return conflicts


_PARAMS_OF = sa.select(t.params.c.run, t.params.c.key, t.params.c.value).where(
    t.params.c.run.in_(sa.bindparam("pks", expanding=True))
)


def _write_metrics(
    conn: sa.Connection, series: dict[str, list[tuple[str, float, int, float]]], pk_of: PkOf
) -> None:
    pks = {run_id: pk_of(conn, run_id) for run_id, points in series.items() if points}
    if conn.dialect.name == "postgresql":
        _write_metrics_postgres(conn, {pks[run_id]: series[run_id] for run_id in pks})
    else:
        for run_id, pk in pks.items():
            _write_metrics_sqlite(conn, pk, series[run_id])


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
    conn: sa.Connection, series: dict[int, list[tuple[str, float, int, float]]]
) -> None:
    # COPY into a per-transaction staging table, then two set-based statements: several times
    # faster than executemany for long metric histories.
    conn.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS metrics_stage "
        "(run integer, key varchar(250), value double precision, step bigint, "
        "timestamp double precision) ON COMMIT DELETE ROWS"
    )
    conn.exec_driver_sql("TRUNCATE metrics_stage")
    cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    with cursor, cursor.copy(f"COPY metrics_stage ({_METRIC_COLUMNS}) FROM STDIN") as copy:
        for pk, points in series.items():
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
