"""Delivery through a real aiosmtpd: content, headers, faults, exactly-once."""

import base64
import re
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from db.audit import verify_chain
from mail.formatting import unbreakable
from models import AuditEvent, Outbox, OutboxState
from tests.support.factories import SEED, load_file, make_grant, write_register
from tests.support.smtp_server import SmtpServer
from workflow.deadlines import enqueue_due
from workflow.delivery import drain_outbox

NOW = datetime(2025, 10, 1, 6, 0, tzinfo=UTC)


def states(engine: Engine) -> dict[str, str]:
    with Session(engine) as session:
        return {o.recipients[0]: o.state.value for o in session.execute(select(Outbox)).scalars()}


def _part(message: EmailMessage, content_type: str) -> str:
    for part in message.walk():
        if part.get_content_type() == content_type:
            return str(part.get_content())
    raise AssertionError(f"no {content_type} part")


async def test_danish_reminder_arrives_with_both_parts_ics_and_headers(
    app_env: dict[str, str], engine: Engine, smtp_server: SmtpServer,
) -> None:
    load_file(engine, SEED)
    enqueue_due(date(2025, 10, 1), now=NOW)
    summary = await drain_outbox(now=NOW)
    assert (summary["sent"], summary["failed"]) == (4, 0)
    received = {r.rcpt_tos[0]: r for r in smtp_server.handler.received}
    domen = received["medborgerskab@kommune.example.org"]
    message = domen.message
    assert str(message["Subject"]) == (
        "[Forsinket] Bevilling udløber 31. december 2025: "
        "Domen på Pier 2 – drift og facilitering (DOMEN)")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Auto-Response-Suppress"] == "OOF, AutoReply"
    text = _part(message, "text/plain")
    html = _part(message, "text/html")
    assert "31. december 2025" in text
    # Amounts never wrap inside themselves (issue 11): no-break spaces, no break after the dash.
    assert unbreakable("1,3–2 mio. kr. årligt") in text
    assert unbreakable("500.000 kr. én gang") in text
    assert "arbejdsdage" in text
    assert "<table" in html
    assert unbreakable("1,3–2 mio. kr. årligt") in html
    ics_parts = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert len(ics_parts) == 1
    payload = ics_parts[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    ics = payload.decode()
    assert "DTSTART;VALUE=DATE:20251231" in ics
    assert ics_parts[0].get_filename() == "udloeb-DOMEN.ics"
    assert ics_parts[0].get_content_charset() == "utf-8"
    with Session(engine) as session:
        row = session.execute(select(Outbox).where(
            col(Outbox.recipients) == ["medborgerskab@kommune.example.org"])).scalar_one()
    assert str(message["Message-ID"]).strip() == row.message_id
    assert row.bounce_tag is not None
    assert re.fullmatch(r"[a-z2-7]{16}", row.bounce_tag)
    assert domen.mail_from == f"bounce+{row.id}-{row.bounce_tag}@bevilling.example.org"


async def test_html_part_escapes_grant_text(app_env: dict[str, str], engine: Engine,
                                            smtp_server: SmtpServer, tmp_path: Path) -> None:
    path = write_register(tmp_path / "r.yaml", grants=[
        make_grant(end=date(2025, 10, 8), title="<script>alert(1)</script> & co")])
    load_file(engine, path)
    enqueue_due(date(2025, 10, 1), now=NOW)
    await drain_outbox(now=NOW)
    html = _part(smtp_server.handler.received[0].message, "text/html")
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


async def test_second_delivery_sends_nothing(app_env: dict[str, str], engine: Engine,
                                             smtp_server: SmtpServer) -> None:
    load_file(engine, SEED)
    enqueue_due(date(2025, 10, 1), now=NOW)
    await drain_outbox(now=NOW)
    again = await drain_outbox(now=NOW)
    assert again["sent"] == 0
    assert len(smtp_server.handler.received) == 4


async def test_temporary_failures_then_recovery_deliver_each_exactly_once(
    app_env: dict[str, str], engine: Engine, smtp_server: SmtpServer,
) -> None:
    load_file(engine, SEED)
    enqueue_due(date(2025, 10, 1), now=NOW)
    smtp_server.handler.rcpt_faults.extend(["451 4.3.0 try later", "421 4.3.2 shutting down"])
    smtp_server.handler.data_faults.append("451 4.3.0 temporary data failure")
    first = await drain_outbox(now=NOW)
    assert first["retry"] == 3
    assert first["sent"] == 1
    # Nothing is retried before its backoff has passed.
    assert (await drain_outbox(now=NOW + timedelta(seconds=1)))["sent"] == 0
    later = await drain_outbox(now=NOW + timedelta(hours=2))
    assert later["sent"] == 3
    ids = smtp_server.handler.message_ids()
    assert len(ids) == 4
    assert len(set(ids)) == 4
    assert set(states(engine).values()) == {"sent"}


async def test_permanent_refusal_is_failed_and_audited(
    app_env: dict[str, str], engine: Engine, smtp_server: SmtpServer,
) -> None:
    load_file(engine, SEED)
    enqueue_due(date(2025, 10, 1), now=NOW)
    smtp_server.handler.refuse_addresses["erhverv@kommune.example.org"] = (
        "550 5.1.1 mailbox unavailable")
    summary = await drain_outbox(now=NOW)
    assert (summary["sent"], summary["failed"]) == (3, 1)
    assert summary["failures"][0]["to"] == "erhverv@kommune.example.org"
    assert "550" in summary["failures"][0]["error"]
    assert states(engine)["erhverv@kommune.example.org"] == OutboxState.FAILED.value
    with Session(engine) as session:
        failed = session.execute(select(AuditEvent).where(
            col(AuditEvent.kind) == "mail.failed")).scalar_one()
        assert failed.details["code"] == 550
        assert verify_chain(session).ok
    assert (await drain_outbox(now=NOW + timedelta(days=1)))["sent"] == 0


async def test_unreachable_server_is_retried_not_failed(
    app_env: dict[str, str], engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    from config.settings import get_settings
    from tests.support.smtp_server import free_port

    monkeypatch.setenv("BEVILLING_SMTP_PORT", str(free_port()))
    get_settings.cache_clear()
    load_file(engine, SEED)
    enqueue_due(date(2025, 10, 1), now=NOW)
    summary = await drain_outbox(now=NOW)
    assert (summary["sent"], summary["retry"], summary["failed"]) == (0, 4, 0)
    assert set(states(engine).values()) == {"pending"}


async def test_attempts_are_bounded(app_env: dict[str, str], engine: Engine,
                                    smtp_server: SmtpServer,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from config.settings import get_settings

    monkeypatch.setenv("BEVILLING_DELIVERY_MAX_ATTEMPTS", "2")
    get_settings.cache_clear()
    path_grants = SEED
    load_file(engine, path_grants)
    enqueue_due(date(2025, 10, 1), now=NOW)
    smtp_server.handler.refuse_addresses["erhverv@kommune.example.org"] = "451 4.7.1 greylisted"
    await drain_outbox(now=NOW)
    await drain_outbox(now=NOW + timedelta(hours=3))
    assert states(engine)["erhverv@kommune.example.org"] == "failed"


def test_ics_attachment_is_base64_in_outbox(app_env: dict[str, str], engine: Engine) -> None:
    load_file(engine, SEED)
    enqueue_due(date(2025, 10, 1), now=NOW)
    with Session(engine) as session:
        row = session.execute(select(Outbox).limit(1)).scalar_one()
    ics = base64.b64decode(row.attachments[0]["data"]).decode()
    assert ics.startswith("BEGIN:VCALENDAR\r\n")


async def test_retry_sends_the_bytes_stored_at_enqueue(
    app_env: dict[str, str], engine: Engine, smtp_server: SmtpServer, tmp_path: Path,
) -> None:
    """First DATA answered 451, second accepted: both carry exactly the bytes enqueue stored."""
    handler = smtp_server.handler
    attempts = handler.attempts
    path = write_register(tmp_path / "r.yaml", grants=[make_grant(end=date(2025, 10, 8))])
    load_file(engine, path)
    enqueue_due(date(2025, 10, 1), now=NOW)
    handler.data_faults.append("451 4.3.0 temporary data failure")
    assert (await drain_outbox(now=NOW))["retry"] == 1
    assert (await drain_outbox(now=NOW + timedelta(hours=2)))["sent"] == 1
    with Session(engine) as session:
        row = session.execute(select(Outbox)).scalar_one()
    assert row.raw_message is not None
    assert row.attempts == 2
    assert len(attempts) == 2
    assert attempts[0] == attempts[1] == row.raw_message
    assert handler.received[0].raw == row.raw_message
    assert handler.received[0].message["Date"] == "Wed, 01 Oct 2025 06:00:00 +0000"
