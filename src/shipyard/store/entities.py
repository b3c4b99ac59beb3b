"""Plain records the Store hands out and takes in. No behaviour beyond formatting."""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, NamedTuple

RUN_STATUSES = ("running", "finished", "failed", "killed")
LIFECYCLES = ("active", "deleted")
DEFAULT_EXPERIMENT = "Default"


def to_datetime(ts: float | None) -> datetime | None:
    """Epoch seconds to an aware UTC datetime (None stays None)."""
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


class Metric(NamedTuple):
    """One point of a metric's history. Plain tuples of the same shape are accepted too."""

    key: str
    value: float
    step: int
    timestamp: float


@dataclass(frozen=True)
class Experiment:
    id: int
    name: str
    lifecycle: str = "active"
    created_at: float = 0.0
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Run:
    """A run as stored: attributes, params, the latest value of each metric, tags."""

    id: str
    experiment_id: int
    name: str
    status: str
    start_time: float
    end_time: float | None = None
    parent_id: str | None = None
    user: str = ""
    lifecycle: str = "active"
    error: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def new(
        cls,
        experiment_id: int,
        name: str | None = None,
        *,
        parent_id: str | None = None,
        user: str = "",
        start_time: float | None = None,
        run_id: str | None = None,
    ) -> Run:
        """A validated record for a run about to be created."""
        from shipyard.store import validation as v

        run_id = v.check_run_id(run_id) if run_id else uuid.uuid4().hex
        if parent_id is not None:
            v.check_run_id(parent_id)
        return cls(
            id=run_id,
            experiment_id=int(experiment_id),
            name=v.check_name(name, "run") if name else f"run-{run_id[:8]}",
            status="running",
            start_time=time.time() if start_time is None else float(start_time),
            parent_id=parent_id,
            user=user,
        )

    @property
    def duration(self) -> float | None:
        return None if self.end_time is None else self.end_time - self.start_time

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        # JSON has no NaN/inf; keep them readable instead of producing invalid JSON.
        out["metrics"] = {k: _json_float(v) for k, v in self.metrics.items()}
        return out


def _json_float(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


@dataclass(frozen=True)
class RunPage:
    runs: list[Run]
    next_page_token: str | None = None


@dataclass(frozen=True)
class ArtifactEntry:
    """One file in a run's artifact manifest: its path in the run and its blob digest."""

    path: str
    digest: str
    size: int


@dataclass(frozen=True)
class Environment:
    """What a run ran on: interpreter, platform and installed distributions, shared by digest."""

    digest: str
    python: str
    platform: str
    packages: list[str]  # "name==version", sorted

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Dataset:
    """A data set a run used: identity by content digest, plus schema and summary."""

    name: str
    digest: str
    rows: int
    schema: dict[str, str]
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    context: str = ""
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class WriteBatch:
    """Everything the tracking writer has buffered, applied by the Store in one transaction.

    Order of application: environments and new runs, then params, tags, metrics, artifacts
    and datasets, then status changes.
    """

    runs: list[Run] = field(default_factory=list)
    params: list[tuple[str, str, str]] = field(default_factory=list)  # run_id, key, value
    tags: list[tuple[str, str, str]] = field(default_factory=list)  # run_id, key, value
    # run_id -> [(key, value, step, timestamp), ...]: grouped by run so that a long history
    # needs no per-point conversion on its way to the database
    metrics: dict[str, list[tuple[str, float, int, float]]] = field(default_factory=dict)
    # run_id, status, end_time, error
    statuses: list[tuple[str, str, float | None, str | None]] = field(default_factory=list)
    artifacts: list[tuple[str, ArtifactEntry]] = field(default_factory=list)  # run_id, entry
    datasets: list[tuple[str, Dataset]] = field(default_factory=list)  # run_id, dataset
    environments: list[Environment] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.runs)
            + len(self.params)
            + len(self.tags)
            + sum(len(points) for points in self.metrics.values())
            + len(self.statuses)
            + len(self.artifacts)
            + len(self.datasets)
            + len(self.environments)
        )


# -- model registry ----------------------------------------------------------------------------

VALIDATION_STATUSES = ("passed", "failed", "inconclusive")


@dataclass(frozen=True)
class RegisteredModel:
    """A model name with its versions' aliases, tags and promotion policy."""

    name: str
    description: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    created_by: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)  # alias -> version
    policy: dict[str, Any] = field(default_factory=dict)
    latest_version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: where its files are, how to load it, where it came from."""

    name: str
    version: int
    flavor: str
    digest: str  # sha256 over the sorted manifest of the version's files
    files: list[ArtifactEntry] = field(default_factory=list)
    run_id: str | None = None
    artifact_path: str | None = None
    signature: dict[str, Any] | None = None
    description: str = ""
    created_at: float = 0.0
    created_by: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["uri"] = self.uri
        return out


@dataclass(frozen=True)
class ValidationRecord:
    """A validation report as stored with the version it validated."""

    id: int
    name: str
    version: int
    status: str
    checks: list[str]
    report: dict[str, Any]
    baseline_version: int | None = None
    baseline_alias: str | None = None
    data_digest: str = ""
    report_digest: str | None = None
    created_at: float = 0.0
    created_by: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AuditEntry:
    """One change to the registry: who, when, what, and the details (from, to, reason)."""

    id: int
    time: float
    actor: str
    model: str
    action: str
    version: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- serving -------------------------------------------------------------------------------

DEPLOYMENT_ROLES = ("primary", "canary", "shadow", "standby", "retired")
ROLLOUT_STRATEGIES = ("canary", "shadow", "blue-green")
ROLLOUT_STATES = ("running", "paused", "succeeded", "failed", "aborted")
ACTIVE_ROLLOUT_STATES = ("running", "paused")


@dataclass(frozen=True)
class Deployment:
    """A model version on an endpoint, with its role and share of the traffic."""

    id: int
    endpoint: str
    model_name: str
    model_version: int
    role: str
    weight: float
    previous_id: int | None = None
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}/{self.model_version}"

    @property
    def label(self) -> str:
        """``NAME/N``, as in the x-shipyard-model-version header."""
        return f"{self.model_name}/{self.model_version}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["model"] = self.label
        return out


@dataclass(frozen=True)
class Endpoint:
    """A named inference endpoint and the deployments that are not retired."""

    name: str
    description: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    created_by: str = ""
    deployments: tuple[Deployment, ...] = ()

    @property
    def primary(self) -> Deployment:
        return next(d for d in self.deployments if d.role == "primary")

    def with_role(self, role: str) -> list[Deployment]:
        return [d for d in self.deployments if d.role == role]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["deployments"] = [d.to_dict() for d in self.deployments]
        return out


@dataclass(frozen=True)
class Rollout:
    """A candidate version's way to primary: its strategy, spec, state and current step."""

    id: int
    endpoint: str
    candidate_id: int
    baseline_id: int
    strategy: str
    spec: dict[str, Any]
    state: str
    step: int
    step_started_at: float | None = None
    reason: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    ended_at: float | None = None
    created_by: str = ""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_ROLLOUT_STATES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AnalysisRecord:
    """One judgement of a rollout step, as stored."""

    id: int
    rollout_id: int
    step: int
    time: float
    outcome: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EndpointEvent:
    id: int
    endpoint: str
    time: float
    kind: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    actor: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GatewayInfo:
    """A gateway process as it last reported itself."""

    id: str
    address: str
    pid: int
    started_at: float
    seen_at: float
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PredictionLogFile:
    id: int
    endpoint: str
    digest: str
    rows: int
    first_time: float
    last_time: float
    gateway: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
