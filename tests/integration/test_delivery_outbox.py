"""The outbox's wire bytes and grouped outcome commits, against a real DB and a real aiosmtpd."""

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlmodel import Session, col

from db.audit import verify_chain
from db.engine import transaction
from db.outbox import SendOutcome, claim_batch, outbox_counts
from models import AuditEvent, Outbox, OutboxState
from models.outbox import NewMail
from tests.support.smtp_server import SmtpServer
from workflow.delivery import OutcomeRecorder, drain_outbox
from workflow.outbox import enqueue

NOW = datetime(2025, 10, 1, 6, 0, tzinfo=UTC)
THREAD = "<req-17.thread@bevilling.example.org>"


def new_mail(index: int, **overrides: object) -> NewMail:
    values: dict[str, object] = {
        "key": f"test:{index}", "kind": "approval", "subject_ref": f"request:R-{index}",
        "recipient": f"person{index}@kommune.example.org", "subject": f"Godkend ansøgning {index}",
        "body_text": "Svar ja eller nej – tak.", "body_html": "<p>Svar ja eller nej – tak.</p>",
    }
    values.update(overrides)
    return NewMail(**values)  # type: ignore[arg-type]


def enqueue_mails(engine: Engine, mails: list[NewMail]) -> dict[str, int]:
    with transaction(engine) as session:
        return enqueue(session, mails, now=NOW, domain="bevilling.example.org")


async def test_threading_headers_from_new_mail_go_on_the_wire(
    app_env: dict[str, str], engine: Engine, smtp_server: SmtpServer,
) -> None:
    enqueue_mails(engine, [new_mail(1, headers={
        "Reply-To": "Bevilling svar <svar+tok1@bevilling.example.org>",
        "In-Reply-To": THREAD, "References": THREAD})])
    assert (await drain_outbox(now=NOW))["sent"] == 1
    message = smtp_server.handler.received[0].message
    assert message["Reply-To"] == "Bevilling svar <svar+tok1@bevilling.example.org>"
    assert message["In-Reply-To"] == THREAD
    assert message["References"] == THREAD
    assert message["From"] == "Bevilling – Borgmesterens Afdeling <bevilling@bevilling.example.org>"
    assert message["Date"] == "Wed, 01 Oct 2025 06:00:00 +0000"
    body = message.get_body(("plain",))
    assert body is not None
    assert body["Content-Transfer-Encoding"] == "quoted-printable"
    assert body.get_content().splitlines() == ["Svar ja eller nej – tak."]
    assert smtp_server.handler.received[0].raw.isascii()


def test_enqueue_takes_the_sender_from_its_arguments(
    app_env: dict[str, str], engine: Engine,
) -> None:
    with transaction(engine) as session:
        enqueue(session, [new_mail(1)], now=NOW, domain="bevilling.example.org",
                sender="noreply@kommune.example.org", sender_name="Kommunen")
    with Session(engine) as session:
        raw = session.execute(select(col(Outbox.raw_message))).scalar_one()
    assert raw is not None
    assert b"\r\nFrom: Kommunen <noreply@kommune.example.org>\r\n" in b"\r\n" + raw


async def test_row_enqueued_before_raw_message_existed_is_still_sent(
    app_env: dict[str, str], engine: Engine, smtp_server: SmtpServer,
) -> None:
    ids = enqueue_mails(engine, [new_mail(1)])
    with transaction(engine) as session:
        session.execute(update(Outbox).values(raw_message=None))
    assert (await drain_outbox(now=NOW + timedelta(hours=1)))["sent"] == 1
    received = smtp_server.handler.received[0]
    with Session(engine) as session:
        row = session.get(Outbox, ids["test:1"])
        assert row is not None
    assert received.mail_from == f"bounce+{ids['test:1']}-{row.bounce_tag}@bevilling.example.org"
    assert received.message["Date"] == "Wed, 01 Oct 2025 06:00:00 +0000"
    assert received.message["Subject"] == "Godkend ansøgning 1"


async def test_recorder_commits_a_group_when_full_and_a_straggler_after_the_delay(
    app_env: dict[str, str], engine: Engine,
) -> None:
    enqueue_mails(engine, [new_mail(i) for i in range(5)])
    claimed = claim_batch(engine, worker="w", now=NOW, lease_seconds=60, limit=10)
    recorder = OutcomeRecorder(engine, worker="w", clock=lambda: NOW, every=3, after=0.05)
    for mail in claimed[:3]:
        recorder.add(SendOutcome(mail, "sent"))
    assert outbox_counts(engine) == {"sent": 3, "sending": 2}  # full group: committed at once
    recorder.add(SendOutcome(claimed[3], "retry", "451 later", 451, retry_at=NOW))
    assert outbox_counts(engine) == {"sent": 3, "sending": 2}
    await asyncio.sleep(0.2)
    assert outbox_counts(engine) == {"sent": 3, "sending": 1, "pending": 1}  # timed flush
    recorder.add(SendOutcome(claimed[4], "failed", "550 no such user", 550))
    recorder.flush()
    assert outbox_counts(engine) == {"sent": 3, "pending": 1, "failed": 1}
    assert recorder.flushes == 3
    with Session(engine) as session:
        kinds = list(session.execute(
            select(col(AuditEvent.kind)).order_by(col(AuditEvent.seq))).scalars())
        assert kinds == ["mail.sent"] * 3 + ["mail.failed"]
        assert verify_chain(session).ok
        retried = session.get(Outbox, claimed[3].id)
        assert retried is not None
        assert (retried.state, retried.claimed_by) == (OutboxState.PENDING, None)


async def test_recorder_leaves_rows_another_worker_took_over(
    app_env: dict[str, str], engine: Engine,
) -> None:
    enqueue_mails(engine, [new_mail(1), new_mail(2)])
    first = claim_batch(engine, worker="old", now=NOW, lease_seconds=5, limit=10)
    # The lease ran out and another worker claimed both rows.
    claim_batch(engine, worker="new", now=NOW + timedelta(seconds=10), lease_seconds=60,
                limit=10)
    recorder = OutcomeRecorder(engine, worker="old", clock=lambda: NOW, every=10)
    recorder.add(SendOutcome(first[0], "sent"))
    recorder.add(SendOutcome(first[1], "retry", "451", 451, retry_at=NOW))
    recorder.flush()
    with Session(engine) as session:
        rows = {row.key: row for row in session.execute(select(Outbox)).scalars()}
    assert rows["test:1"].state == OutboxState.SENT  # a 250 counts whoever holds the lease
    assert (rows["test:2"].state, rows["test:2"].claimed_by) == (OutboxState.SENDING, "new")
