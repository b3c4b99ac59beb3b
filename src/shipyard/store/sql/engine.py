"""Engines for SQLite and PostgreSQL, and the schema check/upgrade run when a store opens."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from shipyard.errors import InvalidInput, SchemaVersionError, StoreError, require

# The newest migration in migrations/versions; a test checks it against Alembic's head.
HEAD_REVISION = "0004"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
WRITE = {"shipyard_write": True}

T = TypeVar("T")


def make_engine(uri: str) -> Engine:
    """Create an engine for a sqlite:// or postgresql:// URI with Shipyard's settings."""
    try:
        url = sa.engine.make_url(uri)
    except Exception as exc:
        raise InvalidInput(f"not a database URI: {uri!r}") from exc
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url)
    if backend == "postgresql":
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        require("psycopg", "postgres")
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    raise InvalidInput(f"unsupported store URI scheme {url.drivername!r} in {uri!r}")


def _sqlite_engine(url: sa.URL) -> Engine:
    if url.database and url.database != ":memory:":
        folder = Path(url.database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store's folder {str(folder)!r}: {exc}") from exc
    engine = sa.create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 60}, pool_size=5
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # Take transaction control from the driver so writes can start with BEGIN IMMEDIATE:
        # a deferred transaction that later needs the write lock fails at once with
        # "database is locked" instead of waiting for the busy timeout.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        write = conn.get_execution_options().get("shipyard_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def is_locked_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text


def retry_locked(fn: Callable[[], T], attempts: int = 20) -> T:
    """Run fn, retrying with backoff when SQLite reports the database locked past its timeout."""
    delay = 0.05
    for attempt in range(attempts):
        try:
            return fn()
        except sa.exc.OperationalError as exc:
            if not is_locked_error(exc) or attempt == attempts - 1:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


def current_revision(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def ensure_schema(engine: Engine) -> None:
    """Create a new database, upgrade an older one, refuse one written by a newer Shipyard."""
    with engine.connect() as conn:
        if current_revision(conn) == HEAD_REVISION:
            return
    with engine.execution_options(**WRITE).begin() as conn:
        if engine.dialect.name == "postgresql":
            # Serialise concurrent first opens; SQLite gets the same from BEGIN IMMEDIATE.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7261946)"))
        revision = current_revision(conn)
        if revision == HEAD_REVISION:
            return
        _check_known(revision, engine.url.render_as_string(hide_password=True))
        if revision is None:
            _refuse_occupied(conn, engine.url.render_as_string(hide_password=True))
        _upgrade(conn)


def _refuse_occupied(conn: sa.Connection, where: str) -> None:
    """A database (or schema) without a Shipyard version must be empty to be set up."""
    from shipyard.store.sql.schema import metadata

    existing = set(sa.inspect(conn).get_table_names())
    foreign = sorted(existing - set(metadata.tables))
    if foreign:
        raise SchemaVersionError(
            f"{where} already holds tables that Shipyard did not create ({', '.join(foreign[:5])}"
            f"{', ...' if len(foreign) > 5 else ''}); use an empty database or schema for "
            "Shipyard"
        )
    if existing:
        raise SchemaVersionError(
            f"{where} holds Shipyard's tables but no schema version (table alembic_version); "
            "it was not created by Shipyard's migrations and cannot be upgraded safely"
        )


def _script_directory():  # type: ignore[no-untyped-def]
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg, ScriptDirectory.from_config(cfg)


def _check_known(revision: str | None, where: str) -> None:
    if revision is None:
        return
    _, scripts = _script_directory()
    known = {script.revision for script in scripts.walk_revisions()}
    if revision not in known:
        raise SchemaVersionError(
            f"the database at {where} has schema revision {revision!r}, written by a newer "
            f"Shipyard (this one knows up to {HEAD_REVISION!r}); upgrade Shipyard to open it"
        )


def _upgrade(conn: sa.Connection) -> None:
    from alembic import command

    cfg, _ = _script_directory()
    cfg.attributes["connection"] = conn
    try:
        command.upgrade(cfg, "head")
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"could not migrate the database schema: {exc}") from exc


def sqlite_path(uri: str) -> str | None:
    """The file behind a sqlite URI, or None for other backends or in-memory databases."""
    url = sa.engine.make_url(uri)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return os.path.abspath(os.path.expanduser(url.database))
