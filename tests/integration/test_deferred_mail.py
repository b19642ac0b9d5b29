"""Approval mails rendered by the delivery worker (`mail.deferred`): same bytes, stored once."""


import pytest
from sqlalchemy import Engine, select, update
from sqlmodel import Session, col

from config.settings import get_settings
from db.outbox import claimed_mail
from mail.deferred import DeferredBodyError, materialize
from mail.mime import compose_message, wire_bytes
from mail.render import render_mail
from models import Outbox, OutboxState
from tests.support.approvals import SUBMITTED, load_seed, submit_request
from tests.support.smtp_server import SmtpServer
from workflow.delivery import drain_outbox

KEY = "DOMEN-DRIFT"


def _approval_row(engine: Engine) -> Outbox:
    with Session(engine) as session:
        row: Outbox = session.execute(select(Outbox).where(
            col(Outbox.kind) == "approval_request")).scalar_one()
        return row


@pytest.fixture
def submitted(app_env: dict[str, str], engine: Engine) -> Outbox:
    load_seed(engine)
    submit_request(engine, KEY, settings=get_settings())
    return _approval_row(engine)


def test_a_decision_stores_the_context_not_the_bytes(submitted: Outbox) -> None:
    assert submitted.raw_message is None
    assert (submitted.body_text, submitted.body_html) == ("", "")
    assert submitted.subject.startswith("Godkendelse: ")
    assert submitted.deferred_body is not None
    assert submitted.deferred_body["template"] == "approval_request"
    assert submitted.deferred_body["context"]["request"]["key"] == KEY


def test_rendered_bytes_are_those_the_enqueue_time_path_builds(submitted: Outbox) -> None:
    settings = get_settings()
    done = materialize(claimed_mail(submitted), templates_dir=settings.templates_dir)
    spec = submitted.deferred_body or {}
    eager = render_mail(spec["template"], language=spec["language"], context=spec["context"],
                        templates_dir=settings.templates_dir)
    assert eager.subject == submitted.subject
    assert (done.body_text, done.body_html) == (eager.text, eager.html)
    assert "GODKEND" in done.body_text
    assert done.raw_message == wire_bytes(compose_message(
        submitted.recipients, subject=eager.subject, message_id=submitted.message_id,
        ref=submitted.subject_ref, body_text=eager.text, body_html=eager.html, attachments=[],
        headers=submitted.headers, sender=spec["sender"], sender_name=spec["sender_name"],
        date=SUBMITTED))


async def test_the_worker_stores_what_it_rendered_and_a_retry_sends_it_again(
    submitted: Outbox, engine: Engine, smtp_server: SmtpServer,
) -> None:
    handler = smtp_server.handler
    attempts = handler.attempts
    handler.data_faults.append("451 4.3.0 temporary data failure")
    assert (await drain_outbox(now=SUBMITTED))["retry"] == 1
    stored = _approval_row(engine)
    assert stored.raw_message is not None  # kept before the first attempt, failed or not
    assert "GODKEND" in stored.body_text
    assert (await drain_outbox(now=SUBMITTED.replace(hour=23)))["sent"] == 1
    assert attempts == [stored.raw_message, stored.raw_message]
    assert handler.received[0].raw == stored.raw_message
    assert handler.received[0].message["Reply-To"] == stored.headers["Reply-To"]


async def test_a_context_that_cannot_be_rendered_fails_that_mail_only(
    submitted: Outbox, engine: Engine, smtp_server: SmtpServer,
) -> None:
    broken = {**(submitted.deferred_body or {}), "context": {"lang": "da"}}  # no request etc.
    with Session(engine) as session:
        session.execute(update(Outbox).where(col(Outbox.id) == submitted.id)
                        .values(deferred_body=broken))
        session.commit()
    with pytest.raises(DeferredBodyError, match="UndefinedError"):
        materialize(claimed_mail(_approval_row(engine)),
                    templates_dir=get_settings().templates_dir)
    summary = await drain_outbox(now=SUBMITTED)
    assert (summary["sent"], summary["failed"]) == (0, 1)
    assert "cannot render the mail" in summary["failures"][0]["error"]
    row = _approval_row(engine)
    assert row.state is OutboxState.FAILED
    assert row.raw_message is None
    assert smtp_server.handler.received == []
