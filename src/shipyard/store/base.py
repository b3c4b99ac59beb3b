"""The Store protocol: the only way any part of Shipyard reads or writes metadata."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from shipyard.store.entities import (
    ArtifactEntry,
    Dataset,
    Environment,
    Experiment,
    Metric,
    Run,
    RunPage,
    WriteBatch,
)

MetricRow = Metric | tuple[str, float, int, float]


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

    # environments and datasets
    def put_environment(self, env: Environment) -> None: ...
    def get_environment(self, digest: str) -> Environment: ...
    def log_dataset(self, run_id: str, dataset: Dataset) -> None: ...
    def list_datasets(self, run_id: str) -> list[Dataset]: ...

    def close(self) -> None: ...
