"""Mails whose bodies the delivery worker renders from a stored template context.

A decision stores the next approver's mail in the outbox in its own transaction. Rendering
the bodies (Jinja2, ~0.15 ms) and writing the MIME bytes (the email package's generator, ~10 ms)
there would be most of a decision, holding the request's lock meanwhile. So approval and
outcome mails carry their template context instead (`Outbox.deferred_body`): JSON, fixed at
enqueue, with everything already decided — names, amounts as text, the signed link, the
deadline. The delivery worker renders it once before the first attempt and stores the result in
the row, so every attempt sends the same bytes, exactly those the enqueue-time path would have
built (same Date, Message-ID and boundaries).
"""

from datetime import datetime
from pathlib import Path
from typing import Any

from domain.errors import DeliveryError
from mail.mime import compose_message, wire_bytes
from mail.render import render_bodies
from models.outbox import ClaimedMail, Materialized


class DeferredBodyError(DeliveryError):
    """A stored template context cannot be rendered (bad shape, missing template or value)."""


def deferred_body(template: str, *, language: str, context: dict[str, Any]) -> dict[str, Any]:
    """What `Outbox.deferred_body` stores: JSON-ready, rendered later by `materialize`."""
    return {"template": template, "language": language, "context": context}


def materialize(mail: ClaimedMail, *, templates_dir: Path) -> Materialized:
    """Render a deferred mail's bodies and build its bytes; DeferredBodyError if it cannot.

    The sender is the one stored at enqueue, as the enqueue-time path would have used it.
    """
    spec = mail.deferred_body
    if not isinstance(spec, dict) or not isinstance(spec.get("context"), dict):
        raise DeferredBodyError(f"outbox {mail.id}: no template context stored")
    enqueued = mail.headers.get("Date-Enqueued")
    if not enqueued:
        raise DeferredBodyError(f"outbox {mail.id}: no Date-Enqueued header")
    try:
        text, html = render_bodies(str(spec.get("template")), language=str(spec.get("language")),
                                   context=spec["context"], templates_dir=templates_dir)
    except Exception as exc:  # a template error must fail this mail, not the delivery run
        raise DeferredBodyError(f"outbox {mail.id}: {type(exc).__name__}: {exc}") from exc
    raw = wire_bytes(compose_message(
        mail.recipients, subject=mail.subject, message_id=mail.message_id,
        ref=mail.subject_ref or mail.key, body_text=text, body_html=html,
        attachments=mail.attachments, headers=mail.headers, sender=str(spec.get("sender")),
        sender_name=str(spec.get("sender_name")), date=datetime.fromisoformat(enqueued)))
    return Materialized(text, html, raw)
