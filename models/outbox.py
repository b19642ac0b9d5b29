"""The outbox: every mail is rendered and given its Message-ID here before anyone sends it."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, LargeBinary
from sqlmodel import Field, SQLModel

from domain.retry import OutboxState
from models.types import JSONText, UTCDateTime


class Outbox(SQLModel, table=True):
    __table_args__ = (Index("ix_outbox_state_next", "state", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    kind: str = Field(max_length=32)
    subject_ref: str = Field(default="", max_length=120)
    recipients: list[str] = Field(sa_column=Column(JSONText, nullable=False))
    subject: str
    body_text: str
    body_html: str
    attachments: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONText, nullable=False)
    )
    headers: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSONText, nullable=False)
    )
    message_id: str = Field(max_length=200, unique=True)
    # The random part of the VERP return path `bounce+<id>-<tag>@`: a bounce is believed only
    # when it names this tag (and this row's Message-ID and recipient). NULL before migration 0005.
    bounce_tag: str | None = Field(default=None, max_length=32)
    # The message exactly as it goes on the wire (7-bit, CRLF), built once at enqueue so every
    # attempt sends the same bytes. NULL only on rows enqueued before migration 0003.
    raw_message: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    # Approval mails: the bodies are rendered by the delivery worker from this stored template
    # context (`mail.deferred`), then stored in body_text/body_html/raw_message before the first
    # attempt. NULL for mails rendered at enqueue.
    deferred_body: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONText))
    state: OutboxState = Field(default=OutboxState.PENDING, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    claimed_by: str | None = Field(default=None, max_length=100)
    claimed_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    last_error: str | None = None
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))


@dataclass(frozen=True)
class ClaimedMail:
    """An outbox row claimed by one worker for sending."""

    id: int
    key: str
    kind: str
    subject_ref: str
    recipients: list[str]
    subject: str
    body_text: str
    body_html: str
    attachments: list[dict[str, Any]]
    headers: dict[str, str]
    message_id: str
    attempts: int
    raw_message: bytes | None = None
    bounce_tag: str | None = None
    deferred_body: dict[str, Any] | None = None


@dataclass(frozen=True)
class NewMail:
    """A rendered mail for one recipient, ready to be stored in the outbox."""

    key: str
    kind: str
    subject_ref: str
    recipient: str
    subject: str
    body_text: str
    body_html: str
    attachments: list[dict[str, Any]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    # Set instead of the bodies when the delivery worker renders them (`mail.deferred`).
    deferred_body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Materialized:
    """The rendered bodies and the wire bytes of a deferred mail."""

    body_text: str
    body_html: str
    raw_message: bytes
