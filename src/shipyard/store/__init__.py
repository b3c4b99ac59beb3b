"""Metadata stores. ``open_store(uri)`` picks the implementation by URI scheme."""

from __future__ import annotations

from collections.abc import Callable

from shipyard.errors import InvalidInput
from shipyard.store.base import Store

_FACTORIES: dict[str, Callable[[str], Store]] = {}


def register_store(scheme: str, factory: Callable[[str], Store]) -> None:
    """Make ``open_store`` build stores for URIs starting with ``scheme``."""
    _FACTORIES[scheme] = factory


def _sql(uri: str) -> Store:
    from shipyard.store.sql.store import SqlStore

    return SqlStore(uri)


register_store("sqlite", _sql)
register_store("postgresql", _sql)
register_store("postgres", _sql)


def open_store(uri: str) -> Store:
    """A Store for the URI: sqlite:///file.db, postgresql+psycopg://..., and later http(s)://."""
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower() if ":" in uri else ""
    factory = _FACTORIES.get(scheme)
    if factory is None:
        known = ", ".join(sorted(_FACTORIES))
        raise InvalidInput(f"no store for URI {uri!r}; known schemes: {known}")
    return factory(uri)


__all__ = ["Store", "open_store", "register_store"]
