"""The database is created and upgraded by Alembic, and a newer one is refused."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shipyard.errors import SchemaVersionError, StoreError
from shipyard.store.sql import engine as eng
from shipyard.store.sql.schema import metadata
from shipyard.store.sql.store import SqlStore


def test_head_constant_matches_alembic() -> None:
    _, scripts = eng._script_directory()
    assert scripts.get_current_head() == eng.HEAD_REVISION


def test_schema_module_matches_migrations(store_uri: str) -> None:
    store = SqlStore(store_uri)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    store.close()
    assert diff == []


def test_new_database_is_stamped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = SqlStore(f"sqlite:///{tmp_path / 'new' / 'db.sqlite'}")
    with store.engine.connect() as conn:
        assert eng.current_revision(conn) == eng.HEAD_REVISION
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    assert mode == "wal"
    store.close()


def test_newer_database_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    uri = f"sqlite:///{tmp_path / 'db.sqlite'}"
    SqlStore(uri).close()
    engine = sa.create_engine(uri)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(SchemaVersionError, match="newer Shipyard"):
        SqlStore(uri)


@pytest.mark.parametrize(
    ("table", "message"),
    [("users", "did not create \\(users\\)"), ("runs", "no schema version")],
)
def test_occupied_database_is_refused(tmp_path, table, message) -> None:  # type: ignore[no-untyped-def]
    uri = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = sa.create_engine(uri)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {table} (x INTEGER)"))
    engine.dispose()
    with pytest.raises(SchemaVersionError, match=message):
        SqlStore(uri)


def test_folder_that_cannot_be_made(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot create the store's folder"):
        SqlStore(f"sqlite:///{tmp_path / 'file' / 'sub' / 'db.sqlite'}")


def test_reopening_does_not_run_alembic(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    uri = f"sqlite:///{tmp_path / 'db.sqlite'}"
    SqlStore(uri).close()
    monkeypatch.setattr(eng, "_upgrade", lambda conn: pytest.fail("migrated twice"))
    SqlStore(uri).close()
