"""Budget requests, their approval steps, reply tokens, delegations and inbound mail."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Index, LargeBinary, Numeric, UniqueConstraint
from sqlmodel import Field, SQLModel

from domain.approval_state import RequestState, StepState, Verdict
from models.types import JSONText, UTCDateTime, state_column


class BudgetRequestBase(SQLModel):
    key: str = Field(max_length=64, unique=True, index=True)
    title: str = Field(max_length=300)
    category: str = Field(max_length=32, index=True)
    justification: str
    new_theme: bool = False
    recurring: bool = False
    amounts_note: str = ""


class BudgetRequest(BudgetRequestBase, table=True):
    __tablename__ = "budget_request"

    id: int | None = Field(default=None, primary_key=True)
    department_id: int = Field(foreign_key="department.id")
    requester_id: int = Field(foreign_key="person.id")
    grant_id: int | None = Field(default=None, foreign_key="grants.id")
    policy_name: str = Field(default="", max_length=200)
    version: str = Field(max_length=16)
    version_number: int = 1
    state: RequestState = Field(
        default=RequestState.DRAFT, sa_column=state_column(RequestState, index=True))
    content_hash: str = Field(max_length=64)
    content_snapshot: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONText, nullable=False))
    previous_snapshot: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONText))
    submitted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class RequestLine(SQLModel, table=True):
    """One yearly amount of a request; `recurring` marks lines that continue after the year."""

    __tablename__ = "request_line"
    __table_args__ = (UniqueConstraint("request_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="budget_request.id", index=True, ondelete="CASCADE")
    position: int
    label: str = Field(default="", max_length=300)
    year: int
    amount: Decimal = Field(sa_column=Column(Numeric(16, 2), nullable=False))
    amount_max: Decimal | None = Field(default=None, sa_column=Column(Numeric(16, 2)))
    recurring: bool


class ApprovalStepBase(SQLModel):
    """One approver's step as mails, pages and JSON show it: declared once, here.

    A new column goes here (and in a migration); `StepView` and the JSON document read it.
    """

    version: str = Field(max_length=16)
    stage_key: str = Field(max_length=64)
    stage_title_da: str = Field(max_length=200)
    stage_title_en: str = Field(max_length=200)
    stage_order: int
    stage_mode: str = Field(max_length=16)
    stage_quorum: int | None = None
    stage_kind: str = Field(default="approve", max_length=16)
    answer_days: int = 5
    state: StepState = Field(default=StepState.WAITING, sa_column=state_column(StepState))
    decision: Verdict | None = Field(default=None, sa_column=state_column(Verdict, nullable=True))
    comment: str = ""
    channel: str | None = Field(default=None, max_length=16)
    note: str = Field(default="", max_length=500)
    due_date: date | None = None
    activated_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    reminders_sent: int = 0
    clarifications_sent: int = 0


class ApprovalStep(ApprovalStepBase, table=True):
    """The table: the shared columns plus keys and bookkeeping."""

    __tablename__ = "approval_step"
    __table_args__ = (Index("ix_step_state_due", "state", "due_date"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="budget_request.id", index=True)
    approver_id: int = Field(foreign_key="person.id", index=True)
    on_behalf_of_id: int | None = Field(default=None, foreign_key="person.id")
    escalated_from_id: int | None = Field(default=None, foreign_key="approval_step.id")
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class ApprovalToken(SQLModel, table=True):
    """A reply/link token for one step: only its SHA-256 is stored; single use; expires."""

    __tablename__ = "approval_token"

    id: int | None = Field(default=None, primary_key=True)
    step_id: int = Field(foreign_key="approval_step.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    version: str = Field(max_length=16)
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class Delegation(SQLModel, table=True):
    """`person` is away from `starts` to `ends` (inclusive); new steps go to `substitute`."""

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    substitute_id: int = Field(foreign_key="person.id")
    starts: date
    ends: date
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class InboundMessage(SQLModel, table=True):
    """Every inbound mail once (deduplicated on Message-ID) with what was done with it."""

    __tablename__ = "inbound_message"

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=300, unique=True)
    raw_sha256: str = Field(max_length=64)
    source: str = Field(max_length=16)
    from_address: str | None = Field(default=None, max_length=254)
    subject: str = Field(default="", max_length=500)
    outcome: str = Field(max_length=32, index=True)
    detail: str = ""
    step_id: int | None = Field(default=None, foreign_key="approval_step.id")
    quarantined: bool = False
    raw: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    received_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class ImapCursor(SQLModel, table=True):
    """How far the IMAP poller got in one mailbox (void when UIDVALIDITY changes)."""

    __tablename__ = "imap_cursor"

    mailbox: str = Field(primary_key=True, max_length=200)
    uidvalidity: int
    last_uid: int
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
