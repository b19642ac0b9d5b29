"""Append-only audit log; each event stores the hash of the one before it."""

from datetime import datetime
from typing import Any

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from models.types import JSONText, UTCDateTime

GENESIS_HASH = "0" * 64


class AuditEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(unique=True)
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    kind: str = Field(max_length=64, index=True)
    subject: str = Field(max_length=200, index=True)
    actor: str = Field(default="system", max_length=254)
    details: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONText, nullable=False)
    )
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    # "hmac": HMAC-SHA256 with the audit key (from settings, never stored here); "sha256": an
    # unkeyed hash, written before the chain was keyed (or without any key configured).
    scheme: str = Field(default="sha256", max_length=8)


class AuditHead(SQLModel, table=True):
    """Single row holding the chain's tip; locking it serializes appenders on every database."""

    id: int = Field(default=1, primary_key=True)
    last_seq: int = 0
    last_hash: str = Field(default=GENESIS_HASH, max_length=64)
