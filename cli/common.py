"""Shared CLI plumbing: settings, engine, clear error output, JSON printing."""

import json
import sys
from datetime import date
from decimal import Decimal
from typing import Any, NoReturn

import typer
from sqlalchemy import Engine

from config.settings import Settings, get_settings
from db.engine import get_engine


def settings() -> Settings:
    """Settings for this invocation."""
    return get_settings()


def engine() -> Engine:
    """Engine for the configured database."""
    return get_engine(settings().database_url)


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print an error to stderr and exit non-zero."""
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _default(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(value: Any) -> None:
    """Stable, indented JSON on stdout."""
    json.dump(value, sys.stdout, default=_default, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def parse_day(value: str | None, *, option: str) -> date | None:
    """An ISO date option, or a clear error."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option}: {value!r} is not a date (use YYYY-MM-DD)", code=2)
