"""Shared CLI plumbing: settings, engine, the one error handler, JSON printing."""

import json
import sys
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from typer.core import TyperGroup

from domain.errors import (
    BevillingError,
    ConfigurationError,
    DeliveryError,
    InputError,
    NotFoundError,
    RefusedError,
)

if TYPE_CHECKING:  # imported when a command needs them, so `bevilling --help` stays quick
    from sqlalchemy import Engine
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from config.settings import Settings

# How an error's first line starts, by kind (the first match in this order wins).
_KINDS: tuple[tuple[type[BevillingError], str], ...] = (
    (ConfigurationError, "configuration error"),
    (InputError, "input error"),
    (NotFoundError, "not found"),
    (RefusedError, "refused"),
    (DeliveryError, "delivery error"),
)


def command_group(**options: Any) -> typer.Typer:
    """A Typer app with plain click help: rich's formatter alone costs ~0.4 s per `--help`."""
    return typer.Typer(rich_markup_mode=None, **options)


def settings() -> "Settings":
    """Settings for this invocation."""
    from config.settings import get_settings

    return get_settings()


def engine() -> "Engine":
    """Engine for the configured database."""
    from db.engine import get_engine

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


def report_database(error: "OperationalError | ProgrammingError") -> NoReturn:
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
        except Exception as error:
            # sqlalchemy is loaded only by commands that touch the database.
            driver = sys.modules.get("sqlalchemy.exc")
            if driver is not None and isinstance(
                    error, driver.OperationalError | driver.ProgrammingError):
                report_database(error)
            raise


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
