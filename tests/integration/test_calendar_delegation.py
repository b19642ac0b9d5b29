"""Delegation follows the calendar and escalation ends somewhere, with real replies and the
follow-up run day by day (only the clock is mocked). SQLite and PostgreSQL."""

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from config.settings import get_settings
from db.engine import transaction
from tests.support.approvals import (
    build_reply,
    ingest,
    load_seed,
    outbox,
    parse_message,
    pending_step,
    steps_of,
    submit_request,
)
from tests.support.smtp_server import SmtpServer
from workflow.context import make_context
from workflow.delegations import add_delegation, end_delegation
from workflow.follow_up import follow_up
from workflow.request_json import request_by_key

KAREN = "karen.holm@kommune.example.org"
OKONOMI = "okonomi@kommune.example.org"
DIRECTOR = "stadsdirektoer@kommune.example.org"
VICE = "vicedirektoer@kommune.example.org"
MAYOR = "borgmester@kommune.example.org"
ADMIN = "it-drift@kommune.example.org"
SEED_ADMIN = "bevilling-admin@kommune.example.org"
KEY = "DOMEN-DRIFT"
MONDAY = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@pytest.fixture
def seeded(app_env: dict[str, str], engine: Engine, smtp_server: SmtpServer,
           monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("BEVILLING_ADMIN_EMAILS", json.dumps([ADMIN]))
    get_settings.cache_clear()
    load_seed(engine, now=MONDAY)
    return engine


def reply(engine: Engine, mail_raw: bytes, *, sender: str, text: str, now: datetime) -> str:
    raw = build_reply(parse_message(mail_raw), sender=sender, text=text, date=now)
    return ingest(engine, raw, settings=get_settings(), now=now).outcome


def latest_approval_mail(engine: Engine, recipient: str) -> bytes:
    return outbox(engine, kind="approval_request", recipient=recipient)[-1].raw


def test_adding_then_ending_a_delegation_moves_the_pending_step_and_tells_both(
    seeded: Engine,
) -> None:
    submit_request(seeded, KEY, settings=get_settings(), now=MONDAY)
    karen_mail = latest_approval_mail(seeded, KAREN)
    moves = add_delegation(seeded, person=KAREN, substitute=OKONOMI, starts=date(2026, 11, 30),
                           ends=date(2026, 12, 4), now=MONDAY + timedelta(hours=1))
    assert len(moves) == 1
    step = pending_step(seeded, KEY, OKONOMI)
    assert step.on_behalf_of == KAREN
    moved = outbox(seeded, kind="step_moved", recipient=KAREN)
    assert len(moved) == 1
    assert "Økonomikonsulenten på vegne af Karen Holm" in moved[0].body_text
    okonomi_mail = latest_approval_mail(seeded, OKONOMI)
    # Karen's old mail no longer decides: its token was revoked when the step moved
    assert reply(seeded, karen_mail, sender=KAREN, text="GODKEND",
                 now=MONDAY + timedelta(hours=2)).startswith("refused-")
    # the delegation ends early: the step goes back to Karen, the substitute is told
    back = end_delegation(seeded, person=KAREN, substitute=OKONOMI, last_day=date(2026, 11, 30),
                          now=datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    assert len(back) == 1
    assert pending_step(seeded, KEY, KAREN).on_behalf_of is None
    assert len(outbox(seeded, kind="step_moved", recipient=OKONOMI)) == 1
    assert reply(seeded, okonomi_mail, sender=OKONOMI, text="GODKEND",
                 now=datetime(2026, 12, 1, 9, 0, tzinfo=UTC)).startswith("refused-")
    assert reply(seeded, latest_approval_mail(seeded, KAREN), sender=KAREN, text="GODKEND",
                 now=datetime(2026, 12, 1, 10, 0, tzinfo=UTC)) == "decision"


def test_a_later_stage_goes_to_the_substitute_of_an_approver_away_when_it_starts(
    seeded: Engine,
) -> None:
    submit_request(seeded, KEY, settings=get_settings(), now=MONDAY)
    # added after submit, while the director's stage still waits
    add_delegation(seeded, person=DIRECTOR, substitute=VICE, starts=date(2026, 12, 1),
                   ends=date(2026, 12, 11), now=MONDAY + timedelta(hours=1))
    assert reply(seeded, latest_approval_mail(seeded, KAREN), sender=KAREN, text="GODKEND",
                 now=datetime(2026, 12, 2, 9, 0, tzinfo=UTC)) == "decision"
    step = pending_step(seeded, KEY, VICE)
    assert (step.stage, step.on_behalf_of) == ("stadsdirektoer", DIRECTOR)
    assert outbox(seeded, kind="approval_request", recipient=DIRECTOR) == []
    assert reply(seeded, latest_approval_mail(seeded, VICE), sender=VICE, text="GODKEND",
                 now=datetime(2026, 12, 2, 10, 0, tzinfo=UTC)) == "decision"


def test_a_fortnight_and_more_of_follow_up_runs_ends_with_the_admins_told(seeded: Engine) -> None:
    """Karen away 3–4 Dec (digest to her substitute), the vice director away 8–9 Dec (the
    escalation goes to his substitute), Christmas closed; escalation never returns to anyone
    and ends with one mail to the admins; `requests show` says so."""
    submit_request(seeded, KEY, settings=get_settings(), now=MONDAY)
    add_delegation(seeded, person=KAREN, substitute=OKONOMI, starts=date(2026, 12, 3),
                   ends=date(2026, 12, 4), now=MONDAY)
    add_delegation(seeded, person=VICE, substitute=DIRECTOR, starts=date(2026, 12, 8),
                   ends=date(2026, 12, 9), now=MONDAY)
    day = date(2026, 11, 30)
    while day <= date(2026, 12, 31):
        now = datetime(day.year, day.month, day.day, 8, 0, tzinfo=UTC)
        with transaction(seeded) as session:
            follow_up(session, ctx=make_context(get_settings(), now=now))
        day += timedelta(days=1)
    digests = outbox(seeded, kind="approval_digest")
    assert next(d.recipient for d in digests) == OKONOMI  # 4 Dec: Karen is away
    chain = [s for s in steps_of(seeded, KEY) if s.stage == "afdelingschef"]
    holders = [s.approver for s in chain]
    assert holders == [KAREN, DIRECTOR, MAYOR]
    assert chain[1].on_behalf_of == VICE  # the vice director was away: his substitute
    assert len(set(holders)) == len(holders)
    assert [s.state for s in chain] == ["void", "void", "pending"]
    told = outbox(seeded, kind="step_exhausted")
    assert sorted(m.recipient for m in told) == [SEED_ADMIN, ADMIN]  # role admin + setting
    assert "ingen tilbage at eskalere til" in told[0].body_text
    with Session(seeded) as session:
        document = request_by_key(session, KEY)
    assert document is not None
    last = next(s for s in document["steps"] if s["id"] == chain[-1].id)
    assert last["note"].startswith("escalation exhausted")
