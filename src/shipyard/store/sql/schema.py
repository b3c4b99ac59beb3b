"""Table definitions. The database itself is created and upgraded by the Alembic migrations
in ``migrations/``; these definitions must match the newest migration (a test checks it)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
Double = sa.Float(precision=53)

KEY_LEN = 250

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(KEY_LEN), nullable=False, unique=True),
    sa.Column("lifecycle", sa.String(16), nullable=False, server_default="active"),
    sa.Column("created_at", Double, nullable=False),
)

experiment_tags = sa.Table(
    "experiment_tags",
    metadata,
    sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), primary_key=True),
    sa.Column("key", sa.String(KEY_LEN), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# `id` is an internal integer key that keeps the big metric tables small; users only ever
# see `run_id` (32 hex characters).
runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), nullable=False, unique=True),
    sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), nullable=False),
    sa.Column("name", sa.String(KEY_LEN), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("start_time", Double, nullable=False),
    sa.Column("end_time", Double, nullable=True),
    sa.Column("parent_id", sa.String(32), nullable=True),
    sa.Column("user", sa.String(KEY_LEN), nullable=False, server_default=""),
    sa.Column("lifecycle", sa.String(16), nullable=False, server_default="active"),
    sa.Column("error", sa.Text, nullable=True),
    sa.Index("ix_runs_experiment_start", "experiment_id", "start_time"),
    sa.Index("ix_runs_start", "start_time"),
    sa.Index("ix_runs_parent", "parent_id"),
)

# `value_num` holds the value when it parses as a number, so `params.n > 50` compares numbers.
params = sa.Table(
    "params",
    metadata,
    sa.Column("run", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", sa.String(KEY_LEN), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("value_num", Double, nullable=True),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("run", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", sa.String(KEY_LEN), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# NaN is stored as NULL (the only way `value` is ever NULL), the same way on every backend
# (SQLite cannot store NaN at all): comparisons treat NaN as "no value" and readers turn NULL
# back into nan.
metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("run", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("key", sa.String(KEY_LEN), nullable=False),
    sa.Column("value", Double, nullable=True),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", Double, nullable=False),
    sa.Index("ix_metrics_run_key_step", "run", "key", "step"),
)

latest_metrics = sa.Table(
    "latest_metrics",
    metadata,
    sa.Column("run", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", sa.String(KEY_LEN), primary_key=True),
    sa.Column("value", Double, nullable=True),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", Double, nullable=False),
    sa.Index("ix_latest_metrics_key_value", "key", "value"),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("run", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("path", sa.String(1000), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Index("ix_artifacts_digest", "digest"),
)

environments = sa.Table(
    "environments",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("python", sa.String(64), nullable=False),
    sa.Column("platform", sa.String(250), nullable=False),
    sa.Column("packages", sa.Text, nullable=False),  # JSON list of "name==version"
    sa.Column("created_at", Double, nullable=False),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(KEY_LEN), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("schema", sa.Text, nullable=False),  # JSON {column: dtype}
    sa.Column("stats", sa.Text, nullable=False),  # JSON {column: {stat: value}}
    sa.Column("source", sa.Text, nullable=False, server_default=""),
    sa.UniqueConstraint("name", "digest", name="uq_datasets_name_digest"),
)

run_inputs = sa.Table(
    "run_inputs",
    metadata,
    sa.Column("run", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), primary_key=True),
    sa.Column("context", sa.String(KEY_LEN), primary_key=True),
)

# -- model registry (migration 0002) ---------------------------------------------------------

# `policy` is JSON: {"required_checks": [...], "protected_aliases": [...], "maintainers": [...]}.
registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(KEY_LEN), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("policy", sa.Text, nullable=False, server_default="{}"),
    sa.Column("created_at", Double, nullable=False),
    sa.Column("updated_at", Double, nullable=False),
    sa.Column("created_by", sa.String(KEY_LEN), nullable=False, server_default=""),
)

registered_model_tags = sa.Table(
    "registered_model_tags",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("registered_models.id"), primary_key=True),
    sa.Column("key", sa.String(KEY_LEN), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# A version owns a copy of its files' manifest, so it outlives its run and gc keeps its blobs.
model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("registered_models.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("run_id", sa.String(32), nullable=True),
    sa.Column("artifact_path", sa.String(1000), nullable=True),
    sa.Column("flavor", sa.String(64), nullable=False),
    sa.Column("signature", sa.Text, nullable=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", Double, nullable=False),
    sa.Column("created_by", sa.String(KEY_LEN), nullable=False, server_default=""),
    sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
    sa.Index("ix_model_versions_run", "run_id"),
)

model_version_tags = sa.Table(
    "model_version_tags",
    metadata,
    sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True),
    sa.Column("key", sa.String(KEY_LEN), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

model_version_files = sa.Table(
    "model_version_files",
    metadata,
    sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True),
    sa.Column("path", sa.String(1000), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Index("ix_model_version_files_digest", "digest"),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("registered_models.id"), primary_key=True),
    sa.Column("alias", sa.String(KEY_LEN), primary_key=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False),
    sa.Column("updated_at", Double, nullable=False),
    sa.Column("updated_by", sa.String(KEY_LEN), nullable=False, server_default=""),
)

model_validations = sa.Table(
    "model_validations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False),
    sa.Column("baseline_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=True),
    sa.Column("baseline_alias", sa.String(KEY_LEN), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("checks", sa.Text, nullable=False),  # JSON list of check names
    sa.Column("report", sa.Text, nullable=False),  # JSON of the whole report
    sa.Column("data_digest", sa.String(64), nullable=False, server_default=""),
    sa.Column("report_digest", sa.String(64), nullable=True),  # the HTML report's blob
    sa.Column("created_at", Double, nullable=False),
    sa.Column("created_by", sa.String(KEY_LEN), nullable=False, server_default=""),
    sa.Index("ix_model_validations_version", "version_id"),
)

# The audit log names the model rather than pointing at it, so that it outlives anything.
model_audit = sa.Table(
    "model_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", Double, nullable=False),
    sa.Column("actor", sa.String(KEY_LEN), nullable=False),
    sa.Column("model", sa.String(KEY_LEN), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("details", sa.Text, nullable=False, server_default="{}"),
    sa.Index("ix_model_audit_model", "model", "id"),
)

# -- pipelines (migration 0003) --------------------------------------------------------------

# A step execution whose outputs can be reused: cache key -> the step run that made them and
# the outputs' file manifests (JSON). Written only after the step succeeded and its outputs
# were stored, so a half-written output is never a hit.
step_cache = sa.Table(
    "step_cache",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("step", sa.String(KEY_LEN), nullable=False),
    sa.Column("outputs", sa.Text, nullable=False),
    sa.Column("created_at", Double, nullable=False),
)

# -- serving (migration 0004) ----------------------------------------------------------------

# One row, bumped by every change to endpoints, deployments or rollouts: a gateway polls it
# (one indexed read) and reloads the serving configuration only when it moved.
serving_state = sa.Table(
    "serving_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("revision", sa.Integer, nullable=False),
)

endpoints = sa.Table(
    "endpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(KEY_LEN), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("config", sa.Text, nullable=False, server_default="{}"),  # JSON
    sa.Column("created_at", Double, nullable=False),
    sa.Column("updated_at", Double, nullable=False),
    sa.Column("created_by", sa.String(KEY_LEN), nullable=False, server_default=""),
)

# A model version on an endpoint. role: primary (exactly one per endpoint), canary, shadow,
# standby (loaded, no traffic: a blue/green candidate, or the old primary kept warm), retired.
# `previous_id` is the primary this one replaced, which is where a rollback goes back to.
deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("endpoint_id", sa.Integer, sa.ForeignKey("endpoints.id"), nullable=False),
    sa.Column("model_name", sa.String(KEY_LEN), nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("weight", Double, nullable=False),
    sa.Column("previous_id", sa.Integer, nullable=True),
    sa.Column("created_at", Double, nullable=False),
    sa.Column("updated_at", Double, nullable=False),
    sa.Index("ix_deployments_endpoint", "endpoint_id", "role"),
)

rollouts = sa.Table(
    "rollouts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("endpoint_id", sa.Integer, sa.ForeignKey("endpoints.id"), nullable=False),
    sa.Column("candidate_id", sa.Integer, sa.ForeignKey("deployments.id"), nullable=False),
    sa.Column("baseline_id", sa.Integer, sa.ForeignKey("deployments.id"), nullable=False),
    sa.Column("strategy", sa.String(16), nullable=False),
    sa.Column("spec", sa.Text, nullable=False),  # JSON: steps, interval, limits, ...
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("step_started_at", Double, nullable=True),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", Double, nullable=False),
    sa.Column("updated_at", Double, nullable=False),
    sa.Column("ended_at", Double, nullable=True),
    sa.Column("created_by", sa.String(KEY_LEN), nullable=False, server_default=""),
    sa.Index("ix_rollouts_endpoint", "endpoint_id", "state"),
)

rollout_analyses = sa.Table(
    "rollout_analyses",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("rollout_id", sa.Integer, sa.ForeignKey("rollouts.id"), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("time", Double, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("data", sa.Text, nullable=False),  # JSON: figures and reason
    sa.Index("ix_rollout_analyses_rollout", "rollout_id", "id"),
)

# Events name the endpoint rather than pointing at it, so that they outlive it.
endpoint_events = sa.Table(
    "endpoint_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("endpoint", sa.String(KEY_LEN), nullable=False),
    sa.Column("time", Double, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("data", sa.Text, nullable=False, server_default="{}"),
    sa.Column("actor", sa.String(KEY_LEN), nullable=False, server_default=""),
    sa.Index("ix_endpoint_events_endpoint", "endpoint", "id"),
)

# What each gateway process recorded for a deployment over about a second (JSON snapshot of
# shipyard.gateway.stats.Recorder); the analysis merges the rows of a window from every
# gateway, so two gateways on one store judge a canary on all of its traffic.
deployment_stats = sa.Table(
    "deployment_stats",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("deployment_id", sa.Integer, nullable=False),
    sa.Column("gateway", sa.String(64), nullable=False),
    sa.Column("time", Double, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Index("ix_deployment_stats_deployment", "deployment_id", "time"),
)

gateways = sa.Table(
    "gateways",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("address", sa.String(KEY_LEN), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", Double, nullable=False),
    sa.Column("seen_at", Double, nullable=False),
    sa.Column("info", sa.Text, nullable=False, server_default="{}"),  # JSON: deployment states
)

# Prediction logs: Parquet blobs in the artifact store, one row per file.
prediction_logs = sa.Table(
    "prediction_logs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("endpoint", sa.String(KEY_LEN), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("first_time", Double, nullable=False),
    sa.Column("last_time", Double, nullable=False),
    sa.Column("gateway", sa.String(64), nullable=False, server_default=""),
    sa.Index("ix_prediction_logs_endpoint", "endpoint", "id"),
)
