"""Model references: ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``runs:/RUN_ID/PATH``.

The CLI and ``sy.validate`` also take the short forms ``NAME/VERSION``, ``NAME@ALIAS`` and,
where a model name is already known, ``@ALIAS`` or a bare version number.
"""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.errors import InvalidInput
from shipyard.store import validation as v

MODELS, RUNS = "models:/", "runs:/"


@dataclass(frozen=True)
class ModelRef:
    """A registered version, by number or by alias (``latest`` is the newest)."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        return f"{self.name}/{self.version}" if self.version else f"{self.name}@{self.alias}"


@dataclass(frozen=True)
class RunRef:
    """A model logged in a run, by the run's id and its folder in the run's artifacts."""

    run_id: str
    path: str

    def __str__(self) -> str:
        return f"{RUNS}{self.run_id}/{self.path}"


def parse_model_ref(text: str, *, name: str | None = None) -> ModelRef:
    """``NAME/3``, ``NAME@alias``, ``models:/...``; with ``name``, also ``@alias`` and ``3``."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"a model reference must be a non-empty string, got {text!r}")
    raw = text.strip()
    body = raw[len(MODELS) :] if raw.startswith(MODELS) else raw
    if name is not None and (body.startswith("@") or body.isdigit()):
        body = f"{name}{body}" if body.startswith("@") else f"{name}/{body}"
    if "@" in body:
        model, _, alias = body.partition("@")
        return ModelRef(_name(model, raw), alias=_alias(alias, raw))
    model, slash, version = body.partition("/")
    if not slash:
        raise InvalidInput(
            f"{raw!r} names no version: write {model}/VERSION or {model}@ALIAS "
            f"(e.g. {model}/1, {model}@production, {model}@latest)"
        )
    if not version.isdigit() or int(version) < 1:
        raise InvalidInput(f"{raw!r}: the version must be a positive number, got {version!r}")
    return ModelRef(_name(model, raw), version=int(version))


def parse_uri(uri: str) -> ModelRef | RunRef:
    """A ``models:/`` or ``runs:/`` URI (the short model forms are accepted too)."""
    if isinstance(uri, str) and uri.startswith(RUNS):
        run_id, _, path = uri[len(RUNS) :].partition("/")
        path = path.strip("/")
        if not path:
            raise InvalidInput(f"{uri!r} names no model folder: write runs:/RUN_ID/PATH")
        try:
            v.check_run_id(run_id)
        except InvalidInput:
            raise InvalidInput(f"{uri!r}: {run_id!r} is not a run id (32 hex digits)") from None
        return RunRef(run_id, path)
    return parse_model_ref(uri)


def _name(name: str, raw: str) -> str:
    try:
        return v.check_model_name(name)
    except InvalidInput as exc:
        raise InvalidInput(f"in {raw!r}: {exc.message}") from None


def _alias(alias: str, raw: str) -> str:
    try:
        return v.check_alias(alias)
    except InvalidInput as exc:
        raise InvalidInput(f"in {raw!r}: {exc.message}") from None
