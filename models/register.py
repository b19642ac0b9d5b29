"""Departments, people and grants: the register the deadline check reads."""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import Column, Index, Numeric, UniqueConstraint
from sqlmodel import Field, SQLModel, col

from models.types import JSONText, UTCDateTime


class GrantStatus(StrEnum):
    ACTIVE = "active"
    EXTENDED = "extended"
    LAPSED = "lapsed"


class AmountKind(StrEnum):
    APPROPRIATED = "appropriated"
    NEED = "need"


class Recurrence(StrEnum):
    ONCE = "once"
    YEARLY = "yearly"


class Department(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=200)


class PersonBase(SQLModel):
    email: str = Field(max_length=254, unique=True, index=True)
    name: str = Field(max_length=200)
    role: str = Field(max_length=64, index=True)
    title: str = Field(default="", max_length=200)
    language: str = Field(default="da", max_length=2)
    active: bool = True


class Person(PersonBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    department_id: int | None = Field(default=None, foreign_key="department.id")
    manager_id: int | None = Field(default=None, foreign_key="person.id")


class GrantBase(SQLModel):
    key: str = Field(max_length=64, unique=True, index=True)
    title: str = Field(max_length=300)
    funding_source: str = Field(default="", max_length=300)
    start_date: date | None = None
    end_date: date
    notes: str = ""
    status: GrantStatus = Field(default=GrantStatus.ACTIVE, max_length=16)


class Grant(GrantBase, table=True):
    __tablename__ = "grants"

    id: int | None = Field(default=None, primary_key=True)
    department_id: int = Field(foreign_key="department.id")
    owner_id: int = Field(foreign_key="person.id")
    reminder_offsets: list[int] | None = Field(default=None, sa_column=Column(JSONText))
    content_hash: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class GrantPublic(GrantBase):
    id: int
    department: str
    owner_email: str
    days_left: int | None = None


class GrantRecipient(SQLModel, table=True):
    """Extra people who get a grant's reminders besides its owner."""

    grant_id: int = Field(foreign_key="grants.id", primary_key=True, ondelete="CASCADE")
    person_id: int = Field(foreign_key="person.id", primary_key=True)


class GrantAmount(SQLModel, table=True):
    """One money line of a grant: appropriated funds per year, or the need after it runs out."""

    __table_args__ = (UniqueConstraint("grant_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    grant_id: int = Field(foreign_key="grants.id", index=True, ondelete="CASCADE")
    position: int
    label: str = Field(default="", max_length=300)
    kind: AmountKind = Field(max_length=16)
    recurrence: Recurrence = Field(max_length=16)
    year_from: int | None = None
    year_to: int | None = None
    amount: Decimal = Field(sa_column=Column(Numeric(16, 2), nullable=False))
    amount_max: Decimal | None = Field(default=None, sa_column=Column(Numeric(16, 2)))


Index("ix_grant_end_date", col(Grant.end_date))
