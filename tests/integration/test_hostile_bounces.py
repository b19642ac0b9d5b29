"""Forged delivery reports never re-route a step: through `ingest_raw` and the SMTP receiver.

A report is believed only when it comes to `bounce+<id>-<tag>@` with the row's random tag, and
names the row's Message-ID and recipient. Everything else is recorded and changes nothing.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import aiosmtplib
import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from config.settings import Settings
from models import AuditEvent, InboundMessage
from receiver.smtp_server import start_inbound_server
from tests.support.approvals import (
    DOMAIN,
    SUBMITTED,
    bounce_address,
    dsn_for,
    ingest,
    load_seed,
    make_settings,
    outbox,
    steps_of,
    submit_request,
)
from tests.support.smtp_server import free_port

KEY = "STS-2027"
KAREN = "karen.holm@kommune.example.org"


@dataclass(frozen=True)
class Live:
    engine: Engine
    settings: Settings
    outbox_id: int


@pytest.fixture
def live(engine: Engine, database_url: str) -> Live:
    """STS-2027 submitted: Karen's step pending, her approval mail in the outbox."""
    settings = make_settings(database_url)
    load_seed(engine)
    submit_request(engine, KEY, settings=settings, now=SUBMITTED)
    approval = outbox(engine, kind="approval_request")[0]
    assert approval.recipient == KAREN
    return Live(engine, settings, approval.id)


def _untouched(live: Live, mails_before: int) -> None:
    assert [s.state for s in steps_of(live.engine, KEY)] == ["pending"]
    assert len(outbox(live.engine)) == mails_before


def _forgeries(live: Live) -> dict[str, tuple[bytes, str, str]]:
    """name → (raw report, envelope recipient, expected detail)."""
    genuine = bounce_address(live.engine, live.outbox_id)
    untagged = f"bounce+{live.outbox_id}@{DOMAIN}"
    wrong_tag = f"bounce+{live.outbox_id}-{'a' * 16}@{DOMAIN}"
    forged = {
        "sequential id, no tag": (
            dsn_for(live.engine, live.outbox_id, address=untagged), untagged, "no tag"),
        "guessed tag": (
            dsn_for(live.engine, live.outbox_id, address=wrong_tag), wrong_tag, "tag"),
        "right address, another message": (
            dsn_for(live.engine, live.outbox_id, original_id="<ob-17.k3f9@bevilling.example.org>"),
            genuine, "Message-ID"),
        "right address and message, another recipient": (
            dsn_for(live.engine, live.outbox_id).replace(
                b"karen.holm@kommune.example.org", b"forger@x.example.org"),
            genuine, "recipient"),
    }
    # Each report its own Message-ID (the dedupe would otherwise drop all but the first).
    return {name: (raw.replace(b"4dQ0vS1Hk2z9sWm@", f"forged{n}@".encode()), envelope, detail)
            for n, (name, (raw, envelope, detail)) in enumerate(forged.items())}


@pytest.mark.parametrize("name", ["sequential id, no tag", "guessed tag",
                                  "right address, another message",
                                  "right address and message, another recipient"])
def test_forged_report_through_ingestion_is_recorded_and_changes_nothing(
    live: Live, name: str,
) -> None:
    raw, envelope, detail = _forgeries(live)[name]
    before = len(outbox(live.engine))
    result = ingest(live.engine, raw, settings=live.settings, now=SUBMITTED,
                    envelope=(envelope,))
    assert result.outcome == "refused-bounce", result
    assert detail.lower() in result.detail.lower()
    _untouched(live, before)
    with Session(live.engine) as session:
        row = session.execute(select(InboundMessage)).scalar_one()
        events = session.execute(select(col(AuditEvent.kind))).scalars().all()
    assert row.outcome == "refused-bounce"
    assert "mail.received.refused-bounce" in events
    assert not any(kind.startswith("mail.bounced") for kind in events)


def test_our_own_report_still_escalates(live: Live) -> None:
    raw = dsn_for(live.engine, live.outbox_id)
    result = ingest(live.engine, raw, settings=live.settings, now=SUBMITTED,
                    envelope=(bounce_address(live.engine, live.outbox_id),))
    assert result.outcome == "bounce-hard", result
    assert [s.state for s in steps_of(live.engine, KEY)] == ["void", "pending"]


@pytest.fixture
def receiver(live: Live) -> Iterator[tuple[str, int]]:
    port = free_port()
    controller = start_inbound_server(live.engine, live.settings, host="127.0.0.1", port=port,
                                      timeout_seconds=10)
    try:
        yield "127.0.0.1", port
    finally:
        controller.stop()


async def _smtp(address: tuple[str, int], raw: bytes, rcpt: str) -> int:
    """The receiver's answer: 250 after DATA, or the code it refused the recipient with."""
    try:
        await aiosmtplib.send(raw, hostname=address[0], port=address[1],
                              sender="MAILER-DAEMON@mx.bevilling.example.org",
                              recipients=[rcpt], timeout=10)
    except aiosmtplib.SMTPRecipientsRefused as refused:
        return refused.recipients[0].code
    return 250


async def test_forged_reports_through_the_smtp_receiver_change_nothing(
    live: Live, receiver: tuple[str, int],
) -> None:
    before = len(outbox(live.engine))
    for name, (raw, envelope, _) in _forgeries(live).items():
        assert await _smtp(receiver, raw, envelope) in (250, 550), name
    _untouched(live, before)
    assert await _smtp(receiver, dsn_for(live.engine, live.outbox_id),
                       bounce_address(live.engine, live.outbox_id)) == 250
    assert [s.state for s in steps_of(live.engine, KEY)] == ["void", "pending"]
