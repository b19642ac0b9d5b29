"""Danish working days: the closed days are passed in, so the rules stay pure."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

SATURDAY = 5


@dataclass(frozen=True)
class WorkingCalendar:
    """Weekends plus an explicit set of closed days (public holidays, office closures)."""

    closed_days: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def of(cls, closed_days: Iterable[date]) -> "WorkingCalendar":
        """Build a calendar from any iterable of closed dates."""
        return cls(frozenset(closed_days))

    def is_working_day(self, day: date) -> bool:
        """True when the office is open on `day`."""
        return day.weekday() < SATURDAY and day not in self.closed_days

    def on_or_before(self, day: date) -> date:
        """`day` itself if it is a working day, else the previous working day."""
        probe = day
        # A year never has more than ~20 consecutive closed days; 60 bounds a corrupt calendar.
        for _ in range(60):
            if self.is_working_day(probe):
                return probe
            probe -= timedelta(days=1)
        raise ValueError(f"no working day within 60 days before {day.isoformat()}")

    def on_or_after(self, day: date) -> date:
        """`day` itself if it is a working day, else the next working day."""
        probe = day
        for _ in range(60):
            if self.is_working_day(probe):
                return probe
            probe += timedelta(days=1)
        raise ValueError(f"no working day within 60 days after {day.isoformat()}")

    def add_working_days(self, start: date, count: int) -> date:
        """The date `count` working days after `start` (start itself not counted)."""
        if count < 0:
            raise ValueError("count must not be negative")
        probe = start
        remaining = count
        while remaining:
            probe += timedelta(days=1)
            if self.is_working_day(probe):
                remaining -= 1
        return probe

    def subtract_working_days(self, start: date, count: int) -> date:
        """The date `count` working days before `start`."""
        if count < 0:
            raise ValueError("count must not be negative")
        probe = start
        remaining = count
        while remaining:
            probe -= timedelta(days=1)
            if self.is_working_day(probe):
                remaining -= 1
        return probe

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in (start, end]: how many working days remain from `start` until `end`."""
        if end <= start:
            return 0
        total = 0
        probe = start
        while probe < end:
            probe += timedelta(days=1)
            if self.is_working_day(probe):
                total += 1
        return total
