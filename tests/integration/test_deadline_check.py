"""The deadline check against a real database: ledger and outbox together, catch-up, no doubles."""

import contextlib
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from db.audit import verify_chain
from models import Outbox, Reminder, ReminderKind, ReminderState
from tests.support.factories import SEED, load_file, make_grant, write_register
from workflow.deadlines import enqueue_due

NOW = datetime(2025, 10, 1, 6, 0, tzinfo=UTC)


def ledger(engine: Engine) -> list[Reminder]:
    with Session(engine) as session:
        return list(session.execute(select(Reminder).order_by(col(Reminder.id))).scalars())


def outbox(engine: Engine) -> list[Outbox]:
    with Session(engine) as session:
        return list(session.execute(select(Outbox).order_by(col(Outbox.id))).scalars())


def test_seed_as_of_first_october_2025(app_env: dict[str, str], engine: Engine) -> None:
    load_file(engine, SEED)
    summary = enqueue_due(date(2025, 10, 1), now=NOW)
    # DOMEN and WVDK (end 31 Dec 2025) missed their 180-day reminder; it goes out once, late.
    assert sorted(summary["grants"]) == ["DOMEN", "WVDK"]
    assert summary["late"] == 2
    assert summary["superseded"] == 2  # their 365-day reminders are not sent as a burst
    mails = outbox(engine)
    assert sorted(m.recipients[0] for m in mails) == sorted([
        "medborgerskab@kommune.example.org", "okonomi@kommune.example.org",
        "erhverv@kommune.example.org", "okonomi@kommune.example.org"])
    sent_rows = [r for r in ledger(engine) if r.state == ReminderState.LATE_SENT]
    assert {r.offset_days for r in sent_rows} == {180}
    assert all(r.outbox_id is not None for r in sent_rows)


def test_second_run_on_the_same_day_enqueues_nothing(
    app_env: dict[str, str], engine: Engine,
) -> None:
    load_file(engine, SEED)
    enqueue_due(date(2025, 10, 1), now=NOW)
    before = len(outbox(engine))
    summary = enqueue_due(date(2025, 10, 1), now=NOW)
    assert summary["reminders"] == 0
    assert len(outbox(engine)) == before


def test_missed_days_are_caught_up_once(app_env: dict[str, str], engine: Engine,
                                        tmp_path: Path) -> None:
    path = write_register(tmp_path / "r.yaml", grants=[make_grant(end=date(2026, 1, 31))])
    load_file(engine, path)
    # 30-day reminder is due Thu 1 Jan 2026 → moved to Wed 31 Dec? closed → Tue 30 Dec 2025.
    due = {r.offset_days: r.due_date for r in ledger(engine)
           if r.kind == ReminderKind.REMINDER}
    assert due[30] == date(2025, 12, 30)
    enqueue_due(date(2025, 12, 29), now=NOW)  # the day before: only 90-day (due in Nov) goes
    # The runs of 30 Dec – 4 Jan were missed; 5 Jan catches the 30-day reminder up.
    summary = enqueue_due(date(2026, 1, 5), now=NOW)
    assert summary["reminders"] == 1
    assert summary["late"] == 1
    row = next(r for r in ledger(engine) if r.offset_days == 30)
    assert (row.state, row.handled_on) == (ReminderState.LATE_SENT, date(2026, 1, 5))
    assert enqueue_due(date(2026, 1, 5), now=NOW)["reminders"] == 0


def test_ended_grant_gets_a_single_expiry_notice(app_env: dict[str, str], engine: Engine,
                                                 tmp_path: Path) -> None:
    path = write_register(tmp_path / "r.yaml", grants=[make_grant(end=date(2025, 12, 31))])
    load_file(engine, path)
    summary = enqueue_due(date(2026, 2, 2), now=NOW)
    assert (summary["reminders"], summary["expired"], summary["superseded"]) == (1, 1, 5)
    mails = outbox(engine)
    assert len(mails) == 1
    assert mails[0].kind == "grant_expired"
    assert "udløbet uden beslutning" in mails[0].subject
    assert enqueue_due(date(2026, 3, 2), now=NOW)["reminders"] == 0


def test_reminder_goes_to_owner_and_recipients_in_their_language(
    app_env: dict[str, str], engine: Engine, tmp_path: Path,
) -> None:
    path = write_register(tmp_path / "r.yaml", grants=[
        make_grant(end=date(2026, 1, 30), recipients=["english@kommune.example.org"])])
    load_file(engine, path)
    enqueue_due(date(2026, 1, 23), now=NOW)
    by_recipient = {m.recipients[0]: m for m in outbox(engine)}
    assert by_recipient["owner@kommune.example.org"].subject.startswith("Bevilling udløber")
    assert by_recipient["english@kommune.example.org"].subject.startswith("Funding ends")


def test_ledger_and_outbox_are_written_together(app_env: dict[str, str], engine: Engine,
                                                tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_register(tmp_path / "r.yaml", grants=[make_grant(end=date(2025, 12, 31))])
    load_file(engine, path)
    import workflow.deadlines

    def broken_events(*args: object, **kwargs: object) -> int:
        raise RuntimeError("crash after the outbox insert")

    monkeypatch.setattr(workflow.deadlines, "append_events", broken_events)
    with contextlib.suppress(RuntimeError):
        enqueue_due(date(2025, 12, 1), now=NOW)
    assert outbox(engine) == []
    assert {r.state for r in ledger(engine)} == {ReminderState.PLANNED}
    monkeypatch.undo()
    assert enqueue_due(date(2025, 12, 1), now=NOW)["reminders"] == 1


def test_audit_chain_records_load_and_check(app_env: dict[str, str], engine: Engine) -> None:
    load_file(engine, SEED)
    enqueue_due(date(2025, 10, 1), now=NOW)
    with Session(engine) as session:
        report = verify_chain(session)
        kinds = list(session.execute(select(func.count()).where(
            col(Reminder.state) == ReminderState.LATE_SENT)).scalars())
    assert report.ok, report.problems
    assert report.events == 5 + 2
    assert kinds == [2]
