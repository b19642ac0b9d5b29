"""The keyed audit chain: a chain rewritten without the key, a non-UTC `now`, and an old unkeyed
chain carried over (kept verifiable, then sealed). SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select, update
from sqlmodel import Session, col

from config.settings import get_settings
from db.audit import NewEvent, append_events, event_hash, verify_chain
from models.audit import GENESIS_HASH, AuditEvent, AuditHead
from workflow.queries import seal_audit

NOW = datetime(2025, 10, 1, 6, 0, tzinfo=UTC)


def seed(engine: Engine, count: int = 5, *, now: datetime = NOW) -> None:
    with Session(engine) as session:
        append_events(session, [NewEvent("test.event", f"thing:{i}", details={"n": i})
                                for i in range(count)], now=now)
        session.commit()


def report(engine: Engine) -> tuple[bool, list[str], list[str]]:
    with Session(engine) as session:
        found = verify_chain(session)
    return found.ok, list(found.problems), list(found.checked)


def rewrite(engine: Engine, *, key: bytes | None, scheme: str | None = None) -> None:
    """What someone with write access to the tables but not the key can do: edit event 3,
    then recompute every hash (with `key`: a guess) and move the head."""
    with Session(engine) as session:
        session.execute(update(AuditEvent).where(col(AuditEvent.seq) == 3)
                        .values(details={"n": 99}))
        rows = session.execute(select(AuditEvent).order_by(col(AuditEvent.seq))).scalars().all()
        prev = GENESIS_HASH
        for row in rows:
            digest = event_hash(prev_hash=prev, seq=row.seq, at=row.at, kind=row.kind,
                                subject=row.subject, actor=row.actor, details=row.details,
                                key=key)
            values: dict[str, object] = {"prev_hash": prev, "hash": digest}
            if scheme is not None:
                values["scheme"] = scheme
            session.execute(update(AuditEvent).where(col(AuditEvent.id) == row.id)
                            .values(**values))
            prev = digest
        session.execute(update(AuditHead).where(col(AuditHead.id) == 1)
                        .values(last_seq=rows[-1].seq, last_hash=prev))
        session.commit()


def test_a_keyed_chain_verifies_and_says_what_was_checked(
    app_env: dict[str, str], engine: Engine,
) -> None:
    seed(engine)
    ok, problems, checked = report(engine)
    assert (ok, problems) == (True, [])
    assert any("HMAC-SHA256" in line and "derived from BEVILLING_TOKEN_SECRET" in line
               for line in checked)
    assert any("UTC" in line for line in checked)


@pytest.mark.parametrize(("key", "scheme", "expected"), [
    (None, None, "content altered"),  # the old attack: unkeyed SHA-256 over every event
    (b"a guessed key", None, "content altered"),
    (None, "sha256", "not keyed although a key is configured"),  # and claim they were unkeyed
])
def test_a_chain_rewritten_without_the_key_fails(
    app_env: dict[str, str], engine: Engine, key: bytes | None, scheme: str | None,
    expected: str,
) -> None:
    seed(engine)
    rewrite(engine, key=key, scheme=scheme)
    ok, problems, _ = report(engine)
    assert not ok
    assert any(expected in p for p in problems), problems


def test_a_now_with_a_copenhagen_offset_verifies(app_env: dict[str, str], engine: Engine) -> None:
    copenhagen = timezone(timedelta(hours=1))
    seed(engine, 60, now=datetime(2025, 11, 3, 9, 0, tzinfo=copenhagen))
    seed(engine, 1, now=datetime(2025, 7, 3, 9, 0, tzinfo=timezone(timedelta(hours=2))))
    ok, problems, _ = report(engine)
    assert (ok, problems) == (True, [])
    with Session(engine) as session:
        first = session.execute(select(AuditEvent).where(col(AuditEvent.seq) == 1)).scalar_one()
    assert first.at == datetime(2025, 11, 3, 8, 0, tzinfo=UTC)


def test_an_unkeyed_chain_from_before_stays_verifiable_and_is_sealed(
    app_env: dict[str, str], engine: Engine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BEVILLING_TOKEN_SECRET")
    get_settings.cache_clear()
    seed(engine, 4)  # written as before the key existed
    ok, _, checked = report(engine)
    assert ok
    assert any("no audit key configured" in line for line in checked)
    monkeypatch.setenv("BEVILLING_TOKEN_SECRET", "test-secret-not-for-production")
    get_settings.cache_clear()
    ok, problems, _ = report(engine)
    assert not ok
    assert any("audit seal" in p for p in problems)
    seal_audit(engine, now=NOW)
    ok, problems, checked = report(engine)
    assert (ok, problems) == (True, [])
    assert any("events 1–4 predate the key" in line for line in checked)
    # the unkeyed prefix cannot be rewritten now: the keyed event 5 links to it
    with Session(engine) as session:
        row = session.execute(select(AuditEvent).where(col(AuditEvent.seq) == 2)).scalar_one()
        session.execute(update(AuditEvent).where(col(AuditEvent.seq) == 2)
                        .values(actor="mallory"))
        session.commit()
        del row
    rewrite_prefix_ok, problems, _ = report(engine)
    assert not rewrite_prefix_ok
