"""Substitutes for absent approvers: naming one (a row and its audit event in one transaction)."""

from collections.abc import Iterator
from datetime import date, datetime

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from db.audit import NewEvent, append_events
from db.engine import transaction
from domain.errors import InputError
from models import Delegation, Person


def add_delegation(engine: Engine, *, person: str, substitute: str, starts: date, ends: date,
                   now: datetime) -> None:
    """`substitute` answers for `person` from `starts` to `ends` (inclusive); InputError if not."""
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
        append_events(session, [NewEvent("delegation.added", f"person:{absent}",
                                         details={"substitute": standin, "from": starts,
                                                  "to": ends})], now=now)


def covers_on(session: Session, person_id: int, day: date) -> Iterator[Delegation]:
    """The delegations of `person_id` covering `day`, queried only when iterated."""
    yield from session.execute(select(Delegation).where(
        col(Delegation.person_id) == person_id, col(Delegation.starts) <= day,
        col(Delegation.ends) >= day)).scalars()
