"""When to remind a grant's owner, and what a (possibly late) daily check should send."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from domain.working_days import WorkingCalendar

EXPIRED_OFFSET = 0


class ReminderState(StrEnum):
    """Life cycle of one planned reminder in the ledger."""

    PLANNED = "planned"
    SENT = "sent"
    LATE_SENT = "late-sent"
    CANCELLED = "cancelled"


class PlanKind(StrEnum):
    REMINDER = "reminder"
    EXPIRED = "expired"


@dataclass(frozen=True, order=True)
class PlannedReminder:
    """A reminder that should exist for a grant's current end date."""

    kind: PlanKind
    offset_days: int
    end_date: date
    due_date: date

    @property
    def plan_key(self) -> tuple[str, int, date]:
        """Identity of a plan row: unique per grant in the ledger."""
        return (self.kind.value, self.offset_days, self.end_date)


@dataclass(frozen=True)
class LedgerRow:
    """What the rules need to know about an existing ledger row."""

    reminder_id: int
    kind: PlanKind
    offset_days: int
    end_date: date
    due_date: date
    is_planned: bool
    is_cancelled: bool

    @property
    def plan_key(self) -> tuple[str, int, date]:
        """Identity of a plan row: unique per grant in the ledger."""
        return (self.kind.value, self.offset_days, self.end_date)


@dataclass(frozen=True)
class Replan:
    """Changes to one grant's ledger after the grant was saved."""

    insert: tuple[PlannedReminder, ...]
    reactivate: tuple[tuple[int, PlannedReminder], ...]
    cancel: tuple[int, ...]


def validate_offsets(offsets: Sequence[int]) -> tuple[int, ...]:
    """Offsets sorted longest first; each a whole number of days between 1 and 3650."""
    cleaned = sorted(set(offsets), reverse=True)
    for offset in cleaned:
        if not 1 <= offset <= 3650:
            raise ValueError(f"reminder offset {offset} must be between 1 and 3650 days")
    if not cleaned:
        raise ValueError("at least one reminder offset is needed")
    return tuple(cleaned)


def plan_reminders(
    end_date: date, *, offsets: Sequence[int], calendar: WorkingCalendar, with_expiry: bool = True
) -> list[PlannedReminder]:
    """Reminders `offsets` days before `end_date`, moved back to a working day, plus the expiry."""
    planned = [
        PlannedReminder(
            PlanKind.REMINDER,
            offset,
            end_date,
            calendar.on_or_before(end_date - timedelta(days=offset)),
        )
        for offset in validate_offsets(offsets)
    ]
    if with_expiry:
        expiry_due = calendar.on_or_after(end_date + timedelta(days=1))
        planned.append(PlannedReminder(PlanKind.EXPIRED, EXPIRED_OFFSET, end_date, expiry_due))
    return planned


def replan(existing: Iterable[LedgerRow], desired: Iterable[PlannedReminder]) -> Replan:
    """Reconcile a grant's ledger with what it should be now; sent rows are never touched."""
    rows_by_key = {row.plan_key: row for row in existing}
    wanted = {plan.plan_key: plan for plan in desired}
    insert: list[PlannedReminder] = []
    reactivate: list[tuple[int, PlannedReminder]] = []
    for key, plan in sorted(wanted.items()):
        row = rows_by_key.get(key)
        if row is None:
            insert.append(plan)
        elif row.is_cancelled or (row.is_planned and row.due_date != plan.due_date):
            # A cancelled row comes back when an end date is moved back; a planned row
            # follows changes in the closed-day calendar.
            reactivate.append((row.reminder_id, plan))
    cancel = [
        row.reminder_id for key, row in rows_by_key.items() if row.is_planned and key not in wanted
    ]
    return Replan(tuple(insert), tuple(reactivate), tuple(sorted(cancel)))


@dataclass(frozen=True)
class DueReminder:
    """A planned ledger row whose due date has come."""

    reminder_id: int
    grant_id: int
    kind: PlanKind
    offset_days: int
    end_date: date
    due_date: date


@dataclass(frozen=True)
class SendDecision:
    """Send this reminder now; `late` when its due date has already passed."""

    reminder: DueReminder
    late: bool


@dataclass(frozen=True)
class CatchUp:
    """What a daily check does with every due row: send one per grant, supersede the rest."""

    send: tuple[SendDecision, ...]
    superseded: tuple[tuple[DueReminder, DueReminder], ...]
    too_old: tuple[DueReminder, ...]


def _recency(row: DueReminder) -> tuple[date, int, int]:
    return (row.due_date, 1 if row.kind is PlanKind.EXPIRED else 0, -row.offset_days)


def decide_due(
    due: Iterable[DueReminder], *, as_of: date, expiry_notice_days: int = 365
) -> CatchUp:
    """Per grant send only the most recent due row; older ones are superseded, never a burst."""
    by_grant: dict[int, list[DueReminder]] = {}
    for row in due:
        if row.due_date > as_of:
            raise ValueError(f"reminder {row.reminder_id} is not due until {row.due_date}")
        by_grant.setdefault(row.grant_id, []).append(row)
    send: list[SendDecision] = []
    superseded: list[tuple[DueReminder, DueReminder]] = []
    too_old: list[DueReminder] = []
    for grant_id in sorted(by_grant):
        rows = sorted(by_grant[grant_id], key=_recency)
        newest = rows[-1]
        superseded.extend((older, newest) for older in rows[:-1])
        stale = newest.kind is PlanKind.EXPIRED and (
            as_of - newest.end_date
        ).days > expiry_notice_days
        if stale:
            too_old.append(newest)
        else:
            send.append(SendDecision(newest, late=newest.due_date < as_of))
    return CatchUp(tuple(send), tuple(superseded), tuple(too_old))
