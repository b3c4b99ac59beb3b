"""model registry: registered models, versions with their files, aliases, validations, audit

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Double = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(250), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("policy", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created_at", Double, nullable=False),
        sa.Column("updated_at", Double, nullable=False),
        sa.Column("created_by", sa.String(250), nullable=False, server_default=""),
    )
    op.create_table(
        "registered_model_tags",
        sa.Column("model_id", sa.Integer, sa.ForeignKey("registered_models.id"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "model_versions",
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
        sa.Column("created_by", sa.String(250), nullable=False, server_default=""),
        sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
    )
    op.create_index("ix_model_versions_run", "model_versions", ["run_id"])
    op.create_table(
        "model_version_tags",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "model_version_files",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True),
        sa.Column("path", sa.String(1000), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_model_version_files_digest", "model_version_files", ["digest"])
    op.create_table(
        "model_aliases",
        sa.Column("model_id", sa.Integer, sa.ForeignKey("registered_models.id"), primary_key=True),
        sa.Column("alias", sa.String(250), primary_key=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False),
        sa.Column("updated_at", Double, nullable=False),
        sa.Column("updated_by", sa.String(250), nullable=False, server_default=""),
    )
    op.create_table(
        "model_validations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False),
        sa.Column("baseline_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=True),
        sa.Column("baseline_alias", sa.String(250), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("checks", sa.Text, nullable=False),
        sa.Column("report", sa.Text, nullable=False),
        sa.Column("data_digest", sa.String(64), nullable=False, server_default=""),
        sa.Column("report_digest", sa.String(64), nullable=True),
        sa.Column("created_at", Double, nullable=False),
        sa.Column("created_by", sa.String(250), nullable=False, server_default=""),
    )
    op.create_index("ix_model_validations_version", "model_validations", ["version_id"])
    op.create_table(
        "model_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", Double, nullable=False),
        sa.Column("actor", sa.String(250), nullable=False),
        sa.Column("model", sa.String(250), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("details", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("ix_model_audit_model", "model_audit", ["model", "id"])


def downgrade() -> None:
    for table in (
        "model_audit",
        "model_validations",
        "model_aliases",
        "model_version_files",
        "model_version_tags",
        "model_versions",
        "registered_model_tags",
        "registered_models",
    ):
        op.drop_table(table)
