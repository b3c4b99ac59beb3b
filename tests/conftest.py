"""Shared fixtures: real stores (SQLite always, PostgreSQL when its URL is set)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

POSTGRES_ENV = "SHIPYARD_TEST_POSTGRES_URL"


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    base = postgres_url()
    if base is None:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql://postgres@127.0.0.1/test)"
        )
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    url = sa.engine.make_url(base).set(drivername="postgresql+psycopg")
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def store_uri(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """The URI of an empty store, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shipyard.db'}"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def store(store_uri: str):  # type: ignore[no-untyped-def]
    from shipyard.store import open_store

    s = open_store(store_uri)
    yield s
    s.close()


@pytest.fixture
def tracking(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """Point the Python API at a fresh SQLite store and artifact folder for this test."""
    from shipyard.tracking import fluent, tracker

    uri = f"sqlite:///{tmp_path / 'shipyard.db'}"
    monkeypatch.setenv("SHIPYARD_URI", uri)
    monkeypatch.setenv("SHIPYARD_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.chdir(tmp_path)
    t = tracker.get_tracker()
    yield t
    for run in list(t.open_runs.values()):
        run.end("killed")
    fluent._active.set(())
    fluent._process_runs.clear()
    fluent._experiment.pop(t.uri, None)
    t.close()
    t.store.close()
    tracker._trackers.pop((t.uri, t.artifact_root), None)
