"""Schema of the `requests:` section of a register file: budget requests and their lines."""

from decimal import Decimal
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

CATEGORIES = ("continuation", "ai", "cyber", "preparedness", "csr", "operations")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class RequestLineSpec(_Strict):
    year: int = Field(ge=2000, le=2100)
    amount: Decimal = Field(ge=0, max_digits=16, decimal_places=2)
    amount_max: Decimal | None = Field(default=None, ge=0, max_digits=16, decimal_places=2)
    recurring: bool
    label: str = ""

    @model_validator(mode="after")
    def check_range(self) -> Self:
        if self.amount_max is not None and self.amount_max < self.amount:
            raise ValueError("amount_max must not be below amount")
        return self


class RequestSpec(_Strict):
    key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    title: str = Field(min_length=1, max_length=300)
    department: str
    requester: EmailStr
    category: Literal["continuation", "ai", "cyber", "preparedness", "csr", "operations"]
    justification: str = Field(min_length=1)
    grant: str | None = None
    new_theme: bool = False
    recurring: bool | None = Field(
        default=None, description="Only for requests without lines: is the need recurring?")
    policy: str | None = None
    lines: tuple[RequestLineSpec, ...] = ()
    amounts_note: str = ""

    @field_validator("requester")
    @classmethod
    def lower_requester(cls, value: str) -> str:
        return value.lower()

    @model_validator(mode="after")
    def check_amounts(self) -> Self:
        if not self.lines and not self.amounts_note:
            raise ValueError("a request without lines must say why in amounts_note")
        years = [(line.year, line.label) for line in self.lines]
        if len(years) != len(set(years)):
            raise ValueError("two lines with the same year and label")
        return self
