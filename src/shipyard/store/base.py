"""The Store protocol: the only way any part of Shipyard reads or writes metadata."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import EllipsisType
from typing import Any, Protocol, runtime_checkable

from shipyard.store.entities import (
    AnalysisRecord,
    ArtifactEntry,
    AuditEntry,
    Dataset,
    Deployment,
    Endpoint,
    EndpointEvent,
    Environment,
    Experiment,
    GatewayInfo,
    Metric,
    ModelVersion,
    PredictionLogFile,
    RegisteredModel,
    Rollout,
    Run,
    RunPage,
    ValidationRecord,
    WriteBatch,
)

MetricRow = Metric | tuple[str, float, int, float]
Roles = Mapping[int, tuple[str, float]]  # deployment id -> (role, weight)
EventIn = tuple[str, str, Mapping[str, Any]]  # kind, message, data


@runtime_checkable
class Store(Protocol):
    """Metadata store. Implementations: ``store.sql.SqlStore`` (SQLite, PostgreSQL)."""

    uri: str

    # experiments
    def create_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> Experiment: ...
    def get_experiment(self, ref: int | str) -> Experiment:
        """By id (int or digits) or by name; NotFound names what was asked for."""
        ...

    def get_or_create_experiment(self, name: str) -> Experiment: ...
    def list_experiments(self, include_deleted: bool = False) -> list[Experiment]: ...
    def count_runs(self) -> dict[int, int]:
        """Active (not deleted) runs per experiment id; experiments without runs are absent."""
        ...

    def rename_experiment(self, experiment_id: int, new_name: str) -> Experiment: ...
    def delete_experiment(self, experiment_id: int) -> None: ...
    def restore_experiment(self, experiment_id: int) -> None: ...

    # runs
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
    ) -> Run: ...
    def get_run(self, run_id: str) -> Run: ...
    def set_run_status(
        self,
        run_id: str,
        status: str,
        *,
        end_time: float | None = None,
        error: str | None = None,
    ) -> None: ...
    def delete_run(self, run_id: str) -> None: ...
    def restore_run(self, run_id: str) -> None: ...
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[MetricRow] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Write in one transaction. A param already set to another value -> Conflict."""
        ...

    def write(self, batch: WriteBatch) -> list[str]:
        """Apply a batch in one transaction. Params that would change a stored value are
        skipped and described in the returned list (the caller decides how to report them)."""
        ...

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]: ...
    def search_runs(
        self,
        experiment_ids: Sequence[int] | None = None,
        filter: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 1000,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> RunPage: ...

    # artifact manifests (the blobs themselves live in shipyard.artifacts)
    def add_artifacts(self, run_id: str, entries: Iterable[ArtifactEntry]) -> None: ...
    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactEntry]: ...
    def referenced_digests(self) -> set[str]: ...
    def find_artifacts(
        self, digest_prefix: str, max_results: int = 1000
    ) -> list[tuple[str, ArtifactEntry]]:
        """(run id, manifest entry) of every run file whose digest starts with the prefix."""
        ...

    # environments and datasets
    def put_environment(self, env: Environment) -> None: ...
    def get_environment(self, digest: str) -> Environment: ...
    def log_dataset(self, run_id: str, dataset: Dataset) -> None: ...
    def list_datasets(self, run_id: str) -> list[Dataset]: ...

    # model registry: every change is audited in its own transaction
    def create_registered_model(
        self,
        name: str,
        *,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        policy: Mapping[str, Any] | None = None,
        actor: str = "",
    ) -> RegisteredModel: ...
    def get_registered_model(self, name: str) -> RegisteredModel: ...
    def list_registered_models(self) -> list[RegisteredModel]: ...
    def update_registered_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        policy: Mapping[str, Any] | None = None,
        actor: str = "",
    ) -> RegisteredModel: ...
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
        """The next version of ``name`` (created if new), numbered 1, 2, ... per name."""
        ...

    def get_model_version(self, name: str, version: int | str) -> ModelVersion: ...
    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion: ...
    def list_model_versions(self, name: str) -> list[ModelVersion]: ...
    def update_model_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        actor: str = "",
    ) -> ModelVersion: ...
    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        expected: int | EllipsisType | None = ...,
        actor: str = "",
        action: str = "set_alias",
        details: Mapping[str, Any] | None = None,
    ) -> int | None:
        """Move an alias (compare-and-set when ``expected`` is given); the old holder."""
        ...

    def delete_alias(
        self,
        name: str,
        alias: str,
        *,
        expected: int | EllipsisType | None = ...,
        actor: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> int: ...
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
    ) -> ValidationRecord: ...
    def list_validations(self, name: str, version: int | None = None) -> list[ValidationRecord]: ...
    def record_audit(
        self,
        name: str,
        action: str,
        *,
        version: int | None = None,
        actor: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> None: ...
    def list_audit(self, name: str | None = None, limit: int = 100) -> list[AuditEntry]: ...

    # pipelines
    def put_step_cache(
        self, key: str, run_id: str, step: str, outputs: Sequence[Mapping[str, Any]]
    ) -> bool:
        """Remember a step's outputs under its cache key; False if the key was taken."""
        ...

    def get_step_cache(self, key: str) -> dict[str, Any] | None: ...

    # serving: every change to endpoints, deployments or rollouts moves serving_revision
    def serving_revision(self) -> int: ...
    def create_endpoint(
        self,
        name: str,
        *,
        model_name: str,
        model_version: int,
        description: str = "",
        config: Mapping[str, Any] | None = None,
        actor: str = "",
    ) -> Endpoint: ...
    def get_endpoint(self, name: str) -> Endpoint: ...
    def list_endpoints(self) -> list[Endpoint]: ...
    def update_endpoint(
        self,
        name: str,
        *,
        description: str | None = None,
        config: Mapping[str, Any] | None = None,
        actor: str = "",
    ) -> Endpoint: ...
    def delete_endpoint(self, name: str, *, actor: str = "") -> None: ...
    def get_deployment(self, deployment_id: int) -> Deployment: ...
    def list_deployments(
        self, endpoint: str, *, include_retired: bool = True
    ) -> list[Deployment]: ...
    def set_roles(
        self,
        endpoint: str,
        roles: Roles,
        *,
        expect_primary: int | None = None,
        event: EventIn | None = None,
        actor: str = "",
    ) -> Endpoint: ...
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
    ) -> Rollout: ...
    def get_rollout(self, rollout_id: int) -> Rollout: ...
    def list_rollouts(
        self, endpoint: str | None = None, *, active_only: bool = False, limit: int = 100
    ) -> list[Rollout]: ...
    def active_rollout(self, endpoint: str) -> Rollout | None: ...
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
        """Compare-and-set on (state, step); Conflict when someone moved it first."""
        ...

    def list_analyses(self, rollout_id: int) -> list[AnalysisRecord]: ...
    def add_event(
        self,
        endpoint: str,
        kind: str,
        message: str,
        data: Mapping[str, Any] | None = None,
        *,
        actor: str = "",
    ) -> None: ...
    def list_events(
        self, endpoint: str | None = None, *, after_id: int = 0, limit: int = 100
    ) -> list[EndpointEvent]: ...
    def add_stats(
        self, gateway: str, rows: Sequence[tuple[int, float, Mapping[str, Any]]]
    ) -> None: ...
    def get_stats(
        self, deployment_ids: Sequence[int], since: float, until: float | None = None
    ) -> dict[int, list[dict[str, Any]]]: ...
    def prune_stats(self, before: float) -> int: ...
    def heartbeat(
        self, gateway: str, *, address: str, pid: int, started_at: float, info: Mapping[str, Any]
    ) -> None: ...
    def list_gateways(self, seen_since: float = 0.0) -> list[GatewayInfo]: ...
    def remove_gateway(self, gateway: str) -> None: ...
    def add_prediction_log(
        self,
        endpoint: str,
        *,
        digest: str,
        rows: int,
        first_time: float,
        last_time: float,
        gateway: str = "",
    ) -> None: ...
    def list_prediction_logs(
        self, endpoint: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[PredictionLogFile]: ...

    def close(self) -> None: ...
