"""A consultation's "no" reads as a consultation answer, never as a rejection, in the outcome
mail (real replies through `ingest_raw`)."""

from datetime import timedelta

from sqlalchemy import Engine

from config.settings import get_settings
from tests.support.approvals import (
    SUBMITTED,
    approval_mail_for,
    build_reply,
    ingest,
    load_seed,
    outbox,
    parse_message,
    request_state,
    steps_of,
    submit_request,
)
from tests.support.smtp_server import SmtpServer

KEY = "TEMA-CYBER"


def test_it_security_against_reads_as_a_consultation_under_an_approval(
    app_env: dict[str, str], engine: Engine, smtp_server: SmtpServer,
) -> None:
    load_seed(engine)
    submit_request(engine, KEY, settings=get_settings())
    now = SUBMITTED
    for _ in range(10):
        pending = [s for s in steps_of(engine, KEY) if s.state == "pending"]
        if not pending:
            break
        step = pending[0]
        now += timedelta(minutes=5)
        text = "AFVIS\nVi mangler en risikovurdering." if step.stage == "it-sikkerhed" \
            else "GODKEND"
        mail = parse_message(approval_mail_for(engine, step.id).raw)
        raw = build_reply(mail, sender=step.approver, text=text, date=now)
        assert ingest(engine, raw, settings=get_settings(), now=now).outcome == "decision"
    assert request_state(engine, KEY) == "approved"
    outcome = outbox(engine, kind="approval_outcome")
    assert len(outcome) == 1
    body = outcome[0].body_text
    assert "er godkendt" in body
    assert "høringssvar: imod" in body
    assert "afvist" not in body
