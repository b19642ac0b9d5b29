"""Outbox I/O: enqueue rendered mail idempotently, claim due rows under a lease, record outcomes."""

import base64
import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from db.audit import NewEvent, append_events
from models import Outbox, OutboxState
from models.outbox import ClaimedMail, Materialized, NewMail


def message_id_for(key: str, *, domain: str) -> str:
    """A short, stable Message-ID derived from the outbox key (no folding, no leading space)."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]
    return f"<bev-{digest}@{domain}>"


def new_bounce_tag() -> str:
    """80 random bits as 16 lower-case base32 characters: the unguessable part of a VERP address."""
    return base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()


_OUTBOX = Outbox.__table__  # type: ignore[attr-defined]  # SQLModel sets it on table models


@cache
def _insert_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT (key) DO NOTHING RETURNING key, id; built once per dialect."""
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    return (insert_fn(_OUTBOX).on_conflict_do_nothing(index_elements=["key"])
            .returning(_OUTBOX.c.key, _OUTBOX.c.id))


WireBuilder = Callable[[NewMail, str], bytes]
"""(mail, Message-ID) → the message's wire bytes; the service that enqueues supplies it."""


def insert_mails(
    session: Session, mails: Sequence[NewMail], *, now: datetime, domain: str,
    wire: WireBuilder, sender: dict[str, str],
) -> dict[str, int]:
    """Insert mails unless their key exists; returns key → outbox id for every given key.

    Each row carries its message as wire bytes, built once by `wire` (the Message-ID derived
    from the key), so every delivery attempt sends the same bytes; a mail with a
    `deferred_body` carries its template context instead (with `sender`), and the delivery
    worker renders and stores the bytes before the first attempt.
    """
    if not mails:
        return {}
    rows: list[dict[str, Any]] = []
    for mail in mails:
        message_id = message_id_for(mail.key, domain=domain)
        raw, deferred = None, None
        if mail.deferred_body is not None:
            deferred = {**mail.deferred_body, **sender}
        else:
            raw = wire(mail, message_id)
        rows.append({
            "key": mail.key, "kind": mail.kind, "subject_ref": mail.subject_ref,
            "recipients": [mail.recipient], "subject": mail.subject, "body_text": mail.body_text,
            "body_html": mail.body_html, "attachments": mail.attachments,
            "headers": {"Date-Enqueued": now.isoformat(), **mail.headers},
            "message_id": message_id, "bounce_tag": new_bounce_tag(), "raw_message": raw,
            "deferred_body": deferred,
            "state": OutboxState.PENDING, "attempts": 0, "next_attempt_at": now,
            "created_at": now,
        })
    statement = _insert_statement(session.get_bind().dialect.name)
    ids: dict[str, int] = {}
    for start in range(0, len(rows), 500):
        inserted = session.execute(statement, rows[start:start + 500])
        ids.update({key: outbox_id for key, outbox_id in inserted})  # noqa: C416  (Rows)
    # Keys that already existed (RETURNING names only the inserted rows): one more query.
    keys = [mail.key for mail in mails if mail.key not in ids]
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        for key, outbox_id in session.execute(
                select(col(Outbox.key), col(Outbox.id)).where(col(Outbox.key).in_(chunk))):
            ids[key] = outbox_id
    return ids


def claim_batch(
    engine: Engine, *, worker: str, now: datetime, lease_seconds: int, limit: int
) -> list[ClaimedMail]:
    """Atomically claim up to `limit` due rows (SKIP LOCKED on PostgreSQL, write-lock SQLite)."""
    due = or_(
        and_(col(Outbox.state) == OutboxState.PENDING, col(Outbox.next_attempt_at) <= now),
        and_(col(Outbox.state) == OutboxState.SENDING, col(Outbox.claimed_until) < now),
    )
    candidates = select(col(Outbox.id)).where(due).order_by(col(Outbox.id)).limit(limit)
    if engine.dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    statement = (
        update(Outbox)
        .where(col(Outbox.id).in_(candidates.scalar_subquery()))
        .values(state=OutboxState.SENDING, claimed_by=worker,
                claimed_until=now + timedelta(seconds=lease_seconds),
                attempts=col(Outbox.attempts) + 1)
        .returning(Outbox)
    )
    with Session(engine, expire_on_commit=False) as session:
        rows = session.execute(statement).scalars().all()
        session.commit()
    return sorted((claimed_mail(row) for row in rows), key=lambda mail: mail.id)


def claimed_mail(row: Outbox) -> ClaimedMail:
    """An outbox row as the delivery worker handles it."""
    return ClaimedMail(
        id=row.id or 0, key=row.key, kind=row.kind, subject_ref=row.subject_ref,
        recipients=list(row.recipients), subject=row.subject, body_text=row.body_text,
        body_html=row.body_html, attachments=list(row.attachments), headers=dict(row.headers),
        message_id=row.message_id, attempts=row.attempts, raw_message=row.raw_message,
        deferred_body=row.deferred_body, bounce_tag=row.bounce_tag)


@dataclass(frozen=True)
class SendOutcome:
    """What happened to one claimed mail."""

    mail: ClaimedMail
    status: str  # "sent" | "retry" | "failed"
    error: str | None = None
    code: int | None = None
    retry_at: datetime | None = None


def record_outcomes(
    engine: Engine, outcomes: Sequence[SendOutcome], *, worker: str, now: datetime
) -> None:
    """Persist send outcomes and their audit events in one transaction."""
    if not outcomes:
        return
    events: list[NewEvent] = []
    sent_ids: list[int] = []
    with Session(engine, expire_on_commit=False) as session:
        for outcome in outcomes:
            mail = outcome.mail
            if outcome.status == "sent":
                sent_ids.append(mail.id)
                events.append(NewEvent("mail.sent", mail.subject_ref or f"outbox:{mail.id}",
                                       details={"outbox_id": mail.id, "to": mail.recipients,
                                                "message_id": mail.message_id,
                                                "kind": mail.kind, "attempt": mail.attempts}))
                continue
            # A 250 is a fact whoever holds the lease now (see below); a retry or failure only
            # applies to our own claim, never to a row another worker has taken over.
            mine = and_(col(Outbox.id) == mail.id, col(Outbox.state) == OutboxState.SENDING,
                        col(Outbox.claimed_by) == worker)
            if outcome.status == "retry":
                session.execute(update(Outbox).where(mine).values(
                    state=OutboxState.PENDING, next_attempt_at=outcome.retry_at or now,
                    claimed_by=None, claimed_until=None, last_error=outcome.error))
            else:
                session.execute(update(Outbox).where(mine).values(
                    state=OutboxState.FAILED, claimed_until=None, last_error=outcome.error))
                events.append(NewEvent("mail.failed", mail.subject_ref or f"outbox:{mail.id}",
                                       details={"outbox_id": mail.id, "to": mail.recipients,
                                                "code": outcome.code, "error": outcome.error,
                                                "attempts": mail.attempts}))
        # Every 250 of the group in one statement: they all get the same values.
        for start in range(0, len(sent_ids), 500):
            session.execute(update(Outbox).where(
                col(Outbox.id).in_(sent_ids[start:start + 500]),
                col(Outbox.state) == OutboxState.SENDING,
            ).values(state=OutboxState.SENT, sent_at=now, claimed_until=None, last_error=None))
        append_events(session, events, now=now)
        session.commit()


def store_materialized(
    engine: Engine, rendered: Sequence[tuple[int, Materialized]], *, worker: str
) -> None:
    """Keep the bodies and bytes rendered for deferred rows we still hold, before sending.

    Every later attempt (a retry, or another worker after our lease) sends these same bytes.
    """
    if not rendered:
        return
    with Session(engine) as session:
        for outbox_id, done in rendered:
            session.execute(update(Outbox).where(
                col(Outbox.id) == outbox_id, col(Outbox.raw_message).is_(None),
                col(Outbox.state) == OutboxState.SENDING, col(Outbox.claimed_by) == worker,
            ).values(body_text=done.body_text, body_html=done.body_html,
                     raw_message=done.raw_message))
        session.commit()


def outbox_counts(engine: Engine) -> dict[str, int]:
    """Rows per outbox state, keyed by the state's value (`"sent"`)."""
    with Session(engine) as session:
        rows = session.execute(
            select(col(Outbox.state), func.count()).group_by(col(Outbox.state))).all()
    return {OutboxState(state).value: int(count) for state, count in rows}
