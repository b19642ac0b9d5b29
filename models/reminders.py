"""The reminder ledger: one row per planned reminder, so the daily check reads only what is due."""

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from domain.reminders import ReminderState
from models.types import UTCDateTime


class ReminderKind(StrEnum):
    REMINDER = "reminder"
    EXPIRED = "expired"


class Reminder(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("grant_id", "kind", "offset_days", "end_date", name="uq_reminder_plan"),
        Index("ix_reminder_state_due", "state", "due_date"),
    )

    id: int | None = Field(default=None, primary_key=True)
    grant_id: int = Field(foreign_key="grants.id", index=True, ondelete="CASCADE")
    kind: ReminderKind = Field(max_length=16)
    offset_days: int
    end_date: date
    due_date: date
    state: ReminderState = Field(default=ReminderState.PLANNED, max_length=16)
    outbox_id: int | None = Field(default=None, foreign_key="outbox.id")
    handled_on: date | None = None
    note: str = Field(default="", max_length=300)
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
