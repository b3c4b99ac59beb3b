"""serving: endpoints, deployments, rollouts and their analyses, events, per-deployment
figures from each gateway, gateway heartbeats and prediction log files

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Double = sa.Float(precision=53)
KEY_LEN = 250


def upgrade() -> None:
    op.create_table(
        "serving_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("revision", sa.Integer, nullable=False),
    )
    op.create_table(
        "endpoints",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(KEY_LEN), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("config", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created_at", Double, nullable=False),
        sa.Column("updated_at", Double, nullable=False),
        sa.Column("created_by", sa.String(KEY_LEN), nullable=False, server_default=""),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("endpoint_id", sa.Integer, sa.ForeignKey("endpoints.id"), nullable=False),
        sa.Column("model_name", sa.String(KEY_LEN), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("weight", Double, nullable=False),
        sa.Column("previous_id", sa.Integer, nullable=True),
        sa.Column("created_at", Double, nullable=False),
        sa.Column("updated_at", Double, nullable=False),
    )
    op.create_index("ix_deployments_endpoint", "deployments", ["endpoint_id", "role"])
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("endpoint_id", sa.Integer, sa.ForeignKey("endpoints.id"), nullable=False),
        sa.Column("candidate_id", sa.Integer, sa.ForeignKey("deployments.id"), nullable=False),
        sa.Column("baseline_id", sa.Integer, sa.ForeignKey("deployments.id"), nullable=False),
        sa.Column("strategy", sa.String(16), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("step_started_at", Double, nullable=True),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", Double, nullable=False),
        sa.Column("updated_at", Double, nullable=False),
        sa.Column("ended_at", Double, nullable=True),
        sa.Column("created_by", sa.String(KEY_LEN), nullable=False, server_default=""),
    )
    op.create_index("ix_rollouts_endpoint", "rollouts", ["endpoint_id", "state"])
    op.create_table(
        "rollout_analyses",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rollout_id", sa.Integer, sa.ForeignKey("rollouts.id"), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("time", Double, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_rollout_analyses_rollout", "rollout_analyses", ["rollout_id", "id"])
    op.create_table(
        "endpoint_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(KEY_LEN), nullable=False),
        sa.Column("time", Double, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False, server_default="{}"),
        sa.Column("actor", sa.String(KEY_LEN), nullable=False, server_default=""),
    )
    op.create_index("ix_endpoint_events_endpoint", "endpoint_events", ["endpoint", "id"])
    op.create_table(
        "deployment_stats",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deployment_id", sa.Integer, nullable=False),
        sa.Column("gateway", sa.String(64), nullable=False),
        sa.Column("time", Double, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_deployment_stats_deployment", "deployment_stats", ["deployment_id", "time"])
    op.create_table(
        "gateways",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("address", sa.String(KEY_LEN), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", Double, nullable=False),
        sa.Column("seen_at", Double, nullable=False),
        sa.Column("info", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_table(
        "prediction_logs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(KEY_LEN), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("first_time", Double, nullable=False),
        sa.Column("last_time", Double, nullable=False),
        sa.Column("gateway", sa.String(64), nullable=False, server_default=""),
    )
    op.create_index("ix_prediction_logs_endpoint", "prediction_logs", ["endpoint", "id"])
    op.bulk_insert(
        sa.table("serving_state", sa.column("id", sa.Integer), sa.column("revision", sa.Integer)),
        [{"id": 1, "revision": 0}],
    )


def downgrade() -> None:
    op.drop_table("prediction_logs")
    op.drop_table("gateways")
    op.drop_table("deployment_stats")
    op.drop_table("endpoint_events")
    op.drop_table("rollout_analyses")
    op.drop_table("rollouts")
    op.drop_table("deployments")
    op.drop_table("endpoints")
    op.drop_table("serving_state")
