"""End to end: seed → submit → real SMTP → approver's reply through `ingest_raw` → next approver.

Every reply is built from what aiosmtpd received (Reply-To, Message-ID, quoted text), so the
token travels the way it does in production. Runs on SQLite and PostgreSQL.
"""

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from config.settings import get_settings
from db.audit import verify_chain
from db.engine import transaction
from models import ApprovalStep, Delegation, InboundMessage, Person
from tests.support.approvals import (
    DOMAIN,
    SECRET,
    SUBMITTED,
    approval_mail_for,
    bounce_address,
    build_reply,
    corpus_bytes,
    dsn_for,
    ingest,
    load_requests,
    load_seed,
    outbox,
    pending_step,
    plain_text,
    request_state,
    steps_of,
    submit_request,
    token_in,
)
from tests.support.approvals import Flow as BaseFlow
from tests.support.factories import SEED
from tests.support.smtp_server import SmtpServer
from workflow.context import make_context
from workflow.request_json import request_by_key
from workflow.routing import resubmit_revised

KAREN = "karen.holm@kommune.example.org"
DIRECTOR = "stadsdirektoer@kommune.example.org"
MAYOR = "borgmester@kommune.example.org"
VICE = "vicedirektoer@kommune.example.org"
REQUESTER = "medborgerskab@kommune.example.org"
COLLEAGUE = "okonomi@kommune.example.org"
KEY = "DOMEN-DRIFT"
STEP_KEYS = {"stage", "approver_email", "on_behalf_of", "state", "decision", "comment", "channel",
             "decided_at"}


@dataclass
class Flow(BaseFlow):
    """The shared test system, plus this file's request as `requests show --json` has it."""

    def document(self) -> dict[str, Any]:
        with Session(self.engine) as session:
            found = request_by_key(session, KEY)
        assert found is not None
        return found


@pytest.fixture
def flow(app_env: dict[str, str], engine: Engine, smtp_server: SmtpServer) -> Flow:
    load_seed(engine)
    return Flow(engine, get_settings(), smtp_server)


def text_of(message: EmailMessage) -> str:
    """Plain text with Babel's non-breaking spaces made ordinary."""
    text = plain_text(message).replace("\r\n", "\n")
    return text.replace("\u00a0", " ").replace("\u202f", " ").replace("\u2060", "")


def only(messages: list[EmailMessage]) -> EmailMessage:
    assert len(messages) == 1, [str(m["Subject"]) for m in messages]
    return messages[0]


def approve_first_stage(flow: Flow) -> EmailMessage:
    submit_request(flow.engine, KEY, settings=flow.settings, now=flow.now)
    flow.deliver()
    return only(flow.inbox(KAREN))


def test_domen_drift_is_approved_twice_then_rejected_by_the_mayor(flow: Flow) -> None:
    submitted = submit_request(flow.engine, KEY, settings=flow.settings, now=flow.now)
    assert submitted.mailed_to == (KAREN,)
    assert flow.deliver()["sent"] == 1
    first = only(flow.inbox(KAREN))
    text = text_of(first)
    assert "Skriv GODKEND eller AFVIS på første linje" in text
    assert re.search(r"2026\s+1,3–2 mio\. kr\.\s+løbende", text), text
    assert text.count("1,3–2 mio. kr.  løbende") == 4
    assert "Svarfrist: 8. oktober 2025" in text  # Wed 1 Oct + 5 working days
    assert re.fullmatch(rf"approvals\+[a-z2-7]{{26}}@{re.escape(DOMAIN)}", str(first["Reply-To"]))
    assert first["Auto-Submitted"] == "auto-generated"
    assert re.search(r"http://127\.0\.0\.1:8000/confirm/[\w.-]+\.[\w-]+\.[\w-]+", text)
    assert "- ingen endnu" in text

    assert flow.reply(first, sender=KAREN, text="GODKEND") == "decision"
    flow.deliver()
    second = only(flow.inbox(DIRECTOR))
    text = text_of(second)
    assert "Trin: Stadsdirektør" in text
    assert "Allerede godkendt:\n- Afdelingschef: Karen Holm" in text
    assert token_in(str(second["Reply-To"])) != token_in(str(first["Reply-To"]))

    assert flow.reply(second, sender=DIRECTOR, text="Godkendt.") == "decision"
    flow.deliver()
    third = only(flow.inbox(MAYOR))
    assert "- Stadsdirektør: Stadsdirektøren" in text_of(third)
    assert request_state(flow.engine, KEY) == "pending"

    assert flow.reply(third, sender=MAYOR, text="AFVIS for dyrt") == "decision"
    assert request_state(flow.engine, KEY) == "rejected"
    flow.deliver()
    outcome = text_of(only(flow.inbox(REQUESTER)))
    assert "er afvist" in outcome
    assert "- Afdelingschef: Karen Holm – godkendt" in outcome
    assert "- Borgmester: Borgmesteren – afvist (\"for dyrt\")" in outcome

    document = flow.document()
    assert {k: document[k] for k in ("key", "state", "version")} == {
        "key": KEY, "state": "rejected", "version": submitted.version}
    assert document["title"] == "Domen – ordinær drift og vedligehold"
    assert [(s["stage"], s["approver_email"], s["decision"], s["channel"], s["comment"])
            for s in document["steps"]] == [
        ("afdelingschef", KAREN, "approve", "reply", ""),
        ("stadsdirektoer", DIRECTOR, "approve", "reply", ""),
        ("borgmester", MAYOR, "reject", "reply", "for dyrt")]
    for step in document["steps"]:
        assert set(step) >= STEP_KEYS
        assert step["on_behalf_of"] is None
        assert datetime.fromisoformat(step["decided_at"]).tzinfo is not None
    with Session(flow.engine) as session:
        assert verify_chain(session).ok


def test_replies_that_change_nothing(flow: Flow) -> None:
    first = approve_first_stage(flow)
    token = token_in(str(first["Reply-To"]))
    approval = build_reply(first, sender=KAREN, text="GODKEND", date=flow.now)
    assert ingest(flow.engine, approval, settings=flow.settings, now=flow.tick()).outcome \
        == "decision"
    flow.deliver()
    before, mails_before = flow.document(), len(outbox(flow.engine))

    # The same message again (duplicate delivery, IMAP re-fetch): recorded once, nothing sent.
    assert ingest(flow.engine, approval, settings=flow.settings, now=flow.tick()).outcome \
        == "duplicate"
    # An out-of-office answer: ignored silently.
    ooo = corpus_bytes("out-of-office-da.eml", token=token)
    assert ingest(flow.engine, ooo, settings=flow.settings, now=flow.tick()).outcome \
        == "ignored-automated"
    assert len(outbox(flow.engine)) == mails_before
    # A second answer after the step was decided: one explanation, no change.
    assert flow.reply(first, sender=KAREN, text="AFVIS alligevel") == "refused-decided"
    assert flow.document() == before
    flow.deliver()
    explanation = flow.inbox(KAREN)[-1]
    assert "allerede afgjort" in text_of(explanation)
    assert "Auto-Submitted" in explanation
    assert explanation.get("Reply-To") is None  # nothing to answer with


def test_foreign_senders_are_refused_and_the_approver_told_once_each(flow: Flow) -> None:
    first = approve_first_stage(flow)
    token = token_in(str(first["Reply-To"]))
    step = pending_step(flow.engine, KEY, KAREN)
    before = flow.document()

    forwarded = corpus_bytes("forwarded.eml", token=token)
    result = ingest(flow.engine, forwarded, settings=flow.settings, now=flow.tick())
    assert (result.outcome, result.step_id) == ("refused-sender", step.id)
    flow.deliver()
    notice = only(flow.inbox(KAREN)[1:])
    assert "jens.vestergaard@kommune.example.org" in text_of(notice)
    assert flow.inbox("jens.vestergaard@kommune.example.org") == []

    assert flow.reply(first, sender=COLLEAGUE, text="GODKEND") == "refused-sender"
    flow.deliver()
    assert len(flow.inbox(KAREN)) == 3
    assert flow.inbox(COLLEAGUE) == []
    assert flow.document() == before
    assert pending_step(flow.engine, KEY, KAREN) == step
    # The approver herself still decides afterwards.
    assert flow.reply(first, sender=KAREN, text="GODKEND") == "decision"


def test_spoofed_from_is_quarantined_when_our_mta_says_dmarc_failed(
    flow: Flow, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BEVILLING_TRUSTED_AUTHSERV_IDS", '["mx.bevilling.example.org"]')
    get_settings.cache_clear()
    flow.settings = get_settings()
    first = approve_first_stage(flow)
    spoofed = corpus_bytes("spoofed-from.eml", token=token_in(str(first["Reply-To"])))
    result = ingest(flow.engine, spoofed, settings=flow.settings, now=flow.tick())
    assert result.outcome == "quarantined-authentication"
    assert pending_step(flow.engine, KEY, KAREN).state == "pending"


def test_ambiguous_replies_get_at_most_two_clarifying_mails(flow: Flow) -> None:
    first = approve_first_stage(flow)
    texts = ["Jeg kan ikke godkende det her", "GODKEND men AFVIS posten for 2029", "Ja tak"]
    assert [flow.reply(first, sender=KAREN, text=t) for t in texts] == [
        "quarantined-ambiguous"] * 3
    flow.deliver()
    clarifying = flow.inbox(KAREN)[1:]
    assert len(clarifying) == 2
    assert all("Intet er registreret" in text_of(m) for m in clarifying)
    with Session(flow.engine) as session:
        quarantined = session.execute(select(InboundMessage).where(
            col(InboundMessage.quarantined))).scalars().all()
    assert len(quarantined) == 3
    assert all(row.raw for row in quarantined)
    assert pending_step(flow.engine, KEY, KAREN).state == "pending"
    assert flow.reply(first, sender=KAREN, text="GODKEND") == "decision"


def test_reply_after_expiry_is_refused(flow: Flow) -> None:
    first = approve_first_stage(flow)
    flow.now = SUBMITTED + timedelta(days=flow.settings.token_valid_days, minutes=1)
    assert flow.reply(first, sender=KAREN, text="GODKEND") == "refused-expired"
    assert pending_step(flow.engine, KEY, KAREN).state == "pending"
    flow.deliver()
    assert "udløbet" in text_of(flow.inbox(KAREN)[-1])


def revised_seed(tmp: Path) -> Path:
    """The seed with DOMEN-DRIFT's 2026 amount raised from 1.3 to 1.5 million."""
    document = yaml.safe_load(SEED.read_text(encoding="utf-8"))
    request = next(r for r in document["requests"] if r["key"] == KEY)
    request["lines"][0]["amount"] = 1_500_000
    path = tmp / "revised.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_reply_to_an_old_version_is_refused_and_the_new_mail_lists_the_change(
    flow: Flow, tmp_path: Path,
) -> None:
    first = approve_first_stage(flow)
    assert flow.reply(first, sender=KAREN, text="GODKEND") == "decision"
    flow.deliver()
    old_director_mail = only(flow.inbox(DIRECTOR))
    old_version = flow.document()["version"]

    report = load_requests(flow.engine, path=revised_seed(tmp_path), now=flow.tick())
    assert len(report.revised_pending_ids) == 1
    ctx = make_context(flow.settings, now=flow.tick(), secret=SECRET)
    with transaction(flow.engine) as session:
        resubmitted = resubmit_revised(session, report.revised_pending_ids[0], ctx=ctx)
    assert resubmitted.mailed_to == (KAREN,)
    assert resubmitted.version != old_version

    assert flow.reply(old_director_mail, sender=DIRECTOR, text="GODKEND") == "refused-outdated"
    assert flow.reply(first, sender=KAREN, text="AFVIS") == "refused-outdated"
    steps = steps_of(flow.engine, KEY)
    # issue 10: a replaced version reads superseded, its approval included (was approved/void/void)
    assert [s.state for s in steps if s.version == old_version] == ["superseded"] * 3
    assert [s.state for s in steps if s.version != old_version] == [
        "pending", "waiting", "waiting"]
    flow.deliver()
    # Karen now also has the notice about her reply to the old version; the two arrive over
    # separate connections, in either order.
    new_mail = only([m for m in flow.inbox(KAREN)
                     if m["Reply-To"] and str(m["Reply-To"]) != str(first["Reply-To"])])
    text = text_of(new_mail)
    assert "Ændret siden sidste version" in text
    assert "Ændret beløb 2026 Drift og vedligehold: 1.300.000–2.000.000 → 1.500.000–2.000.000" \
        in text
    assert f"version {resubmitted.version}" in text
    assert flow.reply(new_mail, sender=KAREN, text="GODKEND") == "decision"


def test_delegation_sends_the_step_to_the_substitute_who_decides(flow: Flow) -> None:
    with transaction(flow.engine) as session:
        ids: dict[str, int] = dict(session.execute(
            select(col(Person.email), col(Person.id)).where(col(Person.id).is_not(None))).all())
        session.add(Delegation(person_id=ids[KAREN], substitute_id=ids[VICE],
                               starts=date(2025, 9, 29), ends=date(2025, 10, 10),
                               created_at=flow.now))
    submit_request(flow.engine, KEY, settings=flow.settings, now=flow.now)
    flow.deliver()
    assert flow.inbox(KAREN) == []
    mail = only(flow.inbox(VICE))
    assert "Du svarer på vegne af Karen Holm" in text_of(mail)
    first = flow.document()["steps"][0]
    assert (first["approver_email"], first["on_behalf_of"]) == (VICE, KAREN)
    assert flow.reply(mail, sender=VICE, text="GODKEND") == "decision"
    first = flow.document()["steps"][0]
    assert (first["state"], first["approver_email"], first["on_behalf_of"]) == (
        "approved", VICE, KAREN)


def test_the_head_of_department_never_approves_her_own_request(
    flow: Flow, tmp_path: Path,
) -> None:
    document = yaml.safe_load(SEED.read_text(encoding="utf-8"))
    own = next(r for r in document["requests"] if r["key"] == KEY)
    document["requests"] = [{**own, "key": "KAREN-EGEN", "requester": KAREN}]
    path = tmp_path / "own.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    load_requests(flow.engine, path=path, now=flow.now)
    submit_request(flow.engine, "KAREN-EGEN", settings=flow.settings, now=flow.now)
    steps = steps_of(flow.engine, "KAREN-EGEN")
    assert steps
    assert KAREN not in {s.approver for s in steps}
    assert KAREN not in {s.on_behalf_of for s in steps}
    flow.deliver()
    assert flow.inbox(KAREN) == []


def test_hard_bounce_escalates_the_step(flow: Flow) -> None:
    approve_first_stage(flow)
    step = pending_step(flow.engine, KEY, KAREN)
    mail = approval_mail_for(flow.engine, step.id)
    bounce = dsn_for(flow.engine, mail.id)
    result = ingest(flow.engine, bounce, settings=flow.settings, now=flow.tick(),
                    envelope=(bounce_address(flow.engine, mail.id),))
    assert result.outcome == "bounce-hard"
    assert VICE in result.detail
    with Session(flow.engine) as session:
        old = session.get(ApprovalStep, step.id)
        new = session.execute(select(ApprovalStep).where(
            col(ApprovalStep.escalated_from_id) == step.id)).scalar_one()
    assert old is not None
    assert old.state == "void"
    assert new.state == "pending"
    flow.deliver()
    escalated = only(flow.inbox(VICE))
    assert "Karen Holm" in text_of(escalated)
    assert flow.reply(escalated, sender=VICE, text="GODKEND") == "decision"
    assert [s.state for s in steps_of(flow.engine, KEY)][:2] == ["void", "pending"]


def test_original_approver_after_the_substitute_decided(flow: Flow) -> None:
    first = approve_first_stage(flow)
    with transaction(flow.engine) as session:
        ids: dict[str, int] = dict(session.execute(select(col(Person.email), col(Person.id))
                                                   .where(col(Person.id).is_not(None))).all())
        session.add(Delegation(person_id=ids[KAREN], substitute_id=ids[VICE],
                               starts=date(2025, 10, 1), ends=date(2025, 10, 31),
                               created_at=flow.now))
    assert flow.reply(first, sender=VICE, text="GODKEND") == "decision"
    outcome = flow.reply(first, sender=KAREN, text="AFVIS")
    flow.deliver()
    assert flow.inbox(VICE) == []  # the substitute is not told about Karen's reply
    assert outcome == "refused-decided"
    assert "allerede afgjort" in text_of(flow.inbox(KAREN)[-1])
