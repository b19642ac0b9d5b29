"""db.raw: hand-written statements store and read values exactly as the ORM does."""

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlmodel import Session, col

from db.engine import raw_transaction
from db.raw import RawSQL
from models import ApprovalStep, Outbox, OutboxState

_STEPS = ApprovalStep.__table__  # type: ignore[attr-defined]
_OUTBOX = Outbox.__table__  # type: ignore[attr-defined]
_SQLITE = sqlite.dialect()

_AWARE = st.datetimes(min_value=datetime(1000, 1, 1),  # noqa: DTZ001  (hypothesis wants naive bounds)
                      max_value=datetime(9998, 12, 31),  # noqa: DTZ001
                      timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)),
                                                 timezone(timedelta(hours=-5, minutes=-30))]))


def _processors(column: Any) -> tuple[Any, Any]:
    impl = column.type.dialect_impl(_SQLITE)
    return impl.bind_processor(_SQLITE), impl.result_processor(_SQLITE, None)


@given(value=_AWARE)
def test_utc_datetimes_are_the_text_sqlalchemy_writes_and_read_back_alike(value: datetime) -> None:
    column = _STEPS.c.decided_at
    ours = RawSQL("SELECT ? ", [column], [column])
    _sql, bind, result = ours.prepared(_SQLITE)
    assert result is not None
    theirs_bind, theirs_result = _processors(column)
    stored = bind([value])[0]
    assert stored == theirs_bind(value)
    assert result([stored])[0] == theirs_result(stored) == value


@given(value=st.dates(min_value=date(1000, 1, 1)))
def test_dates_read_back_as_sqlalchemy_reads_them(value: date) -> None:
    column = _STEPS.c.due_date
    _sql, bind, result = RawSQL("SELECT ?", [column], [column]).prepared(_SQLITE)
    assert result is not None
    theirs_bind, theirs_result = _processors(column)
    stored = bind([value])[0]
    assert stored == theirs_bind(value)
    assert result([stored])[0] == theirs_result(stored) == value


def test_a_statement_refuses_a_wrong_number_of_placeholders_or_a_percent_sign() -> None:
    with pytest.raises(ValueError, match="placeholders"):
        RawSQL("SELECT ?, ?", [None])
    with pytest.raises(ValueError, match="psycopg"):
        RawSQL("SELECT 1 WHERE 'a' LIKE '%'")
    _sql, bind, _ = RawSQL("SELECT ?", [None]).prepared(_SQLITE)
    with pytest.raises(ValueError, match="1 placeholders"):
        bind([1, 2])


def test_a_row_written_raw_reads_back_through_the_orm(engine: Engine) -> None:
    insert = RawSQL(
        "INSERT INTO outbox (key, kind, subject_ref, recipients, subject, body_text, body_html,"
        " attachments, headers, message_id, state, attempts, next_attempt_at, created_at)"
        " VALUES (?, 'k', '', ?, 's', '', '', ?, ?, 'm', ?, 0, ?, ?) RETURNING id",
        [_OUTBOX.c.key, _OUTBOX.c.recipients, _OUTBOX.c.attachments, _OUTBOX.c.headers,
         _OUTBOX.c.state, _OUTBOX.c.next_attempt_at, _OUTBOX.c.created_at])
    at = datetime(2026, 3, 4, 5, 6, 7, 89, tzinfo=timezone(timedelta(hours=1)))
    with raw_transaction(engine) as raw:
        row = raw.one_or_none(insert, "raw-1", ["a@kommune.example.org"], [{"x": 1}],
                              {"Æ": "ø"}, OutboxState.PENDING, at, at)
    assert row is not None
    with Session(engine) as session:
        stored = session.execute(select(Outbox).where(col(Outbox.id) == row[0])).scalar_one()
    assert (stored.recipients, stored.attachments, stored.headers) == (
        ["a@kommune.example.org"], [{"x": 1}], {"Æ": "ø"})
    assert stored.state is OutboxState.PENDING
    assert stored.next_attempt_at == at
    assert stored.created_at.tzinfo is UTC


def test_a_raw_transaction_rolls_back_on_error(engine: Engine) -> None:
    insert = RawSQL(
        "INSERT INTO outbox (key, kind, subject_ref, recipients, subject, body_text, body_html,"
        " attachments, headers, message_id, state, attempts, next_attempt_at, created_at)"
        " VALUES ('gone', 'k', '', '[]', 's', '', '', '[]', '{}', 'gone', ?, 0, ?, ?)",
        [_OUTBOX.c.state, _OUTBOX.c.next_attempt_at, _OUTBOX.c.created_at])
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def write_then_fail() -> None:
        with raw_transaction(engine) as raw:
            raw.run(insert, OutboxState.PENDING, now, now)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_then_fail()
    with Session(engine) as session:
        assert session.execute(select(Outbox)).first() is None


def _count(engine: Engine) -> int:
    with Session(engine) as session:
        return len(session.execute(select(Outbox)).all())


def _outbox_row(key: str, now: datetime) -> Outbox:
    return Outbox(key=key, kind="k", recipients=[], subject="s", body_text="", body_html="",
                  message_id=key, next_attempt_at=now, created_at=now)


def test_an_orm_session_joins_a_raw_transaction_and_commits_with_it(engine: Engine) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    insert = RawSQL(
        "INSERT INTO outbox (key, kind, subject_ref, recipients, subject, body_text, body_html,"
        " attachments, headers, message_id, state, attempts, next_attempt_at, created_at)"
        " VALUES ('raw', 'k', '', '[]', 's', '', '', '[]', '{}', 'raw', ?, 0, ?, ?)",
        [_OUTBOX.c.state, _OUTBOX.c.next_attempt_at, _OUTBOX.c.created_at])
    with raw_transaction(engine) as raw:
        raw.run(insert, OutboxState.PENDING, now, now)
        raw.orm_session().add(_outbox_row("orm", now))
    assert _count(engine) == 2

    def both_then_fail() -> None:
        with raw_transaction(engine) as raw:
            raw.orm_session().add(_outbox_row("orm-2", now))
            raw.orm_session().flush()
            raw.run(insert.__class__(insert.sql.replace("'raw'", "'raw-2'"), insert.binds),
                    OutboxState.PENDING, now, now)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        both_then_fail()
    assert _count(engine) == 2


def test_driver_errors_surface_as_sqlalchemy_errors(engine: Engine) -> None:
    # The CLI turns SQLAlchemy's OperationalError/ProgrammingError into one readable line.
    missing = RawSQL("SELECT id FROM no_such_table WHERE id = ?", [None])

    def query_missing_table() -> None:
        with raw_transaction(engine) as raw:
            raw.rows(missing, 1)

    with pytest.raises((OperationalError, ProgrammingError), match="no_such_table"):
        query_missing_table()
