"""What every flow needs at its edge: settings, the engine, the clock in Copenhagen."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from config.closed_days import working_calendar
from config.settings import Settings, get_settings
from db.engine import get_engine
from domain.working_days import WorkingCalendar


def settings() -> Settings:
    """The process settings."""
    return get_settings()


def engine() -> Engine:
    """The engine for the configured database."""
    return get_engine(settings().database_url)


def utc_now() -> datetime:
    """The real clock; only flows and the CLI read it, domain code gets times passed in."""
    return datetime.now(UTC)


def local_today(now: datetime | None = None) -> date:
    """Today's date in the configured time zone (Europe/Copenhagen)."""
    moment = now or utc_now()
    return moment.astimezone(ZoneInfo(settings().timezone)).date()


def scheduled_day() -> date:
    """The day a scheduled run was meant for, so a run that starts late still checks its day."""
    try:
        from prefect.runtime import flow_run

        scheduled = flow_run.scheduled_start_time
    except (ImportError, ValueError, AttributeError):
        scheduled = None
    if isinstance(scheduled, datetime):
        return local_today(scheduled if scheduled.tzinfo else scheduled.replace(tzinfo=UTC))
    return local_today()


def calendar_around(day: date) -> WorkingCalendar:
    """Working calendar covering the years around `day`."""
    return working_calendar(settings(), around=day)
