"""Read-only queries the faces show (CLI lists, JSON documents): each opens its own session."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from db.audit import ChainReport, NewEvent, append_events, verify_chain
from db.engine import transaction
from models import Delegation, Grant, Outbox, Person, Reminder
from workflow.request_json import request_by_key, request_list


def outbox_rows(engine: Engine, *, state: str | None = None) -> list[dict[str, Any]]:
    """Outbox rows (oldest first), optionally only those in `state`."""
    query = select(Outbox).order_by(col(Outbox.id))
    if state:
        query = query.where(col(Outbox.state) == state)
    with Session(engine) as session:
        return [{"id": o.id, "key": o.key, "to": o.recipients, "subject": o.subject,
                 "state": o.state.value, "attempts": o.attempts, "message_id": o.message_id,
                 "last_error": o.last_error} for o in session.execute(query).scalars()]


def grant_rows(engine: Engine) -> list[dict[str, Any]]:
    """Grants by end date with status and owner."""
    with Session(engine) as session:
        rows = session.execute(
            select(Grant, col(Person.email)).join(Person, col(Person.id) == col(Grant.owner_id))
            .order_by(col(Grant.end_date), col(Grant.key))).all()
        return [{"key": g.key, "title": g.title, "status": g.status.value,
                 "start_date": g.start_date, "end_date": g.end_date, "owner": email,
                 "funding_source": g.funding_source} for g, email in rows]


def reminder_rows(engine: Engine, *, state: str | None = None) -> list[dict[str, Any]]:
    """The reminder ledger with the delivery state of each sent reminder."""
    query = (select(Reminder, col(Grant.key), col(Outbox.state))
             .join(Grant, col(Grant.id) == col(Reminder.grant_id))
             .outerjoin(Outbox, col(Outbox.id) == col(Reminder.outbox_id))
             .order_by(col(Reminder.due_date), col(Grant.key), col(Reminder.offset_days).desc()))
    if state:
        query = query.where(col(Reminder.state) == state)
    with Session(engine) as session:
        return [{"grant": key, "kind": r.kind.value, "offset_days": r.offset_days,
                 "end_date": r.end_date, "due_date": r.due_date, "state": r.state.value,
                 "handled_on": r.handled_on, "delivery": mail_state.value if mail_state else None,
                 "note": r.note} for r, key, mail_state in session.execute(query).all()]


def delegation_rows(engine: Engine, *, on: date | None = None) -> list[dict[str, Any]]:
    """Delegations by first day (person and substitute by e-mail), optionally covering `on`."""
    with Session(engine) as session:
        emails = {p.id: p.email for p in session.execute(select(Person)).scalars()}
        return [{"person": emails[d.person_id], "substitute": emails[d.substitute_id],
                 "starts": d.starts, "ends": d.ends}
                for d in session.execute(select(Delegation).order_by(col(Delegation.starts)))
                .scalars() if on is None or d.starts <= on <= d.ends]


def audit_report(engine: Engine) -> ChainReport:
    """The audit hash chain, recomputed."""
    with Session(engine) as session:
        return verify_chain(session)


def seal_audit(engine: Engine, *, now: datetime) -> None:
    """Append one keyed event, so the unkeyed events before the key are anchored under it."""
    with transaction(engine) as session:
        append_events(session, [NewEvent("audit.sealed", "audit")], now=now)


def request_document_of(engine: Engine, key: str) -> dict[str, Any] | None:
    """`requests show --json` of one request, or None when no request has that key."""
    with Session(engine) as session:
        return request_by_key(session, key)


def request_documents(engine: Engine) -> list[dict[str, Any]]:
    """`requests list --json`: every request with state and yearly amounts."""
    with Session(engine) as session:
        return request_list(session)
