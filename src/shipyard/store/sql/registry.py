"""The model registry's half of SqlStore: registered models, versions, aliases, validations
and the audit log.

Every change writes its audit entry in the same transaction, so the log cannot miss one. Alias
moves are compare-and-set: the caller names the version it expects the alias to hold, and a
concurrent move makes the second writer fail with Conflict instead of silently winning.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import EllipsisType
from typing import Any, TypeVar

import sqlalchemy as sa

from shipyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from shipyard.store import validation as v
from shipyard.store.entities import (
    VALIDATION_STATUSES,
    ArtifactEntry,
    AuditEntry,
    ModelVersion,
    RegisteredModel,
    ValidationRecord,
)
from shipyard.store.sql import schema as t

T = TypeVar("T")
Expected = int | EllipsisType | None  # ... = whatever the alias holds now

_MODELS = t.registered_models
_VERSIONS = t.model_versions
_ALIASES = t.model_aliases


def manifest_digest(files: Iterable[ArtifactEntry]) -> str:
    """The identity of a set of files: sha256 over their sorted paths and digests."""
    h = hashlib.sha256()
    for entry in sorted(files, key=lambda e: e.path):
        h.update(f"{entry.path}\0{entry.digest}\n".encode())
    return h.hexdigest()


class RegistryMixin:
    """Registry methods of SqlStore; relies on its ``_read`` and ``_write``."""

    _read: Callable[..., Any]
    _write: Callable[..., Any]

    # -- registered models ---------------------------------------------------------------

    def create_registered_model(
        self,
        name: str,
        *,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        policy: Mapping[str, Any] | None = None,
        actor: str = "",
    ) -> RegisteredModel:
        v.check_model_name(name)
        tag_items = _tags(tags)
        v.check_text(description, "description")

        def create(conn: sa.Connection) -> None:
            if _model_row(conn, name, missing_ok=True) is not None:
                raise AlreadyExists(f"registered model {name!r} already exists")
            _insert_model(conn, name, description, dict(policy or {}), actor)
            model_id = _model_row(conn, name)[0]
            _put_tags(conn, t.registered_model_tags, "model_id", model_id, tag_items)
            _audit(conn, actor, name, "create_model", None, {"description": description})

        self._write(create)
        return self.get_registered_model(name)

    def get_registered_model(self, name: str) -> RegisteredModel:
        v.check_model_name(name)
        return self._read(lambda conn: _load_model(conn, _model_row(conn, name)))

    def list_registered_models(self) -> list[RegisteredModel]:
        def read(conn: sa.Connection) -> list[RegisteredModel]:
            rows = conn.execute(sa.select(_MODELS).order_by(_MODELS.c.name)).all()
            return [_load_model(conn, row) for row in rows]

        return self._read(read)

    def update_registered_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        policy: Mapping[str, Any] | None = None,
        actor: str = "",
    ) -> RegisteredModel:
        v.check_model_name(name)
        tag_items = _tags(tags)
        if description is not None:
            v.check_text(description, "description")

        def update(conn: sa.Connection) -> None:
            row = _model_row(conn, name, lock=True)
            values: dict[str, Any] = {"updated_at": time.time()}
            details: dict[str, Any] = {}
            if description is not None:
                values["description"] = description
                details["description"] = description
            if policy is not None:
                values["policy"] = json.dumps(dict(policy))
                details["policy"] = dict(policy)
                details["policy_was"] = json.loads(row.policy or "{}")
            if tag_items:
                _put_tags(conn, t.registered_model_tags, "model_id", row.id, tag_items)
                details["tags"] = tag_items
            conn.execute(_MODELS.update().where(_MODELS.c.id == row.id).values(**values))
            _audit(conn, actor, name, "update_model", None, details)

        self._write(update)
        return self.get_registered_model(name)

    # -- versions ------------------------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        *,
        files: Sequence[ArtifactEntry],
        flavor: str,
        signature: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        artifact_path: str | None = None,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        actor: str = "",
    ) -> ModelVersion:
        """Register the next version of ``name``, creating the registered model if needed."""
        v.check_model_name(name)
        if run_id is not None:
            v.check_run_id(run_id)
        if not files:
            raise InvalidInput(f"a version of {name!r} needs at least one file")
        v.check_text(description, "description")
        tag_items = _tags(tags)
        digest = manifest_digest(files)

        def create(conn: sa.Connection) -> int:
            row = _model_row(conn, name, missing_ok=True, lock=True)
            if row is None:
                _insert_model(conn, name, "", {}, actor)
                _audit(conn, actor, name, "create_model", None, {})
                row = _model_row(conn, name, lock=True)
            number = (
                conn.execute(
                    sa.select(sa.func.max(_VERSIONS.c.version)).where(
                        _VERSIONS.c.model_id == row.id
                    )
                ).scalar()
                or 0
            ) + 1
            now = time.time()
            version_id = conn.execute(
                _VERSIONS.insert()
                .values(
                    model_id=row.id,
                    version=number,
                    run_id=run_id,
                    artifact_path=artifact_path,
                    flavor=flavor,
                    signature=json.dumps(dict(signature)) if signature else None,
                    digest=digest,
                    description=description,
                    created_at=now,
                    created_by=actor,
                )
                .returning(_VERSIONS.c.id)
            ).scalar_one()
            conn.execute(
                t.model_version_files.insert(),
                [
                    {"version_id": version_id, "path": f.path, "digest": f.digest, "size": f.size}
                    for f in files
                ],
            )
            _put_tags(conn, t.model_version_tags, "version_id", version_id, tag_items)
            conn.execute(_MODELS.update().where(_MODELS.c.id == row.id).values(updated_at=now))
            _audit(
                conn, actor, name, "create_version", number, {"run_id": run_id, "digest": digest}
            )
            return int(number)

        return self.get_model_version(name, self._write(create))

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        v.check_model_name(name)
        number = v.check_version(version)

        def read(conn: sa.Connection) -> ModelVersion:
            model = _model_row(conn, name)
            row = conn.execute(
                sa.select(_VERSIONS).where(
                    _VERSIONS.c.model_id == model.id, _VERSIONS.c.version == number
                )
            ).first()
            if row is None:
                raise NotFound(f"model {name!r} has no version {number}")
            return _load_version(conn, name, row)

        return self._read(read)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points at; ``latest`` is always the newest version."""
        v.check_model_name(name)
        v.check_alias(alias)

        def read(conn: sa.Connection) -> ModelVersion:
            model = _model_row(conn, name)
            if alias in v.RESERVED_ALIASES:
                query = (
                    sa.select(_VERSIONS)
                    .where(_VERSIONS.c.model_id == model.id)
                    .order_by(_VERSIONS.c.version.desc())
                    .limit(1)
                )
            else:
                query = sa.select(_VERSIONS).join(_ALIASES, _ALIASES.c.version_id == _VERSIONS.c.id)
                query = query.where(_ALIASES.c.model_id == model.id, _ALIASES.c.alias == alias)
            row = conn.execute(query).first()
            if row is None:
                what = "no versions" if alias in v.RESERVED_ALIASES else f"no alias {alias!r}"
                raise NotFound(f"model {name!r} has {what}")
            return _load_version(conn, name, row)

        return self._read(read)

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        v.check_model_name(name)

        def read(conn: sa.Connection) -> list[ModelVersion]:
            model = _model_row(conn, name)
            rows = conn.execute(
                sa.select(_VERSIONS)
                .where(_VERSIONS.c.model_id == model.id)
                .order_by(_VERSIONS.c.version)
            ).all()
            return [_load_version(conn, name, row) for row in rows]

        return self._read(read)

    def update_model_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        actor: str = "",
    ) -> ModelVersion:
        number = v.check_version(version)
        tag_items = _tags(tags)
        if description is not None:
            v.check_text(description, "description")

        def update(conn: sa.Connection) -> None:
            version_id = _version_id(conn, _model_row(conn, name), name, number)
            details: dict[str, Any] = {}
            if description is not None:
                conn.execute(
                    _VERSIONS.update()
                    .where(_VERSIONS.c.id == version_id)
                    .values(description=description)
                )
                details["description"] = description
            if tag_items:
                _put_tags(conn, t.model_version_tags, "version_id", version_id, tag_items)
                details["tags"] = tag_items
            _audit(conn, actor, name, "update_version", number, details)

        self._write(update)
        return self.get_model_version(name, number)

    # -- aliases -------------------------------------------------------------------------

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        expected: Expected = ...,
        actor: str = "",
        action: str = "set_alias",
        details: Mapping[str, Any] | None = None,
    ) -> int | None:
        """Point ``alias`` at ``version``; return the version it held before.

        With ``expected`` (a version, or None for "unset"), the move happens only if the alias
        still holds that; otherwise Conflict. The audit entry is written in the same
        transaction.
        """
        v.check_alias(alias, settable=True)
        number = v.check_version(version)
        return self._write(
            lambda conn: move_alias(
                conn,
                name,
                alias,
                number,
                expected=expected,
                actor=actor,
                action=action,
                details=details,
            )
        )

    def delete_alias(
        self,
        name: str,
        alias: str,
        *,
        expected: Expected = ...,
        actor: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> int:
        """Remove ``alias``; return the version it held. NotFound when it is not set."""
        v.check_alias(alias, settable=True)

        def remove(conn: sa.Connection) -> int:
            model = _model_row(conn, name, lock=True)
            current = _alias_holder(conn, model.id, alias)
            if current is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            _check_expected(name, alias, current, expected)
            deleted = conn.execute(
                _ALIASES.delete().where(
                    _ALIASES.c.model_id == model.id,
                    _ALIASES.c.alias == alias,
                    _ALIASES.c.version_id == current[0],
                )
            ).rowcount
            if deleted != 1:
                raise Conflict(f"alias {alias!r} of {name!r} moved meanwhile; look again")
            _audit(
                conn,
                actor,
                name,
                "delete_alias",
                current[1],
                {"alias": alias, "from": current[1], **dict(details or {})},
            )
            return int(current[1])

        return self._write(remove)

    # -- validations and audit -----------------------------------------------------------

    def add_validation(
        self,
        name: str,
        version: int,
        *,
        status: str,
        checks: Sequence[str],
        report: Mapping[str, Any],
        baseline_version: int | None = None,
        baseline_alias: str | None = None,
        data_digest: str = "",
        report_digest: str | None = None,
        actor: str = "",
    ) -> ValidationRecord:
        number = v.check_version(version)
        if status not in VALIDATION_STATUSES:
            raise InvalidInput(f"validation status must be one of {VALIDATION_STATUSES}")
        try:
            report_text = json.dumps(dict(report), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"a validation report must be plain JSON: {exc}") from None

        def add(conn: sa.Connection) -> int:
            model = _model_row(conn, name)
            version_id = _version_id(conn, model, name, number)
            baseline_id = None
            if baseline_version is not None:
                baseline_id = _version_id(conn, model, name, baseline_version)
            record_id = conn.execute(
                t.model_validations.insert()
                .values(
                    version_id=version_id,
                    baseline_id=baseline_id,
                    baseline_alias=baseline_alias,
                    status=status,
                    checks=json.dumps(list(checks)),
                    report=report_text,
                    data_digest=data_digest,
                    report_digest=report_digest,
                    created_at=time.time(),
                    created_by=actor,
                )
                .returning(t.model_validations.c.id)
            ).scalar_one()
            _audit(
                conn,
                actor,
                name,
                "validate",
                number,
                {
                    "validation": record_id,
                    "status": status,
                    "baseline": baseline_version,
                    "baseline_alias": baseline_alias,
                },
            )
            return int(record_id)

        record_id = self._write(add)
        return next(r for r in self.list_validations(name, number) if r.id == record_id)

    def list_validations(self, name: str, version: int | None = None) -> list[ValidationRecord]:
        """Validations of one version, or of every version of ``name``; newest first."""
        v.check_model_name(name)
        vals, ver, base = t.model_validations, _VERSIONS, _VERSIONS.alias("baseline")

        def read(conn: sa.Connection) -> list[ValidationRecord]:
            model = _model_row(conn, name)
            query = (
                sa.select(vals, ver.c.version, base.c.version.label("baseline_version"))
                .join(ver, ver.c.id == vals.c.version_id)
                .outerjoin(base, base.c.id == vals.c.baseline_id)
                .where(ver.c.model_id == model.id)
                .order_by(vals.c.id.desc())
            )
            if version is not None:
                query = query.where(ver.c.version == v.check_version(version))
            return [
                ValidationRecord(
                    id=row.id,
                    name=name,
                    version=row.version,
                    status=row.status,
                    checks=json.loads(row.checks),
                    report=json.loads(row.report),
                    baseline_version=row.baseline_version,
                    baseline_alias=row.baseline_alias,
                    data_digest=row.data_digest,
                    report_digest=row.report_digest,
                    created_at=row.created_at,
                    created_by=row.created_by,
                )
                for row in conn.execute(query)
            ]

        return self._read(read)

    def record_audit(
        self,
        name: str,
        action: str,
        *,
        version: int | None = None,
        actor: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Record something that changed nothing in the registry (a refused promotion)."""
        self._write(lambda conn: _audit(conn, actor, name, action, version, dict(details or {})))

    def list_audit(self, name: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """The audit log, newest first; of one model when ``name`` is given."""
        audit = t.model_audit
        query = sa.select(audit).order_by(audit.c.id.desc()).limit(max(1, int(limit)))
        if name is not None:
            query = query.where(audit.c.model == v.check_model_name(name))
        return self._read(
            lambda conn: [
                AuditEntry(
                    id=row.id,
                    time=row.time,
                    actor=row.actor,
                    model=row.model,
                    action=row.action,
                    version=row.version,
                    details=json.loads(row.details),
                )
                for row in conn.execute(query)
            ]
        )

    def model_digests(self) -> set[str]:
        """Blob digests that registered versions and validation reports hold on to."""

        def read(conn: sa.Connection) -> set[str]:
            files = conn.execute(sa.select(t.model_version_files.c.digest).distinct())
            reports = conn.execute(
                sa.select(t.model_validations.c.report_digest).where(
                    t.model_validations.c.report_digest.is_not(None)
                )
            )
            return {row[0] for row in files} | {row[0] for row in reports}

        return self._read(read)


# -- helpers -------------------------------------------------------------------------------------


def _tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidInput(f"tags must be a mapping of key to value, got {tags!r:.80}")
    return {v.check_key(k, "tag"): v.tag_value(k, val) for k, val in tags.items()}


def _model_row(
    conn: sa.Connection, name: str, *, missing_ok: bool = False, lock: bool = False
) -> Any:
    query = sa.select(_MODELS).where(_MODELS.c.name == name)
    if lock and conn.dialect.name == "postgresql":
        # Serialises version numbering and alias moves per model; SQLite's writes are
        # serialised already by BEGIN IMMEDIATE.
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None and not missing_ok:
        raise NotFound(f"no registered model named {name!r}")
    return row


def _insert_model(
    conn: sa.Connection, name: str, description: str, policy: dict[str, Any], actor: str
) -> None:
    now = time.time()
    conn.execute(
        _MODELS.insert().values(
            name=name,
            description=description,
            policy=json.dumps(policy),
            created_at=now,
            updated_at=now,
            created_by=actor,
        )
    )


def _version_id(conn: sa.Connection, model: Any, name: str, number: int) -> int:
    found = conn.execute(
        sa.select(_VERSIONS.c.id).where(
            _VERSIONS.c.model_id == model.id, _VERSIONS.c.version == number
        )
    ).scalar()
    if found is None:
        raise NotFound(f"model {name!r} has no version {number}")
    return int(found)


def _alias_holder(conn: sa.Connection, model_id: int, alias: str) -> tuple[int, int] | None:
    """(version row id, version number) the alias points at, or None."""
    row = conn.execute(
        sa.select(_ALIASES.c.version_id, _VERSIONS.c.version)
        .join(_VERSIONS, _VERSIONS.c.id == _ALIASES.c.version_id)
        .where(_ALIASES.c.model_id == model_id, _ALIASES.c.alias == alias)
    ).first()
    return None if row is None else (int(row[0]), int(row[1]))


def _check_expected(
    name: str, alias: str, current: tuple[int, int] | None, expected: Expected
) -> None:
    if expected is ...:
        return
    holder = None if current is None else current[1]
    if holder != expected:
        was = "unset" if expected is None else f"version {expected}"
        now = "unset" if holder is None else f"version {holder}"
        raise Conflict(
            f"alias {alias!r} of {name!r} changed: expected {was}, it is {now} now; "
            "validate against the new holder and try again"
        )


def _put_tags(
    conn: sa.Connection, table: sa.Table, owner: str, owner_id: int, tags: dict[str, str]
) -> None:
    if not tags:
        return
    conn.execute(table.delete().where(table.c[owner] == owner_id, table.c.key.in_(list(tags))))
    conn.execute(
        table.insert(), [{owner: owner_id, "key": k, "value": val} for k, val in tags.items()]
    )


def move_alias(
    conn: sa.Connection,
    name: str,
    alias: str,
    number: int,
    *,
    expected: Expected = ...,
    actor: str = "",
    action: str = "set_alias",
    details: Mapping[str, Any] | None = None,
) -> int | None:
    """Point ``alias`` of model ``name`` at version ``number`` inside the caller's
    transaction, with its audit entry; the version it held before (see ``set_alias``)."""
    model = _model_row(conn, name, lock=True)
    target = _version_id(conn, model, name, number)
    current = _alias_holder(conn, model.id, alias)
    _check_expected(name, alias, current, expected)
    now = time.time()
    if current is None:
        try:
            with conn.begin_nested():
                conn.execute(
                    _ALIASES.insert().values(
                        model_id=model.id,
                        alias=alias,
                        version_id=target,
                        updated_at=now,
                        updated_by=actor,
                    )
                )
        except sa.exc.IntegrityError:
            raise Conflict(
                f"alias {alias!r} of {name!r} was set by someone else meanwhile; "
                "look again and retry"
            ) from None
    else:
        moved = conn.execute(
            _ALIASES.update()
            .where(
                _ALIASES.c.model_id == model.id,
                _ALIASES.c.alias == alias,
                _ALIASES.c.version_id == current[0],
            )
            .values(version_id=target, updated_at=now, updated_by=actor)
        ).rowcount
        if moved != 1:
            raise Conflict(f"alias {alias!r} of {name!r} moved meanwhile; look again and retry")
    previous = None if current is None else current[1]
    _audit(
        conn,
        actor,
        name,
        action,
        number,
        {"alias": alias, "from": previous, "to": number, **dict(details or {})},
    )
    return previous


def _audit(
    conn: sa.Connection,
    actor: str,
    name: str,
    action: str,
    version: int | None,
    details: Mapping[str, Any],
) -> None:
    conn.execute(
        t.model_audit.insert().values(
            time=time.time(),
            actor=actor,
            model=name,
            action=action,
            version=version,
            details=json.dumps(dict(details), default=str),
        )
    )


def _load_model(conn: sa.Connection, row: Any) -> RegisteredModel:
    tags = dict(
        conn.execute(
            sa.select(t.registered_model_tags.c.key, t.registered_model_tags.c.value).where(
                t.registered_model_tags.c.model_id == row.id
            )
        ).all()
    )
    aliases = dict(
        conn.execute(
            sa.select(_ALIASES.c.alias, _VERSIONS.c.version)
            .join(_VERSIONS, _VERSIONS.c.id == _ALIASES.c.version_id)
            .where(_ALIASES.c.model_id == row.id)
            .order_by(_ALIASES.c.alias)
        ).all()
    )
    latest = conn.execute(
        sa.select(sa.func.max(_VERSIONS.c.version)).where(_VERSIONS.c.model_id == row.id)
    ).scalar()
    return RegisteredModel(
        name=row.name,
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
        tags=tags,
        aliases=aliases,
        policy=json.loads(row.policy or "{}"),
        latest_version=latest,
    )


def _load_version(conn: sa.Connection, name: str, row: Any) -> ModelVersion:
    files = [
        ArtifactEntry(r.path, r.digest, r.size)
        for r in conn.execute(
            sa.select(t.model_version_files)
            .where(t.model_version_files.c.version_id == row.id)
            .order_by(t.model_version_files.c.path)
        )
    ]
    tags = dict(
        conn.execute(
            sa.select(t.model_version_tags.c.key, t.model_version_tags.c.value).where(
                t.model_version_tags.c.version_id == row.id
            )
        ).all()
    )
    aliases = list(
        conn.execute(
            sa.select(_ALIASES.c.alias)
            .where(_ALIASES.c.version_id == row.id)
            .order_by(_ALIASES.c.alias)
        ).scalars()
    )
    return ModelVersion(
        name=name,
        version=row.version,
        flavor=row.flavor,
        digest=row.digest,
        files=files,
        run_id=row.run_id,
        artifact_path=row.artifact_path,
        signature=json.loads(row.signature) if row.signature else None,
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
        tags=tags,
        aliases=aliases,
    )
