from datetime import date, timedelta
from decimal import Decimal

from domain.retry import retry_delay
from mail.formatting import MoneyLine, at_stake, long_date, money
from mail.ics import all_day_event


def test_danish_long_date() -> None:
    assert long_date(date(2025, 12, 31), "da") == "31. december 2025"
    assert long_date(date(2025, 12, 31), "en") == "31 December 2025"


def test_money_in_danish_and_english() -> None:
    assert money(Decimal(1_300_000), Decimal(2_000_000), "da") == "1,3–2 mio. kr."
    assert money(Decimal(500_000), None, "da") == "500.000 kr."
    assert money(Decimal(6_600_000), None, "da") == "6,6 mio. kr."
    assert money(Decimal(500_000), None, "en") == "DKK 500,000"


def test_stake_prefers_needs_over_appropriations() -> None:
    lines = (MoneyLine("drift", "need", "yearly", Decimal(1_300_000), Decimal(2_000_000),
                       2026, None),
             MoneyLine("hat", "need", "once", Decimal(500_000), None, 2026, 2026),
             MoneyLine("old", "appropriated", "once", Decimal(8_000_000), None, 2021, 2024))
    assert at_stake(lines, "da") == "1,3–2 mio. kr. årligt og 500.000 kr. én gang"
    assert at_stake((), "da") is None


def test_ics_is_an_all_day_event_with_crlf_and_folding() -> None:
    from datetime import UTC, datetime

    ics = all_day_event(uid="x@example.org", day=date(2025, 12, 31), summary="Æ" * 80,
                        description="a, b; c", stamp=datetime(2025, 1, 1, tzinfo=UTC))
    assert "DTSTART;VALUE=DATE:20251231\r\n" in ics
    assert "DTEND;VALUE=DATE:20260101\r\n" in ics
    assert "a\\, b\\; c" in ics
    assert all(len(line.encode()) <= 75 for line in ics.split("\r\n"))


def test_retry_backoff_grows_and_is_capped() -> None:
    assert retry_delay(1, base_seconds=30, draw=0.5) == timedelta(seconds=30)
    assert retry_delay(3, base_seconds=30, draw=0.5) == timedelta(seconds=120)
    assert retry_delay(30, base_seconds=30, draw=0.5) == timedelta(hours=1)
    assert retry_delay(1, base_seconds=30, draw=0.0) < retry_delay(1, base_seconds=30, draw=1.0)
