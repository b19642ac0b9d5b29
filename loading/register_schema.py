"""The schema of a register data file (YAML or CSV): departments, people and grants."""

from datetime import date
from decimal import Decimal
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from domain.reminders import validate_offsets

Slug = str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class DepartmentSpec(_Strict):
    key: Slug = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str = Field(min_length=1, max_length=200)


class PersonSpec(_Strict):
    email: EmailStr
    name: str = Field(min_length=1, max_length=200)
    role: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str = ""
    language: Literal["da", "en"] = "da"
    department: Slug | None = None
    manager: EmailStr | None = None

    @field_validator("email", "manager")
    @classmethod
    def lower_case(cls, value: str | None) -> str | None:
        return value.lower() if value else value


class AmountSpec(_Strict):
    label: str = ""
    kind: Literal["appropriated", "need"]
    recurrence: Literal["once", "yearly"]
    year_from: int | None = Field(default=None, ge=1990, le=2100)
    year_to: int | None = Field(default=None, ge=1990, le=2100)
    amount: Decimal = Field(ge=0, max_digits=16, decimal_places=2)
    amount_max: Decimal | None = Field(default=None, ge=0, max_digits=16, decimal_places=2)

    @model_validator(mode="after")
    def check_ranges(self) -> Self:
        if self.amount_max is not None and self.amount_max < self.amount:
            raise ValueError("amount_max must not be below amount")
        if self.year_from and self.year_to and self.year_to < self.year_from:
            raise ValueError("year_to must not be before year_from")
        return self


class GrantSpec(_Strict):
    key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    title: str = Field(min_length=1, max_length=300)
    department: Slug
    owner: EmailStr
    recipients: tuple[EmailStr, ...] = ()
    funding_source: str = ""
    start_date: date | None = None
    end_date: date
    status: Literal["active", "extended", "lapsed"] = "active"
    reminder_offsets: tuple[int, ...] | None = None
    amounts: tuple[AmountSpec, ...] = ()
    notes: str = ""

    @field_validator("owner")
    @classmethod
    def lower_owner(cls, value: str) -> str:
        return value.lower()

    @field_validator("recipients")
    @classmethod
    def lower_recipients(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(item.lower() for item in value))

    @field_validator("reminder_offsets")
    @classmethod
    def check_offsets(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        return None if value is None else validate_offsets(value)

    @model_validator(mode="after")
    def check_dates(self) -> Self:
        if self.start_date and self.start_date > self.end_date:
            raise ValueError("start_date must not be after end_date")
        return self
