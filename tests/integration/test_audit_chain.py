"""The audit chain detects altered, deleted and appended-behind-its-back events."""

from datetime import UTC, datetime

from sqlalchemy import Engine, text
from sqlmodel import Session

from db.audit import NewEvent, append_events, verify_chain

NOW = datetime(2025, 10, 1, 6, 0, tzinfo=UTC)


def seed_events(engine: Engine, count: int = 5) -> None:
    with Session(engine) as session:
        append_events(session, [NewEvent("test.event", f"thing:{i}", details={"n": i})
                                for i in range(count)], now=NOW)
        session.commit()


def verify(engine: Engine) -> tuple[bool, list[str]]:
    with Session(engine) as session:
        report = verify_chain(session)
    return report.ok, list(report.problems)


def test_intact_chain_verifies(engine: Engine) -> None:
    seed_events(engine)
    seed_events(engine, 3)
    assert verify(engine) == (True, [])


def test_altered_details_are_detected(engine: Engine) -> None:
    seed_events(engine)
    with Session(engine) as session:
        session.execute(text("UPDATE auditevent SET details = :d WHERE seq = 3"),
                        {"d": '{"n":99}'})
        session.commit()
    ok, problems = verify(engine)
    assert not ok
    assert any("seq 3" in p and "altered" in p for p in problems)


def test_deleted_middle_event_is_detected(engine: Engine) -> None:
    seed_events(engine)
    with Session(engine) as session:
        session.execute(text("DELETE FROM auditevent WHERE seq = 2"))
        session.commit()
    ok, problems = verify(engine)
    assert not ok
    assert any("deleted or inserted" in p for p in problems)


def test_deleted_last_event_is_detected(engine: Engine) -> None:
    seed_events(engine)
    with Session(engine) as session:
        session.execute(text("DELETE FROM auditevent WHERE seq = 5"))
        session.commit()
    ok, problems = verify(engine)
    assert not ok
    assert any("head records seq 5" in p for p in problems)
