"""Column types shared by the tables: UTC datetimes that come back aware, JSON as text, states."""

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, DateTime, Dialect, Enum, Text
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: SQLite has no time zones, PostgreSQL gets the same."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class JSONText(TypeDecorator[Any]):
    """JSON kept as sorted, compact text, identical on SQLite and PostgreSQL."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return json.loads(value)


def state_column(states: type[StrEnum], *, index: bool = False, nullable: bool = False) -> Any:
    """A column typed by a domain state enum, stored as its value (`"pending"`) in VARCHAR(16).

    The enum's values, not its names, go to the database, so the rows written before the
    columns were enum-typed read back unchanged; an unknown value raises on read.
    """
    return Column(
        Enum(states, native_enum=False, create_constraint=False, length=16,
             values_callable=lambda members: [member.value for member in members],
             validate_strings=True),
        index=index, nullable=nullable)
