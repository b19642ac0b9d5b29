"""Closed days for the working calendar, from the `holidays` package plus local settings."""

from datetime import date

import holidays

from config.settings import Settings
from domain.working_days import WorkingCalendar


def closed_days(settings: Settings, *, years: range) -> frozenset[date]:
    """Danish holidays of the configured categories plus extra closed dates, for `years`."""
    calendar = holidays.country_holidays(
        "DK", years=list(years), language="da", categories=settings.holiday_categories
    )
    extra = {date.fromisoformat(value) for value in settings.extra_closed_dates}
    return frozenset(calendar.keys()) | frozenset(extra)


def working_calendar(settings: Settings, *, around: date, span_years: int = 3) -> WorkingCalendar:
    """A calendar covering `span_years` years either side of `around`."""
    years = range(around.year - span_years, around.year + span_years + 1)
    return WorkingCalendar.of(closed_days(settings, years=years))
