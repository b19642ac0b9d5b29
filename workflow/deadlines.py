"""The daily deadline check: read what is due, write ledger + outbox together, batch by batch."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlmodel import Session, col

from config.closed_days import working_calendar
from config.settings import get_settings
from db.audit import NewEvent, append_events
from db.engine import get_engine
from domain.reminders import CatchUp, DueReminder, PlanKind, ReminderState, SendDecision, decide_due
from mail.formatting import MoneyLine
from mail.reminder_mail import GrantFacts, Recipient, reminder_mails
from models.outbox import NewMail
from models.register import Grant, GrantAmount, GrantRecipient, GrantStatus, Person
from models.reminders import Reminder, ReminderKind
from workflow.outbox import enqueue

GRANTS_PER_BATCH = 200
MAX_BATCHES = 10_000
EXPIRY_NOTICE_DAYS = 365


@dataclass
class CheckReport:
    """What one deadline check did."""

    as_of: date
    sent: int = 0
    late: int = 0
    expired: int = 0
    superseded: int = 0
    too_old: int = 0
    mails: int = 0
    batches: int = 0
    grant_keys: list[str] = field(default_factory=list)


def due_grant_ids(session: Session, *, as_of: date, limit: int) -> list[int]:
    """Grants that have at least one planned reminder due on or before `as_of`."""
    statement = (select(col(Reminder.grant_id))
                 .where(col(Reminder.state) == ReminderState.PLANNED,
                        col(Reminder.due_date) <= as_of)
                 .group_by(col(Reminder.grant_id)).order_by(col(Reminder.grant_id)).limit(limit))
    return list(session.execute(statement).scalars())


def due_rows(session: Session, *, grant_ids: Sequence[int], as_of: date) -> list[DueReminder]:
    """All planned, due reminders of the given grants (row-locked on PostgreSQL)."""
    statement = (select(Reminder).where(
        col(Reminder.grant_id).in_(grant_ids),
        col(Reminder.state) == ReminderState.PLANNED, col(Reminder.due_date) <= as_of)
        .order_by(col(Reminder.id)).with_for_update())
    return [DueReminder(r.id or 0, r.grant_id, PlanKind(r.kind.value), r.offset_days, r.end_date,
                        r.due_date) for r in session.execute(statement).scalars()]


def grant_facts(session: Session, grant_ids: Sequence[int]) -> dict[int, GrantFacts]:
    """Everything the mails need about these grants, in three queries."""
    grants = {g.id: g for g in session.execute(
        select(Grant).where(col(Grant.id).in_(grant_ids))).scalars()}
    lines: dict[int, list[MoneyLine]] = {}
    for amount in session.execute(select(GrantAmount).where(
            col(GrantAmount.grant_id).in_(grant_ids)).order_by(col(GrantAmount.position))
            ).scalars():
        lines.setdefault(amount.grant_id, []).append(MoneyLine(
            amount.label, amount.kind.value, amount.recurrence.value, amount.amount,
            amount.amount_max, amount.year_from, amount.year_to))
    owner_ids = {g.owner_id for g in grants.values()}
    extra = session.execute(
        select(col(GrantRecipient.grant_id), col(GrantRecipient.person_id))
        .where(col(GrantRecipient.grant_id).in_(grant_ids))).all()
    person_ids = owner_ids | {pid for _, pid in extra}
    people = {p.id: p for p in session.execute(
        select(Person).where(col(Person.id).in_(person_ids))).scalars()}
    extras: dict[int, list[int]] = {}
    for grant_id, person_id in extra:
        extras.setdefault(grant_id, []).append(person_id)
    facts = {}
    for grant_id, grant in grants.items():
        ids = [grant.owner_id, *sorted(extras.get(grant_id or 0, []))]
        recipients = tuple(Recipient(people[i].name, people[i].email, people[i].language)
                           for i in ids if people[i].active)
        facts[grant_id or 0] = GrantFacts(
            grant_id or 0, grant.key, grant.title, grant.end_date, grant.funding_source,
            grant.notes, tuple(lines.get(grant_id or 0, [])), recipients)
    return facts


MailFactory = Callable[[DueReminder, bool, GrantFacts], list[NewMail]]


def process_due_batch(
    engine: Engine, *, as_of: date, now: datetime, make_mails: MailFactory, domain: str,
    expiry_notice_days: int, report: CheckReport,
) -> bool:
    """Handle one batch of due grants in one transaction; False when nothing was due."""
    with Session(engine, expire_on_commit=False) as session:
        grant_ids = due_grant_ids(session, as_of=as_of, limit=GRANTS_PER_BATCH)
        if not grant_ids:
            session.rollback()
            return False
        catchup: CatchUp = decide_due(due_rows(session, grant_ids=grant_ids, as_of=as_of),
                                      as_of=as_of, expiry_notice_days=expiry_notice_days)
        facts = grant_facts(session, grant_ids)
        mails_by_reminder = {
            decision.reminder.reminder_id: make_mails(
                decision.reminder, decision.late, facts[decision.reminder.grant_id])
            for decision in catchup.send
        }
        outbox_ids = enqueue(session, [m for ms in mails_by_reminder.values() for m in ms],
                             now=now, domain=domain)
        events: list[NewEvent] = []
        for decision in catchup.send:
            reminder = decision.reminder
            mails = mails_by_reminder[reminder.reminder_id]
            state = ReminderState.LATE_SENT if decision.late else ReminderState.SENT
            session.execute(update(Reminder).where(col(Reminder.id) == reminder.reminder_id).values(
                state=state, handled_on=as_of,
                outbox_id=outbox_ids[mails[0].key] if mails else None,
                note="" if mails else "no active recipient"))
            grant = facts[reminder.grant_id]
            events.append(NewEvent(
                f"reminder.{'expired' if reminder.kind is PlanKind.EXPIRED else 'enqueued'}",
                f"grant:{grant.key}",
                details={"offset_days": reminder.offset_days, "due_date": reminder.due_date,
                         "late": decision.late, "end_date": reminder.end_date,
                         "recipients": [m.recipient for m in mails]}))
            report.sent += 1
            report.late += int(decision.late)
            report.expired += int(reminder.kind is PlanKind.EXPIRED)
            report.mails += len(mails)
            report.grant_keys.append(grant.key)
        for older, newer in catchup.superseded:
            session.execute(update(Reminder).where(col(Reminder.id) == older.reminder_id).values(
                state=ReminderState.CANCELLED, handled_on=as_of,
                note=f"superseded by the {newer.kind.value} due {newer.due_date.isoformat()}"))
            report.superseded += 1
        for stale in catchup.too_old:
            session.execute(update(Reminder).where(col(Reminder.id) == stale.reminder_id).values(
                state=ReminderState.CANCELLED, handled_on=as_of,
                note=f"ended more than {expiry_notice_days} days ago"))
            report.too_old += 1
        append_events(session, events, now=now)
        session.commit()
    report.batches += 1
    return True


def enqueue_due(as_of: date, *, now: datetime | None = None,
                progress: Callable[[CheckReport], None] | None = None) -> dict[str, Any]:
    """Ledger + outbox rows for everything due on or before `as_of`, batch by batch."""
    settings = get_settings()
    engine = get_engine(settings.database_url)
    calendar = working_calendar(settings, around=as_of)
    moment = now or datetime.now(UTC)
    report = CheckReport(as_of=as_of)

    def make_mails(reminder: DueReminder, late: bool, grant: GrantFacts) -> list[NewMail]:
        return reminder_mails(SendDecision(reminder, late), grant, as_of=as_of,
                              calendar=calendar, templates_dir=settings.templates_dir,
                              domain=settings.mail_domain, now=moment)

    for _ in range(MAX_BATCHES):
        if not process_due_batch(engine, as_of=as_of, now=moment, make_mails=make_mails,
                                 domain=settings.mail_domain,
                                 expiry_notice_days=EXPIRY_NOTICE_DAYS, report=report):
            break
        if progress:
            progress(report)
    return {"as_of": as_of.isoformat(), "reminders": report.sent, "late": report.late,
            "expired": report.expired, "superseded": report.superseded,
            "too_old": report.too_old, "mails": report.mails, "grants": report.grant_keys}


@dataclass(frozen=True)
class UpcomingDeadline:
    """A row of the admin's 'upcoming deadlines' table."""

    key: str
    title: str
    end_date: date
    status: str
    owner_email: str
    reminders_sent: int
    reminders_planned: int


def upcoming_deadlines(session: Session, *, start: date, end: date) -> list[UpcomingDeadline]:
    """Grants ending within [start, end], with their reminder counts."""
    grants = session.execute(
        select(Grant, col(Person.email)).join(Person, col(Person.id) == col(Grant.owner_id))
        .where(col(Grant.end_date) >= start, col(Grant.end_date) <= end)
        .order_by(col(Grant.end_date), col(Grant.key))).all()
    ids = [grant.id for grant, _ in grants]
    counts: dict[tuple[int, ReminderState], int] = {}
    for start_index in range(0, len(ids), 500):
        chunk = ids[start_index:start_index + 500]
        rows = session.execute(
            select(col(Reminder.grant_id), col(Reminder.state), func.count())
            .join(Grant, col(Grant.id) == col(Reminder.grant_id))
            .where(col(Reminder.grant_id).in_(chunk), col(Reminder.end_date) == col(Grant.end_date),
                   col(Reminder.kind) == ReminderKind.REMINDER)
            .group_by(col(Reminder.grant_id), col(Reminder.state))).all()
        for grant_id, state, number in rows:
            counts[(grant_id, ReminderState(state))] = int(number)
    result = []
    for grant, email in grants:
        gid = grant.id or 0
        result.append(UpcomingDeadline(
            grant.key, grant.title, grant.end_date, GrantStatus(grant.status).value, email,
            sum(counts.get((gid, state), 0)
                for state in (ReminderState.SENT, ReminderState.LATE_SENT)),
            counts.get((gid, ReminderState.PLANNED), 0)))
    return result


def upcoming_deadlines_of(engine: Engine, *, start: date, end: date) -> list[UpcomingDeadline]:
    """`upcoming_deadlines` in a read-only session of its own (for the flow's artifact)."""
    with Session(engine) as session:
        return upcoming_deadlines(session, start=start, end=end)
