"""Reminder digests before the deadline and escalation after it, with a mocked clock."""

from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from config.settings import get_settings
from db.engine import transaction
from loading.register_file import read_register
from models import ApprovalStep, Outbox, Person
from tests.support.factories import SEED, load_file
from workflow.context import make_context
from workflow.follow_up import follow_up
from workflow.request_load import apply_requests
from workflow.routing import submit

MONDAY = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def setup_request(engine: Engine, key: str = "DOMEN-DRIFT") -> None:
    load_file(engine, SEED)
    with transaction(engine) as session:
        apply_requests(session, read_register(SEED), now=MONDAY)
        submit(session, key, ctx=make_context(get_settings(), now=MONDAY))


def run(engine: Engine, now: datetime) -> object:
    with transaction(engine) as session:
        return follow_up(session, ctx=make_context(get_settings(), now=now))


def mails(engine: Engine, kind: str) -> list[Outbox]:
    with Session(engine) as session:
        return list(session.execute(select(Outbox).where(col(Outbox.kind) == kind)).scalars())


def test_digest_a_working_day_before_then_escalation(
    app_env: dict[str, str], engine: Engine
) -> None:
    setup_request(engine)
    with Session(engine) as session:
        step = (
            session.execute(select(ApprovalStep).order_by(col(ApprovalStep.id))).scalars().first()
        )
    assert step is not None
    assert step.due_date is not None
    assert step.due_date.isoformat() == "2026-12-07"  # 5 working days after Monday 30 Nov
    run(engine, datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    assert mails(engine, "approval_digest") == []
    run(engine, datetime(2026, 12, 4, 9, 0, tzinfo=UTC))  # Friday = one working day before
    digests = mails(engine, "approval_digest")
    assert [d.recipients for d in digests] == [["karen.holm@kommune.example.org"]]
    assert "DOMEN-DRIFT" in digests[0].body_text
    assert "/confirm/" in digests[0].body_text
    run(engine, datetime(2026, 12, 7, 9, 0, tzinfo=UTC))  # the due day itself: nothing more
    assert len(mails(engine, "approval_digest")) == 1
    run(engine, datetime(2026, 12, 8, 9, 0, tzinfo=UTC))  # overdue → escalate
    with Session(engine) as session:
        steps = list(
            session.execute(
                select(ApprovalStep)
                .where(col(ApprovalStep.stage_key) == "afdelingschef")
                .order_by(col(ApprovalStep.id))
            ).scalars()
        )
        people = {p.id: p.email for p in session.execute(select(Person)).scalars()}
    assert [s.state for s in steps] == ["void", "pending"]
    assert people[steps[1].approver_id] == "vicedirektoer@kommune.example.org"
    assert people[steps[1].on_behalf_of_id or 0] == "karen.holm@kommune.example.org"
    requests = [
        m
        for m in mails(engine, "approval_request")
        if m.recipients == ["vicedirektoer@kommune.example.org"]
    ]
    assert len(requests) == 1
    run(engine, datetime(2026, 12, 9, 9, 0, tzinfo=UTC))
    assert (
        len(
            [
                m
                for m in mails(engine, "approval_request")
                if m.recipients == ["vicedirektoer@kommune.example.org"]
            ]
        )
        == 1
    )


def test_one_digest_per_person_for_several_steps(app_env: dict[str, str], engine: Engine) -> None:
    setup_request(engine, "DOMEN-DRIFT")
    with transaction(engine) as session:
        submit(session, "WVDK-KONTINGENT", ctx=make_context(get_settings(), now=MONDAY))
    run(engine, datetime(2026, 12, 4, 9, 0, tzinfo=UTC))
    digests = mails(engine, "approval_digest")
    assert len(digests) == 1
    assert "DOMEN-DRIFT" in digests[0].body_text
    assert "WVDK-KONTINGENT" in digests[0].body_text


def test_nobody_is_chased_on_a_closed_day(app_env: dict[str, str], engine: Engine) -> None:
    setup_request(engine)
    saturday = datetime(2026, 12, 12, 9, 0, tzinfo=UTC)  # overdue since 7 December
    report = run(engine, saturday)
    assert getattr(report, "closed_day", False) is True
    assert mails(engine, "approval_digest") == []
    with Session(engine) as session:
        states = [s.state for s in session.execute(select(ApprovalStep).where(
            col(ApprovalStep.stage_key) == "afdelingschef")).scalars()]
    assert states == ["pending"]
    run(engine, datetime(2026, 12, 14, 9, 0, tzinfo=UTC))  # Monday: escalated now
    with Session(engine) as session:
        states = sorted(s.state for s in session.execute(select(ApprovalStep).where(
            col(ApprovalStep.stage_key) == "afdelingschef")).scalars())
    assert states == ["pending", "void"]
