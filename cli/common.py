"""Shared CLI plumbing: settings, engine, the one error handler, JSON printing."""

import json
import sys
from datetime import date
from decimal import Decimal
from typing import Any, NoReturn

import typer
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError
from typer.core import TyperGroup

from config.settings import Settings, get_settings
from db.engine import get_engine
from domain.errors import (
    BevillingError,
    ConfigurationError,
    DeliveryError,
    InputError,
    NotFoundError,
    RefusedError,
)

# How an error's first line starts, by kind (the first match in this order wins).
_KINDS: tuple[tuple[type[BevillingError], str], ...] = (
    (ConfigurationError, "configuration error"),
    (InputError, "input error"),
    (NotFoundError, "not found"),
    (RefusedError, "refused"),
    (DeliveryError, "delivery error"),
)


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


def report(error: BevillingError) -> NoReturn:
    """`<kind>: <message>` on stderr, then the class's hint; exit with the class's exit code."""
    kind = next((label for cls, label in _KINDS if isinstance(error, cls)), "error")
    typer.secho(f"{kind}: {error}", fg=typer.colors.RED, err=True)
    if error.hint:
        typer.echo(f"  hint: {error.hint}", err=True)
    raise typer.Exit(error.exit_code)


def report_database(error: OperationalError | ProgrammingError) -> NoReturn:
    """A driver error in one line, with a hint when the schema is missing; exit 1."""
    message = str(error.orig) if error.orig is not None else str(error)
    hint = (" — is the database initialised? run `bevilling init`"
            if "no such table" in message or "does not exist" in message else "")
    typer.secho(f"database error: {message.splitlines()[0]}{hint}", fg=typer.colors.RED,
                err=True)
    raise typer.Exit(1)


class ErrorReportingGroup(TyperGroup):
    """The root command group: the one place where errors become a line and an exit code."""

    def invoke(self, ctx: Any) -> Any:  # Any: typer's vendored click Context is private
        """Run the command; a BevillingError or a database error is reported, not a traceback."""
        try:
            return super().invoke(ctx)
        except BevillingError as error:
            report(error)
        except (OperationalError, ProgrammingError) as error:
            report_database(error)


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
        raise InputError(f"{option}: {value!r} is not a date (use YYYY-MM-DD)") from None
