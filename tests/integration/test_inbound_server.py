"""`bevilling inbound serve`'s receiver over real SMTP: aiosmtpd on 127.0.0.1, aiosmtplib client."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib
import pytest
from aiosmtplib import SMTPResponse
from pydantic import SecretStr
from sqlalchemy import Engine, func, select, text
from sqlmodel import Session, col

from config.settings import Settings
from db.engine import transaction
from loading.register_file import read_register
from mail.mime import envelope_sender
from models import ApprovalStep, InboundMessage, Outbox
from receiver.smtp_server import start_inbound_server
from tests.support.factories import SEED
from tests.support.smtp_server import free_port
from workflow.context import make_context
from workflow.register_load import apply_register
from workflow.request_load import apply_requests
from workflow.routing import submit

REQUEST = "DOMEN-DRIFT"  # recurring: afdelingschef, then stadsdirektør, then borgmester
FIRST_APPROVER = "karen.holm@kommune.example.org"
NEXT_APPROVER = "stadsdirektoer@kommune.example.org"
SECRET = "test-secret-not-for-production"


@dataclass(frozen=True)
class Receiver:
    host: str
    port: int
    settings: Settings


@dataclass(frozen=True)
class ApprovalMail:
    reply_to: str
    message_id: str
    subject: str


def settings_for(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"database_url": database_url,
                                 "token_secret": SecretStr(SECRET)}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def submitted_request(engine: Engine, settings: Settings) -> ApprovalMail:
    """Load the seed register, submit the request and return the first approver's mail."""
    now = datetime.now(UTC)
    ctx = make_context(settings, now=now)
    register = read_register(SEED)
    with transaction(engine) as session:
        apply_register(session, register, default_offsets=settings.reminder_offsets,
                       calendar=ctx.calendar, now=now)
        apply_requests(session, register, now=now)
    with transaction(engine) as session:
        submit(session, REQUEST, ctx=ctx)
    with Session(engine) as session:
        rows = [row for row in session.execute(select(Outbox)).scalars()
                if row.recipients == [FIRST_APPROVER] and "Reply-To" in row.headers]
    assert len(rows) == 1, rows
    return ApprovalMail(rows[0].headers["Reply-To"], rows[0].message_id, rows[0].subject)


def reply(mail: ApprovalMail, *, sender: str = FIRST_APPROVER,
          body: str = "GODKEND\n\nmed venlig hilsen", to: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to or mail.reply_to
    message["Subject"] = f"SV: {mail.subject}"
    message["Message-ID"] = make_msgid(domain="kommune.example.org")
    message["In-Reply-To"] = mail.message_id
    message["References"] = mail.message_id
    message.set_content(body)
    return message


@pytest.fixture
def receiver(engine: Engine, database_url: str) -> Iterator[Receiver]:
    settings = settings_for(database_url, inbound_max_bytes=20_000)
    port = free_port()
    controller = start_inbound_server(engine, settings, host="127.0.0.1", port=port,
                                      timeout_seconds=10)
    try:
        yield Receiver("127.0.0.1", port, settings)
    finally:
        controller.stop()


async def send(receiver: Receiver, message: EmailMessage, *, sender: str,
               recipients: list[str]) -> tuple[dict[str, SMTPResponse], str]:
    return await aiosmtplib.send(message, hostname=receiver.host, port=receiver.port,
                                 sender=sender, recipients=recipients, timeout=10)


def step_states(engine: Engine) -> list[tuple[str, str]]:
    with Session(engine) as session:
        rows = session.execute(select(ApprovalStep).order_by(col(ApprovalStep.id))).scalars()
        return [(row.stage_key, row.state) for row in rows]


def outbox_recipients(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return [r for row in session.execute(select(Outbox).order_by(col(Outbox.id))).scalars()
                for r in row.recipients]


def inbound_outcomes(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.execute(select(col(InboundMessage.outcome)).order_by(
            col(InboundMessage.id))).scalars())


async def test_unknown_recipient_is_refused_at_rcpt(receiver: Receiver, engine: Engine) -> None:
    message = EmailMessage()
    message["From"] = FIRST_APPROVER
    message["Subject"] = "hej"
    message.set_content("hej")
    domain = receiver.settings.mail_domain
    for address in (f"postmaster@{domain}", f"approvals+short@{domain}",
                    f"approvals+{'a' * 26}@other.example.org", f"bounce+12x@{domain}"):
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as caught:
            await send(receiver, message, sender=FIRST_APPROVER, recipients=[address])
        refusal = caught.value.recipients[0]
        assert (refusal.code, refusal.message) == (550, "5.1.1 unknown recipient"), address
    assert inbound_outcomes(engine) == []


async def test_issued_token_and_verp_addresses_pass_rcpt_in_any_case(receiver: Receiver,
                                                                    engine: Engine) -> None:
    mail = submitted_request(engine, receiver.settings)
    with Session(engine) as session:
        row = session.execute(select(Outbox).where(
            col(Outbox.message_id) == mail.message_id)).scalar_one()
    bounce = envelope_sender(row.id or 0, tag=row.bounce_tag, domain=receiver.settings.mail_domain)
    message = EmailMessage()
    message["From"] = "someone@example.org"
    message["Message-ID"] = "<rcpt-case@example.org>"
    message["Subject"] = "hej"
    message.set_content("hej")
    refused, answer = await send(receiver, message, sender="someone@example.org",
                                 recipients=[mail.reply_to.upper(), bounce.upper()])
    assert refused == {}
    assert answer.startswith("2.0.0")
    assert inbound_outcomes(engine) == ["refused-sender"]


async def test_never_issued_tokens_and_bounce_tags_are_refused_at_rcpt(
    receiver: Receiver, engine: Engine,
) -> None:
    mail = submitted_request(engine, receiver.settings)
    with Session(engine) as session:
        row = session.execute(select(Outbox).where(
            col(Outbox.message_id) == mail.message_id)).scalar_one()
    domain = receiver.settings.mail_domain
    message = EmailMessage()
    message["From"] = FIRST_APPROVER
    message["Subject"] = "hej"
    message.set_content("GODKEND")
    never_issued = (f"approvals+{'a' * 26}@{domain}", f"bounce+{row.id}@{domain}",
                    f"bounce+{row.id}-{'a' * 16}@{domain}",
                    f"bounce+{(row.id or 0) + 1000}@{domain}")
    for address in never_issued:
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as caught:
            await send(receiver, message, sender=FIRST_APPROVER, recipients=[address])
        refusal = caught.value.recipients[0]
        assert (refusal.code, refusal.message) == (550, "5.1.1 unknown recipient"), address
    assert inbound_outcomes(engine) == []


async def test_oversize_message_is_refused(receiver: Receiver, engine: Engine) -> None:
    mail = submitted_request(engine, receiver.settings)
    message = reply(mail, body="GODKEND\n" + "x" * 40_000)
    with pytest.raises((aiosmtplib.SMTPDataError, aiosmtplib.SMTPSenderRefused)) as caught:
        await send(receiver, message, sender=FIRST_APPROVER, recipients=[mail.reply_to])
    assert caught.value.code == 552
    assert inbound_outcomes(engine) == []
    assert ("afdelingschef", "pending") in step_states(engine)


async def test_reply_decides_and_a_duplicate_changes_nothing(receiver: Receiver,
                                                            engine: Engine) -> None:
    mail = submitted_request(engine, receiver.settings)
    assert NEXT_APPROVER not in outbox_recipients(engine)
    message = reply(mail)

    refused, answer = await send(receiver, message, sender=FIRST_APPROVER,
                                 recipients=[mail.reply_to.upper()])

    assert refused == {}
    assert answer.startswith("2.0.0")
    assert inbound_outcomes(engine) == ["decision"]
    assert ("afdelingschef", "approved") in step_states(engine)
    assert ("stadsdirektoer", "pending") in step_states(engine)
    after_first = outbox_recipients(engine)
    assert after_first.count(NEXT_APPROVER) == 1

    refused, answer = await send(receiver, message, sender=FIRST_APPROVER,
                                 recipients=[mail.reply_to])

    assert refused == {}
    assert inbound_outcomes(engine) == ["decision"]  # the duplicate is not even recorded
    assert outbox_recipients(engine) == after_first
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(InboundMessage)).scalar() == 1


async def test_reply_from_another_address_decides_nothing(receiver: Receiver,
                                                          engine: Engine) -> None:
    mail = submitted_request(engine, receiver.settings)
    before = step_states(engine)
    message = reply(mail, sender="forwarded.to@kommune.example.org")

    refused, _ = await send(receiver, message, sender="forwarded.to@kommune.example.org",
                            recipients=[mail.reply_to])

    assert refused == {}
    assert inbound_outcomes(engine) == ["refused-sender"]
    assert step_states(engine) == before
    assert NEXT_APPROVER not in outbox_recipients(engine)


async def test_a_database_failure_answers_451_so_the_sender_retries(
    receiver: Receiver, engine: Engine,
) -> None:
    mail = submitted_request(engine, receiver.settings)
    message = reply(mail)
    with engine.begin() as connection:  # a real failure: the table the dedupe writes is gone
        connection.execute(text("ALTER TABLE inbound_message RENAME TO inbound_message_away"))
    try:
        with pytest.raises(aiosmtplib.SMTPDataError) as caught:
            await send(receiver, message, sender=FIRST_APPROVER, recipients=[mail.reply_to])
    finally:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE inbound_message_away RENAME TO inbound_message"))
    assert caught.value.code == 451
    assert ("afdelingschef", "pending") in step_states(engine)

    refused, _ = await send(receiver, message, sender=FIRST_APPROVER, recipients=[mail.reply_to])

    assert refused == {}
    assert inbound_outcomes(engine) == ["decision"]
