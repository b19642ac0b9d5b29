"""Substitutes for absent approvers: naming one or ending one (the row, the pending steps it
moves, the mails to both people and the audit events, in one transaction)."""

from collections.abc import Iterator
from datetime import date, datetime, timedelta

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from config.settings import Settings, get_settings
from db.audit import NewEvent, append_events
from db.engine import transaction
from domain.errors import InputError
from models import Delegation, Person
from workflow.context import make_context
from workflow.step_holders import Move, retarget_pending


def add_delegation(engine: Engine, *, person: str, substitute: str, starts: date, ends: date,
                   now: datetime, settings: Settings | None = None) -> list[Move]:
    """`substitute` answers for `person` from `starts` to `ends` (inclusive); InputError if not.

    Pending steps of `person` move to the substitute at once when the range covers today (and
    on the first follow-up run inside it otherwise); both people are told. Returns the moves.
    """
    ctx = make_context(settings or get_settings(), now=now)
    absent, standin = person.lower(), substitute.lower()
    with transaction(engine) as session:
        people = {p.email: p for p in session.execute(
            select(Person).where(col(Person.email).in_([absent, standin]))).scalars()}
        for email in (absent, standin):
            if email not in people:
                raise InputError(f"unknown person {email!r}")
        if absent == standin:
            raise InputError("a person cannot substitute for themselves")
        session.add(Delegation(person_id=people[absent].id or 0,
                               substitute_id=people[standin].id or 0, starts=starts, ends=ends,
                               created_at=now))
        session.flush()
        events = [NewEvent("delegation.added", f"person:{absent}",
                           details={"substitute": standin, "from": starts, "to": ends})]
        moves = retarget_pending(session, ctx=ctx, events=events, people={people[absent].id or 0},
                                 why=f"stedfortræder {starts}–{ends}")
        append_events(session, events, now=now)
        return moves


def end_delegation(engine: Engine, *, person: str, substitute: str, last_day: date,
                   now: datetime, settings: Settings | None = None) -> list[Move]:
    """Delegations of `person` to `substitute` end on `last_day`; steps go back at once if due.

    InputError when there is no such delegation covering a day after `last_day`.
    """
    ctx = make_context(settings or get_settings(), now=now)
    absent, standin = person.lower(), substitute.lower()
    with transaction(engine) as session:
        ids = dict(session.execute(select(col(Person.email), col(Person.id)).where(
            col(Person.email).in_([absent, standin]))).all())
        rows = list(session.execute(select(Delegation).where(
            col(Delegation.person_id) == ids.get(absent, -1),
            col(Delegation.substitute_id) == ids.get(standin, -1),
            col(Delegation.ends) > last_day)).scalars())
        if not rows:
            raise InputError(f"no delegation {absent} → {standin} running after {last_day}")
        for row in rows:
            row.ends = max(last_day, row.starts - timedelta(days=1))
            if row.ends < row.starts:
                session.delete(row)  # it had not started: ending it before it starts removes it
        session.flush()
        events = [NewEvent("delegation.ended", f"person:{absent}",
                           details={"substitute": standin, "last_day": last_day})]
        moves = retarget_pending(session, ctx=ctx, events=events, people={ids[absent]},
                                 why=f"stedfortræderaftalen med {standin} sluttede {last_day}")
        append_events(session, events, now=now)
        return moves


def covers_on(session: Session, person_id: int, day: date) -> Iterator[Delegation]:
    """The delegations of `person_id` covering `day`, queried only when iterated."""
    yield from session.execute(select(Delegation).where(
        col(Delegation.person_id) == person_id, col(Delegation.starts) <= day,
        col(Delegation.ends) >= day)).scalars()
