"""SqlStore: the Store protocol on SQLAlchemy 2 (SQLite by default, PostgreSQL for teams)."""

from __future__ import annotations

import base64
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from shipyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound, StoreError
from shipyard.store import validation as v
from shipyard.store.entities import (
    RUN_STATUSES,
    ArtifactEntry,
    Dataset,
    Environment,
    Experiment,
    Metric,
    Run,
    RunPage,
    WriteBatch,
)
from shipyard.store.sql import schema as t
from shipyard.store.sql.engine import WRITE, ensure_schema, make_engine, retry_locked
from shipyard.store.sql.registry import RegistryMixin
from shipyard.store.sql.serving import ServingMixin
from shipyard.store.sql.writes import apply_batch

T = TypeVar("T")
MAX_RESULTS = 50_000
_HEX_PREFIX = re.compile(r"[0-9a-f]{1,64}")


_RUN_KEYS = sa.select(t.runs.c.run_id, t.runs.c.id).where(
    t.runs.c.run_id.in_(sa.bindparam("ids", expanding=True))
)


_PARAMS_OF, _METRICS_OF, _TAGS_OF = (
    sa.select(table.c.run, table.c.key, table.c.value).where(
        table.c.run.in_(sa.bindparam("pks", expanding=True))
    )
    for table in (t.params, t.latest_metrics, t.tags)
)


class SqlStore(RegistryMixin, ServingMixin):
    """Store on a SQL database; safe to share between threads, and between processes."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.engine = make_engine(uri)
        try:
            retry_locked(lambda: ensure_schema(self.engine))
        except sa.exc.DBAPIError as exc:
            # not a database file, no such server, no permission: say where and why
            raise StoreError(f"cannot open the store at {self._where()}: {exc.orig}") from exc
        self._writer = self.engine.execution_options(**WRITE)
        self._pks: dict[str, int] = {}
        if hasattr(os, "register_at_fork"):
            # A forked child opens its own connections; sharing the parent's corrupts them.
            os.register_at_fork(after_in_child=lambda: self.engine.dispose(close=False))

    def _where(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"SqlStore({self._where()!r})"

    def close(self) -> None:
        self.engine.dispose()

    # -- transactions ------------------------------------------------------------------

    def _write(self, fn: Callable[[sa.Connection], T]) -> T:
        def attempt() -> T:
            with self._writer.begin() as conn:
                return fn(conn)

        try:
            return retry_locked(attempt)
        except BaseException as exc:
            # run ids resolved inside a rolled-back transaction may point at rows that are gone
            self._pks.clear()
            if isinstance(exc, sa.exc.OperationalError):
                raise StoreError(f"write to {self._where()} failed: {exc.orig}") from exc
            raise

    def _read(self, fn: Callable[[sa.Connection], T]) -> T:
        def attempt() -> T:
            with self.engine.connect() as conn:
                return fn(conn)

        try:
            return retry_locked(attempt)
        except sa.exc.OperationalError as exc:
            raise StoreError(f"read from {self._where()} failed: {exc.orig}") from exc

    # -- experiments -------------------------------------------------------------------

    def create_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> Experiment:
        v.check_name(name, "experiment")
        tag_items = {v.check_key(k, "tag"): v.tag_value(k, val) for k, val in (tags or {}).items()}

        def create(conn: sa.Connection) -> int:
            existing = conn.execute(
                sa.select(t.experiments.c.id).where(t.experiments.c.name == name)
            ).first()
            if existing is not None:
                raise AlreadyExists(f"experiment {name!r} already exists (id {existing[0]})")
            exp_id = conn.execute(
                t.experiments.insert()
                .values(name=name, created_at=time.time())
                .returning(t.experiments.c.id)
            ).scalar_one()
            if tag_items:
                conn.execute(
                    t.experiment_tags.insert(),
                    [
                        {"experiment_id": exp_id, "key": k, "value": val}
                        for k, val in tag_items.items()
                    ],
                )
            return int(exp_id)

        return self.get_experiment(self._write(create))

    def get_or_create_experiment(self, name: str) -> Experiment:
        v.check_name(name, "experiment")  # digits only would read as an id below
        try:
            return self.get_experiment(name)
        except NotFound:
            pass
        try:
            return self.create_experiment(name)
        except AlreadyExists:  # another process created it in between
            return self.get_experiment(name)

    def get_experiment(self, ref: int | str) -> Experiment:
        col = t.experiments.c
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            cond = col.id == int(ref)
        elif isinstance(ref, str):
            cond = col.name == ref
        else:
            raise InvalidInput(f"experiment must be an id or a name, got {ref!r}")

        def read(conn: sa.Connection) -> Experiment:
            row = conn.execute(sa.select(t.experiments).where(cond)).first()
            if row is None and isinstance(ref, str) and ref.isdigit():
                # a name made of digits
                row = conn.execute(sa.select(t.experiments).where(col.name == ref)).first()
            if row is None:
                raise NotFound(f"experiment {ref!r} does not exist")
            return self._experiment(conn, row)

        return self._read(read)

    def _experiment(self, conn: sa.Connection, row: sa.Row[Any]) -> Experiment:
        et = t.experiment_tags.c
        tag_rows = conn.execute(sa.select(et.key, et.value).where(et.experiment_id == row.id)).all()
        return Experiment(
            id=row.id,
            name=row.name,
            lifecycle=row.lifecycle,
            created_at=row.created_at,
            tags={key: value for key, value in tag_rows},
        )

    def list_experiments(self, include_deleted: bool = False) -> list[Experiment]:
        query = sa.select(t.experiments).order_by(t.experiments.c.id)
        if not include_deleted:
            query = query.where(t.experiments.c.lifecycle == "active")
        return self._read(lambda conn: [self._experiment(conn, row) for row in conn.execute(query)])

    def count_runs(self) -> dict[int, int]:
        r = t.runs.c
        query = (
            sa.select(r.experiment_id, sa.func.count())
            .where(r.lifecycle == "active")
            .group_by(r.experiment_id)
        )
        return self._read(lambda conn: {exp: n for exp, n in conn.execute(query)})

    def rename_experiment(self, experiment_id: int, new_name: str) -> Experiment:
        v.check_name(new_name, "experiment")
        exp = self.get_experiment(experiment_id)

        def rename(conn: sa.Connection) -> None:
            taken = conn.execute(
                sa.select(t.experiments.c.id).where(t.experiments.c.name == new_name)
            ).first()
            if taken is not None and taken[0] != exp.id:
                raise AlreadyExists(f"experiment {new_name!r} already exists (id {taken[0]})")
            conn.execute(
                t.experiments.update().where(t.experiments.c.id == exp.id).values(name=new_name)
            )

        self._write(rename)
        return self.get_experiment(exp.id)

    def delete_experiment(self, experiment_id: int) -> None:
        self._set_experiment_lifecycle(experiment_id, "deleted")

    def restore_experiment(self, experiment_id: int) -> None:
        self._set_experiment_lifecycle(experiment_id, "active")

    def _set_experiment_lifecycle(self, experiment_id: int, lifecycle: str) -> None:
        exp = self.get_experiment(experiment_id)
        self._write(
            lambda conn: conn.execute(
                t.experiments.update()
                .where(t.experiments.c.id == exp.id)
                .values(lifecycle=lifecycle)
            )
        )

    # -- runs ----------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: int,
        name: str | None = None,
        *,
        parent_id: str | None = None,
        user: str = "",
        start_time: float | None = None,
        tags: Mapping[str, str] | None = None,
        run_id: str | None = None,
    ) -> Run:
        run = Run.new(
            experiment_id,
            name,
            parent_id=parent_id,
            user=user,
            start_time=start_time,
            run_id=run_id,
        )
        batch = WriteBatch(runs=[run])
        batch.tags = [
            (run.id, v.check_key(k, "tag"), v.tag_value(k, val)) for k, val in (tags or {}).items()
        ]
        self.write(batch)
        return self.get_run(run.id)

    def write(self, batch: WriteBatch) -> list[str]:
        if not len(batch):
            return []
        try:
            return self._write(
                lambda conn: apply_batch(conn, batch, self._pk, self._prefetch, self._pks.update)
            )
        except (sa.exc.IntegrityError, sa.exc.DataError) as exc:
            # The data itself is refused: retrying the same batch can never succeed.
            raise InvalidInput(f"the database refused the data: {exc.orig}") from exc
        except (OverflowError, UnicodeError, ValueError, TypeError) as exc:
            raise InvalidInput(f"the database driver refused the data: {exc}") from exc

    def _prefetch(self, conn: sa.Connection, run_ids: set[str]) -> None:
        missing = sorted(r for r in run_ids if r not in self._pks)
        for chunk in _chunks(missing, 500):
            rows = conn.execute(_RUN_KEYS, {"ids": list(chunk)})
            self._pks.update((run_id, pk) for run_id, pk in rows)

    def _pk(self, conn: sa.Connection, run_id: str) -> int:
        pk = self._pks.get(run_id)
        if pk is None:
            pk = conn.execute(sa.select(t.runs.c.id).where(t.runs.c.run_id == run_id)).scalar()
            if pk is None:
                raise NotFound(f"run {run_id!r} does not exist")
            self._pks[run_id] = pk
        return pk

    def get_run(self, run_id: str) -> Run:
        v.check_run_id(run_id)

        def read(conn: sa.Connection) -> Run:
            row = conn.execute(sa.select(t.runs).where(t.runs.c.run_id == run_id)).first()
            if row is None:
                raise NotFound(f"run {run_id!r} does not exist")
            return self._load_runs(conn, [row])[0]

        return self._read(read)

    def _load_runs(self, conn: sa.Connection, rows: Sequence[sa.Row[Any]]) -> list[Run]:
        pks = [row.id for row in rows]
        params: dict[int, dict[str, str]] = {pk: {} for pk in pks}
        metrics: dict[int, dict[str, float]] = {pk: {} for pk in pks}
        tags: dict[int, dict[str, str]] = {pk: {} for pk in pks}
        for chunk in _chunks(pks, 500):
            ids = {"pks": list(chunk)}
            # fetched whole (.all()): row-by-row iteration costs more than the query here
            for run, key, value in conn.execute(_PARAMS_OF, ids).all():
                params[run][key] = value
            for run, key, value in conn.execute(_METRICS_OF, ids).all():
                metrics[run][key] = math.nan if value is None else value
            for run, key, value in conn.execute(_TAGS_OF, ids).all():
                tags[run][key] = value
        return [
            Run(
                id=row.run_id,
                experiment_id=row.experiment_id,
                name=row.name,
                status=row.status,
                start_time=row.start_time,
                end_time=row.end_time,
                parent_id=row.parent_id,
                user=row.user,
                lifecycle=row.lifecycle,
                error=row.error,
                params=params[row.id],
                metrics=metrics[row.id],
                tags=tags[row.id],
            )
            for row in rows
        ]

    def set_run_status(
        self,
        run_id: str,
        status: str,
        *,
        end_time: float | None = None,
        error: str | None = None,
    ) -> None:
        if status not in RUN_STATUSES:
            raise InvalidInput(
                f"run status must be one of {', '.join(RUN_STATUSES)}; got {status!r}"
            )
        self.get_run(run_id)
        self.write(WriteBatch(statuses=[(run_id, status, end_time, error)]))

    def delete_run(self, run_id: str) -> None:
        self._set_run_lifecycle(run_id, "deleted")

    def restore_run(self, run_id: str) -> None:
        self._set_run_lifecycle(run_id, "active")

    def _set_run_lifecycle(self, run_id: str, lifecycle: str) -> None:
        self.get_run(run_id)
        self._write(
            lambda conn: conn.execute(
                t.runs.update().where(t.runs.c.run_id == run_id).values(lifecycle=lifecycle)
            )
        )

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric | tuple[str, float, int, float]] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        run = self.get_run(run_id)
        if run.status != "running":
            raise Conflict(f"run {run_id} is {run.status}; it takes no more data")
        batch = WriteBatch()
        points = batch.metrics.setdefault(run_id, [])
        for key, value, step, ts in metrics:
            v.check_key(key, "metric")
            points.append(
                (
                    key,
                    v.check_metric_value(key, value),
                    v.check_step(key, step),
                    v.check_timestamp(key, ts),
                )
            )
        batch.params = [
            (run_id, v.check_key(k, "param"), v.param_value(k, val))
            for k, val in (params or {}).items()
        ]
        batch.tags = [
            (run_id, v.check_key(k, "tag"), v.tag_value(k, val)) for k, val in (tags or {}).items()
        ]
        conflicts = self.write(batch)
        if conflicts:
            raise Conflict("; ".join(conflicts))

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        v.check_key(key, "metric")

        def read(conn: sa.Connection) -> list[Metric]:
            pk = self._pk(conn, v.check_run_id(run_id))
            m = t.metrics.c
            rows = conn.execute(
                sa.select(m.value, m.step, m.timestamp)
                .where(m.run == pk, m.key == key)
                .order_by(m.step, m.timestamp)
            ).all()
            if not rows:
                lm = t.latest_metrics.c
                known = conn.execute(sa.select(lm.key).where(lm.run == pk)).scalars().all()
                if key not in known:
                    raise NotFound(
                        f"run {run_id} has no metric {key!r}"
                        + (f" (it has: {', '.join(sorted(known))})" if known else "")
                    )
            return [
                Metric(key, math.nan if value is None else value, step, ts)
                for value, step, ts in rows
            ]

        return self._read(read)

    def search_runs(
        self,
        experiment_ids: Sequence[int] | None = None,
        filter: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 1000,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> RunPage:
        from shipyard.store.filter import parse_filter, parse_order_by
        from shipyard.store.sql.search import compile_filter, ordered_segments

        if not 1 <= max_results <= MAX_RESULTS:
            raise InvalidInput(
                f"max_results must be between 1 and {MAX_RESULTS}, got {max_results}"
            )
        offset = _decode_token(page_token)
        r = t.runs.c
        where: list[sa.ColumnElement[bool]] = []
        if experiment_ids is not None:
            where.append(r.experiment_id.in_([int(e) for e in experiment_ids]))
        elif not include_deleted:
            # Usually no experiment is deleted; "NOT IN (those)" then vanishes and leaves the
            # planner free to read runs in start_time order instead of per experiment.
            deleted = self._read(
                lambda conn: (
                    conn.execute(
                        sa.select(t.experiments.c.id).where(t.experiments.c.lifecycle == "deleted")
                    )
                    .scalars()
                    .all()
                )
            )
            if deleted:
                where.append(r.experiment_id.not_in(deleted))
        if not include_deleted:
            where.append(r.lifecycle == "active")
        node = parse_filter(filter or "")
        if node is not None:
            where.append(compile_filter(node))
        segments = ordered_segments(sa.and_(sa.true(), *where), parse_order_by(list(order_by)))

        def read(conn: sa.Connection) -> RunPage:
            # One more row than asked for tells whether there is a next page.
            rows = _read_segments(conn, segments, offset, max_results + 1)
            runs = self._load_runs(conn, rows[:max_results])
            token = _encode_token(offset + max_results) if len(rows) > max_results else None
            return RunPage(runs=runs, next_page_token=token)

        return self._read(read)

    # -- artifacts, environments, datasets ------------------------------------------------

    def add_artifacts(self, run_id: str, entries: Iterable[ArtifactEntry]) -> None:
        v.check_run_id(run_id)
        self.write(WriteBatch(artifacts=[(run_id, entry) for entry in entries]))

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactEntry]:
        prefix = prefix.strip("/")

        def read(conn: sa.Connection) -> list[ArtifactEntry]:
            pk = self._pk(conn, v.check_run_id(run_id))
            a = t.artifacts.c
            query = sa.select(a.path, a.digest, a.size).where(a.run == pk).order_by(a.path)
            if prefix:
                like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                query = query.where(sa.or_(a.path == prefix, a.path.like(like + "/%", escape="\\")))
            return [ArtifactEntry(*row) for row in conn.execute(query)]

        return self._read(read)

    def find_artifacts(
        self, digest_prefix: str, max_results: int = 1000
    ) -> list[tuple[str, ArtifactEntry]]:
        """(run id, manifest entry) of every run file whose digest starts with the prefix,
        oldest run first, deleted runs included."""
        prefix = digest_prefix.strip().lower() if isinstance(digest_prefix, str) else ""
        if not _HEX_PREFIX.fullmatch(prefix):
            raise InvalidInput(
                f"not a digest or digest prefix (1 to 64 hex characters): {digest_prefix!r}"
            )
        if isinstance(max_results, bool) or not 1 <= max_results <= MAX_RESULTS:
            raise InvalidInput(f"max_results must be 1 to {MAX_RESULTS}, got {max_results!r}")
        a, r = t.artifacts.c, t.runs.c
        # A range rather than LIKE: SQLite's LIKE is case-insensitive, so it skips the index.
        query = (
            sa.select(r.run_id, a.path, a.digest, a.size)
            .join(t.runs, r.id == a.run)
            .where(a.digest >= prefix, a.digest < prefix + "g")
            .order_by(a.run, a.path)
            .limit(max_results)
        )
        return self._read(
            lambda conn: [(row[0], ArtifactEntry(*row[1:])) for row in conn.execute(query)]
        )

    # -- step cache ----------------------------------------------------------------------

    def put_step_cache(
        self, key: str, run_id: str, step: str, outputs: Sequence[Mapping[str, Any]]
    ) -> bool:
        """Remember a step's outputs under its cache key; False if the key was taken (the
        first writer wins: both made the same outputs)."""
        v.check_run_id(run_id)
        text = json.dumps([dict(o) for o in outputs])

        def put(conn: sa.Connection) -> bool:
            if conn.execute(sa.select(t.step_cache.c.key).where(t.step_cache.c.key == key)).first():
                return False
            conn.execute(
                t.step_cache.insert().values(
                    key=key, run_id=run_id, step=step, outputs=text, created_at=time.time()
                )
            )
            return True

        return self._write(put)

    def get_step_cache(self, key: str) -> dict[str, Any] | None:
        """``{"run_id", "step", "outputs", "created_at"}`` stored under ``key``, or None."""

        def read(conn: sa.Connection) -> dict[str, Any] | None:
            row = conn.execute(sa.select(t.step_cache).where(t.step_cache.c.key == key)).first()
            if row is None:
                return None
            return {
                "run_id": row.run_id,
                "step": row.step,
                "outputs": json.loads(row.outputs),
                "created_at": row.created_at,
            }

        return self._read(read)

    def referenced_digests(self) -> set[str]:
        """Every blob digest a run's manifest, a model version, a validation or a prediction
        log holds."""
        runs = self._read(
            lambda conn: set(conn.execute(sa.select(t.artifacts.c.digest).distinct()).scalars())
        )
        return runs | self.model_digests() | self.serving_digests()

    def put_environment(self, env: Environment) -> None:
        self.write(WriteBatch(environments=[env]))

    def get_environment(self, digest: str) -> Environment:
        def read(conn: sa.Connection) -> Environment:
            row = conn.execute(
                sa.select(t.environments).where(t.environments.c.digest == digest)
            ).first()
            if row is None:
                raise NotFound(f"environment {digest!r} does not exist")
            return Environment(row.digest, row.python, row.platform, json.loads(row.packages))

        return self._read(read)

    def log_dataset(self, run_id: str, dataset: Dataset) -> None:
        v.check_name(dataset.name, "dataset")
        v.check_run_id(run_id)
        self.write(WriteBatch(datasets=[(run_id, dataset)]))

    def list_datasets(self, run_id: str) -> list[Dataset]:
        def read(conn: sa.Connection) -> list[Dataset]:
            pk = self._pk(conn, v.check_run_id(run_id))
            d, ri = t.datasets.c, t.run_inputs.c
            rows = conn.execute(
                sa.select(t.datasets, ri.context)
                .join(t.run_inputs, ri.dataset_id == d.id)
                .where(ri.run == pk)
                .order_by(d.name)
            ).all()
            return [
                Dataset(
                    row.name,
                    row.digest,
                    row.rows,
                    json.loads(row.schema),
                    json.loads(row.stats),
                    row.context,
                    row.source,
                )
                for row in rows
            ]

        return self._read(read)


def _read_segments(
    conn: sa.Connection, segments: list[sa.Select[Any]], offset: int, limit: int
) -> list[sa.Row[Any]]:
    """Rows offset..offset+limit of the segments' concatenation."""
    rows: list[sa.Row[Any]] = []
    for i, segment in enumerate(segments):
        got = conn.execute(segment.offset(offset).limit(limit - len(rows))).all()
        rows.extend(got)
        if len(rows) >= limit or i == len(segments) - 1:
            break
        # The next segment starts where this one ended: count it only when the page began
        # past its end (otherwise what came back tells its size).
        if got or offset == 0:
            offset = 0
        else:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(segment.order_by(None).subquery())
            ).scalar_one()
            offset = max(0, offset - total)
    return rows


def _chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError
        return offset
    except Exception:
        raise InvalidInput(f"invalid page token {token!r}") from None
