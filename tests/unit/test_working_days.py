from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.closed_days import working_calendar
from config.settings import Settings
from domain.working_days import WorkingCalendar

CAL = working_calendar(Settings(), around=date(2026, 1, 1), span_years=4)


def test_easter_2026_is_closed_thursday_to_monday() -> None:
    for day in (date(2026, 4, 2), date(2026, 4, 3), date(2026, 4, 6)):
        assert not CAL.is_working_day(day)
    assert CAL.on_or_before(date(2026, 4, 6)) == date(2026, 4, 1)


def test_christmas_with_optional_days_closed() -> None:
    assert CAL.add_working_days(date(2025, 12, 22), 5) == date(2026, 1, 5)
    assert CAL.on_or_before(date(2025, 12, 31)) == date(2025, 12, 30)
    assert CAL.on_or_after(date(2025, 12, 24)) == date(2025, 12, 29)


def test_public_holidays_only_keeps_christmas_eve_open() -> None:
    public = working_calendar(Settings(holiday_categories=("public",)), around=date(2025, 12, 1))
    assert public.is_working_day(date(2025, 12, 24))
    assert public.add_working_days(date(2025, 12, 22), 5) == date(2025, 12, 31)


def test_store_bededag_exists_in_2023_not_2024() -> None:
    assert not CAL.is_working_day(date(2023, 5, 5))
    assert CAL.is_working_day(date(2024, 4, 26))


def test_leap_day_is_an_ordinary_working_day() -> None:
    assert CAL.is_working_day(date(2028, 2, 29))
    assert CAL.working_days_between(date(2028, 2, 28), date(2028, 3, 1)) == 2


def test_extra_closed_dates_from_settings() -> None:
    cal = working_calendar(Settings(extra_closed_dates=("2026-05-15",)), around=date(2026, 5, 1))
    assert not cal.is_working_day(date(2026, 5, 15))


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        CAL.add_working_days(date(2026, 1, 1), -1)


days = st.dates(min_value=date(2023, 1, 10), max_value=date(2029, 12, 20))


@given(days)
def test_on_or_before_is_a_working_day_not_after(day: date) -> None:
    result = CAL.on_or_before(day)
    assert result <= day
    assert CAL.is_working_day(result)
    assert all(not CAL.is_working_day(result + timedelta(days=i))
               for i in range(1, (day - result).days + 1))


@given(days, st.integers(min_value=0, max_value=40))
def test_add_then_count_round_trips(day: date, count: int) -> None:
    end = CAL.add_working_days(day, count)
    assert CAL.working_days_between(day, end) == count
    if count:
        assert CAL.is_working_day(end)
        assert CAL.subtract_working_days(end, count) == CAL.on_or_before(day) or \
            CAL.working_days_between(CAL.subtract_working_days(end, count), end) == count


def test_a_calendar_with_everything_closed_fails_loudly() -> None:
    start = date(2026, 1, 1)
    cal = WorkingCalendar.of(start + timedelta(days=i) for i in range(-100, 100))
    with pytest.raises(ValueError, match="no working day"):
        cal.on_or_before(start)
