"""The serving half of SqlStore: endpoints, deployments, rollouts, analyses, events, the
figures gateways record, gateway heartbeats and prediction log files.

Every change to what a gateway serves bumps one revision counter in the same transaction, so a
gateway learns of it with one small read. Rollout changes are compare-and-set on the rollout's
state and step: two gateways judging the same step cannot both advance it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from shipyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound, ShipyardError
from shipyard.store import validation as v
from shipyard.store.entities import (
    ACTIVE_ROLLOUT_STATES,
    DEPLOYMENT_ROLES,
    ROLLOUT_STATES,
    ROLLOUT_STRATEGIES,
    AnalysisRecord,
    Deployment,
    Endpoint,
    EndpointEvent,
    GatewayInfo,
    PredictionLogFile,
    Rollout,
)
from shipyard.store.sql import schema as t

_E, _D, _R = t.endpoints, t.deployments, t.rollouts
Roles = Mapping[int, tuple[str, float]]  # deployment id -> (role, weight)
EventIn = tuple[str, str, Mapping[str, Any]]  # kind, message, data


class ServingMixin:
    """Serving methods of SqlStore; relies on its ``_read`` and ``_write``."""

    _read: Callable[..., Any]
    _write: Callable[..., Any]

    def serving_revision(self) -> int:
        """A counter that moves whenever any endpoint, deployment or rollout changes."""
        return int(
            self._read(
                lambda conn: conn.execute(sa.select(t.serving_state.c.revision)).scalar() or 0
            )
        )

    # -- endpoints -----------------------------------------------------------------------

    def create_endpoint(
        self,
        name: str,
        *,
        model_name: str,
        model_version: int,
        description: str = "",
        config: Mapping[str, Any] | None = None,
        actor: str = "",
    ) -> Endpoint:
        v.check_endpoint_name(name)
        v.check_text(description, "description")

        def create(conn: sa.Connection) -> None:
            if _endpoint_row(conn, name, missing_ok=True) is not None:
                raise AlreadyExists(f"endpoint {name!r} already exists")
            _check_version_exists(conn, model_name, model_version)
            now = time.time()
            endpoint_id = _new_id(
                conn,
                _E.insert().values(
                    name=name,
                    description=description,
                    config=json.dumps(dict(config or {})),
                    created_at=now,
                    updated_at=now,
                    created_by=actor,
                ),
            )
            _insert_deployment(conn, endpoint_id, model_name, model_version, "primary", 1.0)
            _event(conn, name, "created", f"serving {model_name}/{model_version}", {}, actor)
            _bump(conn)

        self._write(create)
        return self.get_endpoint(name)

    def get_endpoint(self, name: str) -> Endpoint:
        v.check_endpoint_name(name)
        return self._read(lambda conn: _load_endpoint(conn, _endpoint_row(conn, name)))

    def list_endpoints(self) -> list[Endpoint]:
        def read(conn: sa.Connection) -> list[Endpoint]:
            rows = conn.execute(sa.select(_E).order_by(_E.c.name)).all()
            return [_load_endpoint(conn, row) for row in rows]

        return self._read(read)

    def update_endpoint(
        self,
        name: str,
        *,
        description: str | None = None,
        config: Mapping[str, Any] | None = None,
        actor: str = "",
    ) -> Endpoint:
        v.check_endpoint_name(name)

        def update(conn: sa.Connection) -> None:
            row = _endpoint_row(conn, name)
            values: dict[str, Any] = {"updated_at": time.time()}
            if description is not None:
                values["description"] = v.check_text(description, "description")
            if config is not None:
                values["config"] = json.dumps(dict(config))
            conn.execute(_E.update().where(_E.c.id == row.id).values(**values))
            changed = {k: val for k, val in values.items() if k != "updated_at"}
            _event(conn, name, "updated", "endpoint settings changed", changed, actor)
            _bump(conn)

        self._write(update)
        return self.get_endpoint(name)

    def delete_endpoint(self, name: str, *, actor: str = "") -> None:
        """Delete an endpoint with its deployments, rollouts and figures (events stay)."""
        v.check_endpoint_name(name)

        def delete(conn: sa.Connection) -> None:
            row = _endpoint_row(conn, name, lock=True)  # no rollout starts meanwhile
            ids = sa.select(_D.c.id).where(_D.c.endpoint_id == row.id)
            rollouts = sa.select(_R.c.id).where(_R.c.endpoint_id == row.id)
            conn.execute(
                t.rollout_analyses.delete().where(t.rollout_analyses.c.rollout_id.in_(rollouts))
            )
            conn.execute(_R.delete().where(_R.c.endpoint_id == row.id))
            conn.execute(
                t.deployment_stats.delete().where(t.deployment_stats.c.deployment_id.in_(ids))
            )
            conn.execute(_D.delete().where(_D.c.endpoint_id == row.id))
            conn.execute(_E.delete().where(_E.c.id == row.id))
            _event(conn, name, "deleted", "endpoint deleted", {}, actor)
            _bump(conn)

        self._write(delete)

    # -- deployments ---------------------------------------------------------------------

    def get_deployment(self, deployment_id: int) -> Deployment:
        def read(conn: sa.Connection) -> Deployment:
            row = conn.execute(
                sa.select(_D, _E.c.name).join(_E).where(_D.c.id == deployment_id)
            ).first()
            if row is None:
                raise NotFound(f"no deployment with id {deployment_id}")
            return _deployment(row)

        return self._read(read)

    def list_deployments(self, endpoint: str, *, include_retired: bool = True) -> list[Deployment]:
        """Every deployment the endpoint has had, newest first."""
        v.check_endpoint_name(endpoint)

        def read(conn: sa.Connection) -> list[Deployment]:
            row = _endpoint_row(conn, endpoint)
            query = sa.select(_D, _E.c.name).join(_E).where(_D.c.endpoint_id == row.id)
            if not include_retired:
                query = query.where(_D.c.role != "retired")
            return [_deployment(r) for r in conn.execute(query.order_by(_D.c.id.desc()))]

        return self._read(read)

    def set_roles(
        self,
        endpoint: str,
        roles: Roles,
        *,
        expect_primary: int | None = None,
        event: EventIn | None = None,
        actor: str = "",
    ) -> Endpoint:
        """Change roles and weights outside a rollout (a rollback, say), compare-and-set on
        the current primary when ``expect_primary`` is given; Conflict while a rollout of
        the endpoint is running or paused (it would promote over the change)."""
        v.check_endpoint_name(endpoint)

        def change(conn: sa.Connection) -> None:
            row = _endpoint_row(conn, endpoint, lock=True)
            active = _active_rollout_row(conn, row.id)
            if active is not None:
                raise Conflict(
                    f"endpoint {endpoint!r} has rollout {active.id} in progress; abort it "
                    f"instead (shipyard rollouts abort {endpoint})"
                )
            if expect_primary is not None:
                primary = _primary_id(conn, row.id)
                if primary != expect_primary:
                    raise Conflict(
                        f"endpoint {endpoint!r} changed meanwhile (its primary is deployment "
                        f"{primary}, not {expect_primary}); look again and retry"
                    )
            _apply_roles(conn, row.id, roles)
            if event is not None:
                _event(conn, endpoint, *event, actor)
            _bump(conn)

        self._write(change)
        return self.get_endpoint(endpoint)

    # -- rollouts ------------------------------------------------------------------------

    def start_rollout(
        self,
        endpoint: str,
        *,
        model_name: str,
        model_version: int,
        strategy: str,
        spec: Mapping[str, Any],
        role: str,
        weight: float = 0.0,
        actor: str = "",
    ) -> Rollout:
        """Add the candidate as a new deployment and start its rollout; Conflict while
        another rollout of the endpoint is running or paused."""
        v.check_endpoint_name(endpoint)
        if strategy not in ROLLOUT_STRATEGIES:
            raise InvalidInput(
                f"unknown rollout strategy {strategy!r}; use one of {', '.join(ROLLOUT_STRATEGIES)}"
            )

        def start(conn: sa.Connection) -> int:
            row = _endpoint_row(conn, endpoint, lock=True)
            _check_version_exists(conn, model_name, model_version)
            active = _active_rollout_row(conn, row.id)
            if active is not None:
                raise Conflict(
                    f"endpoint {endpoint!r} already has rollout {active.id} ({active.state}); "
                    f"promote or abort it first (shipyard rollouts abort {endpoint})"
                )
            primary = _primary_id(conn, row.id)
            current = conn.execute(sa.select(_D).where(_D.c.id == primary)).one()
            if (current.model_name, current.model_version) == (model_name, model_version):
                raise Conflict(
                    f"{model_name}/{model_version} is already the primary of endpoint {endpoint!r}"
                )
            standby = conn.execute(
                sa.select(_D.c.id).where(
                    _D.c.endpoint_id == row.id,
                    _D.c.role == "standby",
                    _D.c.model_name == model_name,
                    _D.c.model_version == model_version,
                )
            ).first()
            if standby is not None:  # still loaded from before: no second copy of it
                candidate = int(standby.id)
                _apply_roles(conn, row.id, {candidate: (role, weight)})
            else:
                candidate = _insert_deployment(
                    conn, row.id, model_name, model_version, role, weight
                )
            now = time.time()
            rollout_id = _new_id(
                conn,
                _R.insert().values(
                    endpoint_id=row.id,
                    candidate_id=candidate,
                    baseline_id=primary,
                    strategy=strategy,
                    spec=json.dumps(dict(spec)),
                    state="running",
                    step=0,
                    step_started_at=None,
                    created_at=now,
                    updated_at=now,
                    created_by=actor,
                ),
            )
            message = (
                f"rollout {rollout_id} started: {model_name}/{model_version} by {strategy} "
                f"against {current.model_name}/{current.model_version}"
            )
            _event(conn, endpoint, "rollout_started", message, {"rollout": rollout_id}, actor)
            _bump(conn)
            return rollout_id

        return self.get_rollout(self._write(start))

    def get_rollout(self, rollout_id: int) -> Rollout:
        def read(conn: sa.Connection) -> Rollout:
            row = conn.execute(
                sa.select(_R, _E.c.name).join(_E).where(_R.c.id == rollout_id)
            ).first()
            if row is None:
                raise NotFound(f"no rollout with id {rollout_id}")
            return _rollout(row)

        return self._read(read)

    def list_rollouts(
        self, endpoint: str | None = None, *, active_only: bool = False, limit: int = 100
    ) -> list[Rollout]:
        """Rollouts, newest first."""

        def read(conn: sa.Connection) -> list[Rollout]:
            query = sa.select(_R, _E.c.name).join(_E)
            if endpoint is not None:
                query = query.where(_E.c.name == v.check_endpoint_name(endpoint))
            if active_only:
                query = query.where(_R.c.state.in_(ACTIVE_ROLLOUT_STATES))
            rows = conn.execute(query.order_by(_R.c.id.desc()).limit(limit))
            return [_rollout(r) for r in rows]

        return self._read(read)

    def active_rollout(self, endpoint: str) -> Rollout | None:
        """The endpoint's running or paused rollout, if any (NotFound for no endpoint)."""
        self.get_endpoint(endpoint)
        found = self.list_rollouts(endpoint, active_only=True, limit=1)
        return found[0] if found else None

    def update_rollout(
        self,
        rollout_id: int,
        *,
        expect_state: str,
        expect_step: int,
        state: str | None = None,
        step: int | None = None,
        step_started_at: float | None = None,
        reason: str | None = None,
        roles: Roles | None = None,
        analysis: tuple[str, Mapping[str, Any]] | None = None,
        event: EventIn | None = None,
        actor: str = "",
        expect_unstarted: bool = False,
        promote: bool = False,
        set_alias: str | None = None,
    ) -> Rollout:
        """Move a rollout on, in one transaction with its role and weight changes, its
        analysis and its event; Conflict if it is no longer in ``expect_state`` at
        ``expect_step`` (or, with ``expect_unstarted``, its step has started): someone else
        moved it first. ``promote``: a deployment made primary records the one it
        replaced, which is where a rollback goes. ``set_alias``: the registry alias moves
        to the candidate's version in the same transaction (on behalf of ``actor``, else
        of whoever started the rollout), with an ``alias_moved`` event; an alias that
        cannot move leaves an ``alias_not_moved`` event instead of undoing the rest."""
        if state is not None and state not in ROLLOUT_STATES:
            raise InvalidInput(f"unknown rollout state {state!r}")

        def update(conn: sa.Connection) -> None:
            row = conn.execute(
                sa.select(_R, _E.c.name).join(_E).where(_R.c.id == rollout_id)
            ).first()
            if row is None:
                raise NotFound(f"no rollout with id {rollout_id}")
            now = time.time()
            values: dict[str, Any] = {"updated_at": now}
            if state is not None:
                values["state"] = state
                if state not in ACTIVE_ROLLOUT_STATES:
                    values["ended_at"] = now
            if step is not None:
                values["step"] = step
            if step_started_at is not None:
                values["step_started_at"] = step_started_at
            if reason is not None:
                values["reason"] = reason
            where = [_R.c.id == rollout_id, _R.c.state == expect_state, _R.c.step == expect_step]
            if expect_unstarted:
                where.append(_R.c.step_started_at.is_(None))
            done = conn.execute(_R.update().where(*where).values(**values))
            if done.rowcount != 1:
                current = conn.execute(
                    sa.select(_R.c.state, _R.c.step).where(_R.c.id == rollout_id)
                ).one()
                raise Conflict(
                    f"rollout {rollout_id} is {current.state} at step {current.step + 1}, not "
                    f"{expect_state} at step {expect_step + 1}: it changed meanwhile"
                )
            if roles:
                _apply_roles(conn, row.endpoint_id, roles, remember=promote)
            if analysis is not None:
                conn.execute(
                    t.rollout_analyses.insert().values(
                        rollout_id=rollout_id,
                        step=expect_step,
                        time=now,
                        outcome=analysis[0],
                        data=json.dumps(dict(analysis[1]), default=str),
                    )
                )
            if event is not None:
                _event(conn, row.name, *event, actor)
            if set_alias is not None:
                _rollout_alias(conn, row, set_alias, actor or row.created_by)
            _bump(conn)

        self._write(update)
        return self.get_rollout(rollout_id)

    def list_analyses(self, rollout_id: int) -> list[AnalysisRecord]:
        a = t.rollout_analyses

        def read(conn: sa.Connection) -> list[AnalysisRecord]:
            rows = conn.execute(sa.select(a).where(a.c.rollout_id == rollout_id).order_by(a.c.id))
            return [
                AnalysisRecord(r.id, r.rollout_id, r.step, r.time, r.outcome, json.loads(r.data))
                for r in rows
            ]

        return self._read(read)

    # -- events --------------------------------------------------------------------------

    def add_event(
        self,
        endpoint: str,
        kind: str,
        message: str,
        data: Mapping[str, Any] | None = None,
        *,
        actor: str = "",
    ) -> None:
        self._write(lambda conn: _event(conn, endpoint, kind, message, data or {}, actor))

    def list_events(
        self, endpoint: str | None = None, *, after_id: int = 0, limit: int = 100
    ) -> list[EndpointEvent]:
        """Events after ``after_id``: the newest ``limit`` of them, oldest first."""
        e = t.endpoint_events

        def read(conn: sa.Connection) -> list[EndpointEvent]:
            query = sa.select(e).where(e.c.id > after_id)
            if endpoint is not None:
                query = query.where(e.c.endpoint == endpoint)
            rows = conn.execute(query.order_by(e.c.id.desc()).limit(limit)).all()
            return [
                EndpointEvent(
                    r.id, r.endpoint, r.time, r.kind, r.message, json.loads(r.data), r.actor
                )
                for r in reversed(rows)
            ]

        return self._read(read)

    # -- figures from gateways -----------------------------------------------------------

    def add_stats(self, gateway: str, rows: Sequence[tuple[int, float, Mapping[str, Any]]]) -> None:
        """Store (deployment id, time, snapshot) rows a gateway recorded."""
        if not rows:
            return
        values = [
            {"deployment_id": d, "gateway": gateway, "time": at, "data": json.dumps(dict(data))}
            for d, at, data in rows
        ]
        self._write(lambda conn: conn.execute(t.deployment_stats.insert(), values))

    def get_stats(
        self, deployment_ids: Sequence[int], since: float, until: float | None = None
    ) -> dict[int, list[dict[str, Any]]]:
        """Snapshots recorded for each deployment in ``(since, until]``."""
        s = t.deployment_stats
        out: dict[int, list[dict[str, Any]]] = {d: [] for d in deployment_ids}
        if not deployment_ids:
            return out

        def read(conn: sa.Connection) -> None:
            query = sa.select(s.c.deployment_id, s.c.data).where(
                s.c.deployment_id.in_(list(deployment_ids)), s.c.time > since
            )
            if until is not None:
                query = query.where(s.c.time <= until)
            for deployment_id, data in conn.execute(query):
                out[deployment_id].append(json.loads(data))

        self._read(read)
        return out

    def prune_stats(self, before: float) -> int:
        s = t.deployment_stats
        return int(
            self._write(lambda conn: conn.execute(s.delete().where(s.c.time < before)).rowcount)
        )

    def heartbeat(
        self, gateway: str, *, address: str, pid: int, started_at: float, info: Mapping[str, Any]
    ) -> None:
        """Record that a gateway is alive and what it has loaded."""
        g = t.gateways
        now = time.time()
        values = {"address": address, "pid": pid, "seen_at": now, "info": json.dumps(dict(info))}

        def beat(conn: sa.Connection) -> None:
            done = conn.execute(g.update().where(g.c.id == gateway).values(**values))
            if done.rowcount == 0:
                conn.execute(g.insert().values(id=gateway, started_at=started_at, **values))

        self._write(beat)

    def list_gateways(self, seen_since: float = 0.0) -> list[GatewayInfo]:
        g = t.gateways

        def read(conn: sa.Connection) -> list[GatewayInfo]:
            rows = conn.execute(sa.select(g).where(g.c.seen_at >= seen_since).order_by(g.c.id))
            return [
                GatewayInfo(r.id, r.address, r.pid, r.started_at, r.seen_at, json.loads(r.info))
                for r in rows
            ]

        return self._read(read)

    def remove_gateway(self, gateway: str) -> None:
        self._write(
            lambda conn: conn.execute(t.gateways.delete().where(t.gateways.c.id == gateway))
        )

    # -- prediction logs -----------------------------------------------------------------

    def add_prediction_log(
        self,
        endpoint: str,
        *,
        digest: str,
        rows: int,
        first_time: float,
        last_time: float,
        gateway: str = "",
    ) -> None:
        values = {
            "endpoint": endpoint,
            "digest": digest,
            "rows": rows,
            "first_time": first_time,
            "last_time": last_time,
            "gateway": gateway,
        }
        self._write(lambda conn: conn.execute(t.prediction_logs.insert().values(**values)))

    def list_prediction_logs(
        self, endpoint: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[PredictionLogFile]:
        """The endpoint's newest ``limit`` log files after ``after_id``, oldest first."""
        p = t.prediction_logs

        def read(conn: sa.Connection) -> list[PredictionLogFile]:
            rows = conn.execute(
                sa.select(p)
                .where(p.c.endpoint == endpoint, p.c.id > after_id)
                .order_by(p.c.id.desc())
                .limit(limit)
            ).all()
            return [
                PredictionLogFile(
                    r.id, r.endpoint, r.digest, r.rows, r.first_time, r.last_time, r.gateway
                )
                for r in reversed(rows)
            ]

        return self._read(read)

    def serving_digests(self) -> set[str]:
        """Blob digests that prediction logs hold on to."""
        p = t.prediction_logs
        return self._read(
            lambda conn: set(conn.execute(sa.select(p.c.digest).distinct()).scalars())
        )


# -- helpers -------------------------------------------------------------------------------------


def _bump(conn: sa.Connection) -> None:
    conn.execute(
        t.serving_state.update()
        .where(t.serving_state.c.id == 1)
        .values(revision=t.serving_state.c.revision + 1)
    )


def _endpoint_row(
    conn: sa.Connection, name: str, *, missing_ok: bool = False, lock: bool = False
) -> Any:
    query = sa.select(_E).where(_E.c.name == name)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()  # serialises rollouts per endpoint
    row = conn.execute(query).first()
    if row is None and not missing_ok:
        raise NotFound(f"no endpoint named {name!r} (shipyard endpoints ls lists them)")
    return row


def _check_version_exists(conn: sa.Connection, name: str, version: int) -> None:
    found = conn.execute(
        sa.select(t.model_versions.c.id)
        .join(t.registered_models)
        .where(t.registered_models.c.name == name, t.model_versions.c.version == version)
    ).first()
    if found is None:
        raise NotFound(f"no model version {name}/{version} in the registry")


def _insert_deployment(
    conn: sa.Connection, endpoint_id: int, name: str, version: int, role: str, weight: float
) -> int:
    _check_role(role, weight)
    now = time.time()
    return _new_id(
        conn,
        _D.insert().values(
            endpoint_id=endpoint_id,
            model_name=name,
            model_version=version,
            role=role,
            weight=weight,
            created_at=now,
            updated_at=now,
        ),
    )


def _new_id(conn: sa.Connection, insert: Any) -> int:
    key = conn.execute(insert).inserted_primary_key
    assert key is not None  # every serving table has an integer key
    return int(key[0])


def _check_role(role: str, weight: float) -> None:
    if role not in DEPLOYMENT_ROLES:
        raise InvalidInput(f"unknown deployment role {role!r}; use one of {DEPLOYMENT_ROLES}")
    if not 0.0 <= weight <= 1.0:
        raise InvalidInput(f"a deployment's weight must be within [0, 1], got {weight}")


def _primary_id(conn: sa.Connection, endpoint_id: int) -> int:
    return int(
        conn.execute(
            sa.select(_D.c.id).where(_D.c.endpoint_id == endpoint_id, _D.c.role == "primary")
        ).scalar_one()
    )


def _apply_roles(
    conn: sa.Connection, endpoint_id: int, roles: Roles, *, remember: bool = False
) -> None:
    """Set roles and weights. With ``remember``, a deployment made primary records the one
    it replaced (a rollout promoting its candidate); going back (a rollback, a rollout
    switching back) keeps the restored one's own history, so rollbacks walk backwards.
    Exactly one primary must remain."""
    old_primary = _primary_id(conn, endpoint_id)
    now = time.time()
    for deployment_id, (role, weight) in roles.items():
        _check_role(role, weight)
        values: dict[str, Any] = {"role": role, "weight": weight, "updated_at": now}
        if remember and role == "primary" and deployment_id != old_primary:
            values["previous_id"] = old_primary
        done = conn.execute(
            _D.update()
            .where(_D.c.id == deployment_id, _D.c.endpoint_id == endpoint_id)
            .values(**values)
        )
        if done.rowcount != 1:
            raise NotFound(f"no deployment {deployment_id} on this endpoint")
    primaries = conn.execute(
        sa.select(sa.func.count())
        .select_from(_D)
        .where(_D.c.endpoint_id == endpoint_id, _D.c.role == "primary")
    ).scalar_one()
    if primaries != 1:
        raise InvalidInput(f"an endpoint needs exactly one primary deployment, not {primaries}")


def _active_rollout_row(conn: sa.Connection, endpoint_id: int) -> Any:
    """The endpoint's running or paused rollout (id, state), or None."""
    return conn.execute(
        sa.select(_R.c.id, _R.c.state).where(
            _R.c.endpoint_id == endpoint_id, _R.c.state.in_(ACTIVE_ROLLOUT_STATES)
        )
    ).first()


def _rollout_alias(conn: sa.Connection, rollout: Any, alias: str, actor: str) -> None:
    from shipyard.store.sql.registry import move_alias

    candidate = conn.execute(
        sa.select(_D.c.model_name, _D.c.model_version).where(_D.c.id == rollout.candidate_id)
    ).one()
    name, number = candidate.model_name, candidate.model_version
    data: dict[str, Any] = {"rollout": rollout.id, "alias": alias}
    try:
        v.check_alias(alias, settable=True)
        with conn.begin_nested():  # a refusal undoes only the move
            previous = move_alias(
                conn,
                name,
                alias,
                number,
                actor=actor,
                action="rollout_promote",
                details={"endpoint": rollout.name, "rollout": rollout.id},
            )
    except ShipyardError as exc:
        message = f"could not move {name}@{alias}: {exc.message}"
        _event(conn, rollout.name, "alias_not_moved", message, data, actor)
        return
    was = "(it had no holder)" if previous is None else f"(was version {previous})"
    message = f"{name}@{alias} -> version {number} {was}"
    _event(conn, rollout.name, "alias_moved", message, {**data, "previous": previous}, actor)


def _event(
    conn: sa.Connection,
    endpoint: str,
    kind: str,
    message: str,
    data: Mapping[str, Any],
    actor: str,
) -> None:
    conn.execute(
        t.endpoint_events.insert().values(
            endpoint=endpoint,
            time=time.time(),
            kind=kind,
            message=message,
            data=json.dumps(dict(data), default=str),
            actor=actor,
        )
    )


def _deployment(row: Any) -> Deployment:
    return Deployment(
        id=row.id,
        endpoint=row.name,
        model_name=row.model_name,
        model_version=row.model_version,
        role=row.role,
        weight=row.weight,
        previous_id=row.previous_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _load_endpoint(conn: sa.Connection, row: Any) -> Endpoint:
    deployments = conn.execute(
        sa.select(_D, _E.c.name)
        .join(_E)
        .where(_D.c.endpoint_id == row.id, _D.c.role != "retired")
        .order_by(_D.c.id)
    )
    return Endpoint(
        name=row.name,
        description=row.description,
        config=json.loads(row.config),
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
        deployments=tuple(_deployment(d) for d in deployments),
    )


def _rollout(row: Any) -> Rollout:
    return Rollout(
        id=row.id,
        endpoint=row.name,
        candidate_id=row.candidate_id,
        baseline_id=row.baseline_id,
        strategy=row.strategy,
        spec=json.loads(row.spec),
        state=row.state,
        step=row.step,
        step_started_at=row.step_started_at,
        reason=row.reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
        ended_at=row.ended_at,
        created_by=row.created_by,
    )
