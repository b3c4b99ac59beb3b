"""Every error Shipyard raises on purpose.

    ShipyardError                 exit 1, HTTP 500, code "INTERNAL"
    ├── InvalidInput              exit 2, HTTP 400, code "INVALID_INPUT"
    ├── NotFound                  exit 1, HTTP 404, code "NOT_FOUND"
    ├── AlreadyExists             exit 1, HTTP 409, code "ALREADY_EXISTS"
    ├── Conflict                  exit 1, HTTP 409, code "CONFLICT"
    ├── PermissionDenied          exit 1, HTTP 403, code "PERMISSION_DENIED"
    ├── ValidationFailed          exit 1, HTTP 422, code "VALIDATION_FAILED"
    ├── MissingDependency         exit 1, HTTP 500, code "MISSING_DEPENDENCY"
    └── StoreError                exit 1, HTTP 500, code "STORE_ERROR"
        └── SchemaVersionError    exit 1, HTTP 500, code "SCHEMA_VERSION"

The CLI prints any of them as one line on stderr and exits with ``exit_code``; the server maps
``http_status`` and ``code`` into a JSON body.
"""

from __future__ import annotations


class ShipyardError(Exception):
    """Root of every error Shipyard raises on purpose."""

    exit_code: int = 1
    http_status: int = 500
    code: str = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"error_code": self.code, "message": self.message}


class InvalidInput(ShipyardError):
    """The caller passed something malformed: a bad key, value, path or filter."""

    exit_code = 2
    http_status = 400
    code = "INVALID_INPUT"


class NotFound(ShipyardError):
    """A named run, experiment, artifact or other object does not exist."""

    http_status = 404
    code = "NOT_FOUND"


class AlreadyExists(ShipyardError):
    """Creating something whose name is taken."""

    http_status = 409
    code = "ALREADY_EXISTS"


class Conflict(ShipyardError):
    """The request contradicts the current state (re-logged param, finished run, ...)."""

    http_status = 409
    code = "CONFLICT"


class PermissionDenied(ShipyardError):
    """The actor may not do this (moving a protected alias without being a maintainer)."""

    http_status = 403
    code = "PERMISSION_DENIED"


class ValidationFailed(ShipyardError):
    """A validation gate did not pass."""

    http_status = 422
    code = "VALIDATION_FAILED"


class MissingDependency(ShipyardError):
    """An optional dependency is needed; the message names the extra to install."""

    code = "MISSING_DEPENDENCY"


class StoreError(ShipyardError):
    """The metadata or artifact store failed in a way the caller cannot fix by changing input."""

    code = "STORE_ERROR"


class SchemaVersionError(StoreError):
    """The database was written by a newer Shipyard, or cannot be migrated."""

    code = "SCHEMA_VERSION"


def require(module: str, extra: str) -> object:
    """Import an optional dependency or raise MissingDependency naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(
            f"{module} is required for this; install it with: pip install 'shipyard[{extra}]'"
        ) from exc


__all__ = [
    "AlreadyExists",
    "Conflict",
    "InvalidInput",
    "MissingDependency",
    "NotFound",
    "SchemaVersionError",
    "ShipyardError",
    "StoreError",
    "ValidationFailed",
    "require",
]
