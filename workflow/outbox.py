"""Putting mail in the outbox: wire bytes built once, at enqueue, in the caller's transaction."""

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sqlmodel import Session

from config.settings import get_settings
from db.outbox import claimed_mail, insert_mails
from mail.deferred import materialize
from mail.mime import compose_message, wire_bytes
from models import Outbox
from models.outbox import NewMail


def enqueue(
    session: Session, mails: Sequence[NewMail], *, now: datetime, domain: str,
    sender: str | None = None, sender_name: str | None = None,
) -> dict[str, int]:
    """Insert mails unless their key exists; returns key → outbox id for every given key.

    Date = `now`; `sender` and `sender_name` default to the `mail_from` / `mail_from_name`
    settings. Mails with a `deferred_body` are rendered later by the delivery worker.
    """
    if not mails:
        return {}
    if sender is None or sender_name is None:
        settings = get_settings()
        sender = settings.mail_from if sender is None else sender
        sender_name = settings.mail_from_name if sender_name is None else sender_name
    from_address, from_name = sender, sender_name

    def wire(mail: NewMail, message_id: str) -> bytes:
        return wire_bytes(compose_message(
            [mail.recipient], subject=mail.subject, message_id=message_id,
            ref=mail.subject_ref or mail.key, body_text=mail.body_text,
            body_html=mail.body_html, attachments=mail.attachments, headers=mail.headers,
            sender=from_address, sender_name=from_name, date=now))

    return insert_mails(session, mails, now=now, domain=domain, wire=wire,
                        sender={"sender": from_address, "sender_name": from_name})


def stored_message(row: Outbox, *, templates_dir: Path) -> tuple[str, bytes]:
    """(text body, wire bytes) of a row: as stored, or rendered now if it is still deferred.

    For readers outside delivery (tests, inspection); nothing is written.
    """
    if row.raw_message is None and row.deferred_body is not None:
        done = materialize(claimed_mail(row), templates_dir=templates_dir)
        return done.body_text, done.raw_message
    return row.body_text, bytes(row.raw_message or b"")
