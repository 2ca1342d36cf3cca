"""Tokens of the HTTP API and the idempotency keys of its requests.

``api_tokens`` holds one row per token: its user, its name, optionally fewer
roles and scopes than the user has, its expiry and revocation, and the SHA-256
of its secret (a copy of the database holds no usable token). ``window_start``
and ``window_count`` count the token's requests for the rate limit, so every
worker and host shares one count. ``idempotency_keys`` keeps, per user, each
``Idempotency-Key`` sent with a create or a step, and the token it came
through (two systems acting as one user keep their keys apart), written in
the same transaction as the change it made. No existing row changes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.types import JSONType, UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("username", sa.String(63), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("roles", JSONType, nullable=True),
        sa.Column("scopes", JSONType, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(63), nullable=True),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
        sa.Column("last_used_at", UTCDateTime, nullable=True),
        sa.Column("window_start", UTCDateTime, nullable=True),
        sa.Column("window_count", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_api_tokens_user_name", "api_tokens", ["username", "name"])
    op.create_table(
        "idempotency_keys",
        sa.Column("username", sa.String(63), primary_key=True),
        sa.Column("token", sa.String(63), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("ref", sa.String(40), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("api_tokens")
