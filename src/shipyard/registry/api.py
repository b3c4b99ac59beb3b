"""The registry as users call it: load by URI, register, move aliases, promote under the
model's policy (``registry/policy.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.artifacts.folders import materialize
from shipyard.errors import Conflict, InvalidInput, NotFound, PermissionDenied, ValidationFailed
from shipyard.models.files import MANIFEST, LoadedModel
from shipyard.models.files import load_model as load_model_folder
from shipyard.registry.policy import Policy, Requirement, edited, unmet
from shipyard.registry.uris import ModelRef, RunRef, parse_model_ref, parse_uri
from shipyard.store import validation as v
from shipyard.store.base import Store
from shipyard.store.entities import ModelVersion, ValidationRecord
from shipyard.store.sql.registry import manifest_digest
from shipyard.tracking.models import current_user
from shipyard.tracking.tracker import Tracker, get_tracker


def current_tracker() -> Tracker:
    tracker = get_tracker()
    tracker.writer.flush()  # versions and artifacts logged by this process are visible
    return tracker


def resolve(store: Store, ref: ModelRef) -> ModelVersion:
    if ref.version is not None:
        return store.get_model_version(ref.name, ref.version)
    return store.get_model_version_by_alias(ref.name, ref.alias or "latest")


def get_model_version(ref: str) -> ModelVersion:
    """A registered version by ``NAME/N``, ``NAME@ALIAS`` or ``models:/...``."""
    return resolve(current_tracker().store, parse_model_ref(ref))


def model_folder(uri: str) -> Path:
    """A local folder holding the model at ``uri`` (copied from the artifact store once)."""
    tracker = current_tracker()
    ref = parse_uri(uri)
    if isinstance(ref, RunRef):
        prefix = f"{ref.path}/"
        files = [
            type(e)(e.path[len(prefix) :], e.digest, e.size)
            for e in tracker.store.list_artifacts(ref.run_id, prefix=prefix)
        ]
        if not any(f.path == MANIFEST for f in files):
            raise NotFound(f"run {ref.run_id} has no model at {ref.path!r} (no {MANIFEST})")
        return materialize(tracker.blobs, files, manifest_digest(files), uri, MANIFEST)
    version = resolve(tracker.store, ref)
    return materialize(tracker.blobs, version.files, version.digest, version.uri, MANIFEST)


def load_model(uri: str, *, trust: bool = False) -> LoadedModel:
    """Load ``models:/NAME/N``, ``models:/NAME@ALIAS`` or ``runs:/RUN_ID/PATH``.

    Models whose format can run code when loaded (cloudpickle) need ``trust=True``.
    """
    return load_model_folder(model_folder(uri), trust=trust)


def register_model(
    source: str, name: str, *, description: str = "", tags: dict[str, Any] | None = None
) -> ModelVersion:
    """Register a model already logged in a run (``runs:/RUN_ID/PATH``) as a new version."""
    ref = parse_uri(source)
    if not isinstance(ref, RunRef):
        raise InvalidInput(f"register_model takes a runs:/RUN_ID/PATH URI, got {source!r}")
    tracker = current_tracker()
    folder = model_folder(source)
    from shipyard.models.files import read_info

    info = read_info(folder)
    prefix = f"{ref.path}/"
    files = [
        type(e)(e.path[len(prefix) :], e.digest, e.size)
        for e in tracker.store.list_artifacts(ref.run_id, prefix=prefix)
    ]
    return tracker.store.create_model_version(
        name,
        files=files,
        flavor=info.flavor,
        signature=info.signature.to_dict() if info.signature else None,
        run_id=ref.run_id,
        artifact_path=ref.path,
        description=description,
        tags={str(k): str(val) for k, val in (tags or {}).items()},
        actor=current_user(),
    )


def set_policy(
    name: str,
    *,
    protected_aliases: Sequence[str] | None = None,
    maintainers: Sequence[str] | None = None,
    required_checks: Sequence[Requirement] | None = None,
) -> Policy:
    """Replace parts of a registered model's promotion policy (maintainers only)."""
    current = Policy.of(current_tracker().store.get_registered_model(name))
    for what, given in (("protected_aliases", protected_aliases), ("maintainers", maintainers)):
        if isinstance(given, str):
            raise InvalidInput(f"{what} must be a list of strings, got {given!r}")
    new = edited(
        Policy(
            [] if protected_aliases is not None else current.protected_aliases,
            [] if maintainers is not None else current.maintainers,
            current.required_checks,
        ),
        protect=protected_aliases or (),
        add_maintainers=maintainers or (),
        replace_required=required_checks,
    )
    return save_policy(name, new)


def save_policy(name: str, new: Policy) -> Policy:
    """Store ``new`` as the policy of ``name``, if the actor maintains it (audited)."""
    store = current_tracker().store
    actor = current_user()
    policy = Policy.of(store.get_registered_model(name))
    if not policy.may_maintain(actor):
        raise PermissionDenied(
            f"{actor!r} is not a maintainer of {name!r} ({', '.join(policy.maintainers)}); "
            "only maintainers change its policy"
        )
    if not new.maintainers:
        raise InvalidInput(f"{name!r} would have no maintainers; keep at least one")
    return Policy.of(store.update_registered_model(name, policy=new.to_dict(), actor=actor))


def set_alias(ref: str, alias: str) -> ModelVersion:
    """Point ``alias`` at the version ``ref`` names. Protected aliases move only by promote."""
    store = current_tracker().store
    version = resolve(store, parse_model_ref(ref))
    v.check_alias(alias, settable=True)
    policy = Policy.of(store.get_registered_model(version.name))
    if alias in policy.protected_aliases:
        raise PermissionDenied(
            f"alias {alias!r} of {version.name!r} is protected: move it with "
            f"`shipyard models promote {version.name}/{version.version} --alias {alias}`"
        )
    store.set_alias(version.name, alias, version.version, actor=current_user())
    return store.get_model_version(version.name, version.version)


def delete_alias(name: str, alias: str, *, reason: str | None = None) -> int:
    """Remove an alias; a protected one only by a maintainer, with a reason."""
    store = current_tracker().store
    actor = current_user()
    policy = Policy.of(store.get_registered_model(name))
    if alias in policy.protected_aliases:
        if not policy.may_maintain(actor):
            raise PermissionDenied(
                f"alias {alias!r} of {name!r} is protected; only its maintainers "
                f"({', '.join(policy.maintainers)}) may remove it"
            )
        if not reason:
            raise InvalidInput(f"removing the protected alias {alias!r} needs a reason")
    return store.delete_alias(
        name, alias, actor=actor, details={"reason": reason} if reason else None
    )


@dataclass(frozen=True)
class Promotion:
    name: str
    version: int
    alias: str
    previous: int | None
    validation: ValidationRecord | None
    forced: bool = False


def promote(
    ref: str, alias: str = "production", *, force: bool = False, reason: str = ""
) -> Promotion:
    """Move ``alias`` to the version ``ref`` names, if it passed validation against the
    alias's current holder under the model's required checks; ``force`` (with a reason)
    overrides the gate and is audited. Conflict if the alias moves meanwhile."""
    store = current_tracker().store
    version = resolve(store, parse_model_ref(ref))
    name, number = version.name, version.version
    v.check_alias(alias, settable=True)
    actor = current_user()
    model = store.get_registered_model(name)
    policy = Policy.of(model)
    _check_maintainer(store, policy, name, number, alias, actor)
    holder = model.aliases.get(alias)
    if holder == number:
        raise Conflict(f"{alias!r} already points at {name}/{number}")
    if force:
        if not reason or not reason.strip():
            raise InvalidInput("a forced promotion needs --reason saying why")
        previous = store.set_alias(
            name,
            alias,
            number,
            expected=holder,
            actor=actor,
            action="force_promote",
            details={"reason": reason},
        )
        return Promotion(name, number, alias, previous, None, forced=True)
    record = _passing_validation(store, name, number, alias, holder, policy)
    previous = store.set_alias(
        name,
        alias,
        number,
        expected=holder,
        actor=actor,
        action="promote",
        details={"validation": record.id, "reason": reason or None},
    )
    return Promotion(name, number, alias, previous, record)


def check_promotion(store: Store, name: str, number: int, alias: str) -> ValidationRecord:
    """Raise unless the current user could promote ``name/number`` to ``alias`` now (what
    ``promote`` checks without force): used before a rollout that will move the alias."""
    v.check_alias(alias, settable=True)
    actor = current_user()
    model = store.get_registered_model(name)
    policy = Policy.of(model)
    _check_maintainer(store, policy, name, number, alias, actor)
    return _passing_validation(store, name, number, alias, model.aliases.get(alias), policy)


def _check_maintainer(
    store: Store, policy: Policy, name: str, number: int, alias: str, actor: str
) -> None:
    if alias in policy.protected_aliases and not policy.may_maintain(actor):
        store.record_audit(
            name,
            "promote_refused",
            version=number,
            actor=actor,
            details={"alias": alias, "why": "not a maintainer"},
        )
        raise PermissionDenied(
            f"alias {alias!r} of {name!r} is protected; only its maintainers "
            f"({', '.join(policy.maintainers)}) may move it, not {actor!r}"
        )


def _passing_validation(
    store: Store, name: str, number: int, alias: str, holder: int | None, policy: Policy
) -> ValidationRecord:
    records = store.list_validations(name, number)
    usable = [
        r
        for r in records
        if r.status == "passed" and r.baseline_version == holder and not unmet(policy, r, holder)
    ]
    if usable:
        return usable[0]
    actor = current_user()
    holder_text = "no holder" if holder is None else f"{name}/{holder}"
    against_holder = [r for r in records if r.baseline_version == holder]
    stale = [r for r in records if r.status == "passed" and r.baseline_version != holder]
    if stale and not against_holder:
        was = stale[0].baseline_version
        store.record_audit(
            name,
            "promote_refused",
            version=number,
            actor=actor,
            details={"alias": alias, "why": "holder changed", "validated_against": was},
        )
        raise Conflict(
            f"{name}/{number} was validated against "
            f"{'no holder' if was is None else f'{name}/{was}'}, but {alias!r} now has "
            f"{holder_text}; validate again: "
            f"shipyard models validate {name}/{number} --baseline @{alias}"
        )
    missing = ""
    passed_vs_holder = [r for r in against_holder if r.status == "passed"]
    if passed_vs_holder:
        lacking = unmet(policy, passed_vs_holder[0], holder)
        missing = f" that includes {'; '.join(lacking)}"
    last = f" (its last one: {against_holder[0].status})" if against_holder else ""
    store.record_audit(
        name,
        "promote_refused",
        version=number,
        actor=actor,
        details={"alias": alias, "why": "no passing validation"},
    )
    raise ValidationFailed(
        f"{name}/{number} has no passing validation against the holder of {alias!r} "
        f"({holder_text}){missing}{last}; run `shipyard models validate {name}/{number}`, "
        "or override with --force --reason"
    )


def lineage(version: ModelVersion) -> dict[str, Any]:
    """Where a version came from: its run, the data sets, the code commit and environment."""
    store = current_tracker().store
    out: dict[str, Any] = {"run_id": version.run_id, "artifact_path": version.artifact_path}
    if version.run_id is None:
        return out
    try:
        run = store.get_run(version.run_id)
    except NotFound:
        out["run"] = "deleted"
        return out
    tags = run.tags
    out.update(
        experiment_id=run.experiment_id,
        run_name=run.name,
        run_status=run.status,
        git_commit=tags.get("shipyard.git.commit"),
        git_branch=tags.get("shipyard.git.branch"),
        git_dirty=tags.get("shipyard.git.dirty"),
        source=tags.get("shipyard.source.name"),
        environment=tags.get("shipyard.env.digest"),
        datasets=[
            {"name": d.name, "digest": d.digest, "rows": d.rows, "context": d.context}
            for d in store.list_datasets(version.run_id)
        ],
    )
    return out
