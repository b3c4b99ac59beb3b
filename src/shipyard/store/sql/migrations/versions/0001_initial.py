"""initial schema: experiments, runs, params, tags, metrics, artifacts, environments, datasets

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Double = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(250), nullable=False, unique=True),
        sa.Column("lifecycle", sa.String(16), nullable=False, server_default="active"),
        sa.Column("created_at", Double, nullable=False),
    )
    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), nullable=False, unique=True),
        sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_time", Double, nullable=False),
        sa.Column("end_time", Double, nullable=True),
        sa.Column("parent_id", sa.String(32), nullable=True),
        sa.Column("user", sa.String(250), nullable=False, server_default=""),
        sa.Column("lifecycle", sa.String(16), nullable=False, server_default="active"),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_runs_experiment_start", "runs", ["experiment_id", "start_time"])
    op.create_index("ix_runs_start", "runs", ["start_time"])
    op.create_index("ix_runs_parent", "runs", ["parent_id"])
    op.create_table(
        "params",
        sa.Column("run", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("value_num", Double, nullable=True),
    )
    op.create_table(
        "tags",
        sa.Column("run", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "metrics",
        sa.Column("run", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", Double, nullable=True),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("timestamp", Double, nullable=False),
    )
    op.create_index("ix_metrics_run_key_step", "metrics", ["run", "key", "step"])
    op.create_table(
        "latest_metrics",
        sa.Column("run", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", Double, nullable=True),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("timestamp", Double, nullable=False),
    )
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "value"])
    op.create_table(
        "artifacts",
        sa.Column("run", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("path", sa.String(1000), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_artifacts_digest", "artifacts", ["digest"])
    op.create_table(
        "environments",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("python", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(250), nullable=False),
        sa.Column("packages", sa.Text, nullable=False),
        sa.Column("created_at", Double, nullable=False),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("schema", sa.Text, nullable=False),
        sa.Column("stats", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False, server_default=""),
        sa.UniqueConstraint("name", "digest", name="uq_datasets_name_digest"),
    )
    op.create_table(
        "run_inputs",
        sa.Column("run", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), primary_key=True),
        sa.Column("context", sa.String(250), primary_key=True),
    )


def downgrade() -> None:
    for table in (
        "run_inputs",
        "datasets",
        "environments",
        "artifacts",
        "latest_metrics",
        "metrics",
        "tags",
        "params",
        "runs",
        "experiment_tags",
        "experiments",
    ):
        op.drop_table(table)
