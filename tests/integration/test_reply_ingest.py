"""Every corpus reply, with a real token, through `ingest_raw` against a submitted STS-2027.

A step can be decided once, so each file gets its own copy of a database in which STS-2027 was
submitted (Karen Holm's step pending). The hostile-bytes property rolls back after each example.
"""

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from config.settings import Settings
from db.engine import close_engine, make_engine
from models import ApprovalStep, InboundMessage
from tests.support.approvals import (
    CORPUS,
    SUBMITTED,
    corpus_bytes,
    dsn_for,
    ingest,
    load_seed,
    make_settings,
    outbox,
    request_state,
    steps_of,
    submit_request,
)
from tests.support.databases import sqlite_copy
from workflow.context import make_context
from workflow.ingest import ingest_message

KEY = "STS-2027"
KAREN = "karen.holm@kommune.example.org"
TRUSTED = ("mx.bevilling.example.org",)


@dataclass(frozen=True)
class Outcome:
    """What ingesting one corpus file must do."""

    outcome: str
    detail: str = ""
    decided: bool = False
    notice: bool = False  # a mail back to the approver
    quarantined: bool = False


EXPECTED: dict[str, Outcome] = {
    "outlook-desktop-da-approve.eml": Outcome("decision", "approve", decided=True),
    "outlook-desktop-en-reject-with-comment.eml": Outcome("decision", "reject", decided=True),
    "outlook-web-da-approve.eml": Outcome("decision", "approve", decided=True),
    "gmail-da-approve.eml": Outcome("decision", "approve", decided=True),
    "gmail-en-reject.eml": Outcome("decision", "reject", decided=True),
    "apple-mail-da-approve.eml": Outcome("decision", "approve", decided=True),
    "html-only-approve.eml": Outcome("decision", "approve", decided=True),
    "thunderbird-approve.eml": Outcome("decision", "approve", decided=True),
    "approve-with-comment-multiline.eml": Outcome("decision", "approve", decided=True),
    "utf8-subject-encoded-words.eml": Outcome("decision", "approve", decided=True),
    "forwarded.eml": Outcome("refused-sender", "jens.vestergaard", notice=True, quarantined=True),
    "spoofed-from.eml": Outcome("quarantined-authentication", "fail", quarantined=True),
    "ambiguous-both-keywords.eml": Outcome("quarantined-ambiguous", "both keywords",
                                           notice=True, quarantined=True),
    "ambiguous-negation.eml": Outcome("quarantined-ambiguous", "negation", notice=True,
                                      quarantined=True),
    "ambiguous-ja.eml": Outcome("quarantined-ambiguous", "first line", notice=True,
                                quarantined=True),
    "outlook-de-reject-unknown-quote.eml": Outcome("quarantined-ambiguous", "both keywords",
                                                   notice=True, quarantined=True),
    "empty-reply.eml": Outcome("quarantined-empty", notice=True, quarantined=True),
    "out-of-office-da.eml": Outcome("ignored-automated", "Auto-Submitted"),
    "out-of-office-exchange.eml": Outcome("ignored-automated", "autosvar"),
    "mailing-list.eml": Outcome("ignored-automated", "List-Id"),
    "malformed-headers.eml": Outcome("quarantined", "unparsable", quarantined=True),
    "dsn-bounce-hard.eml": Outcome("bounce-hard", "5.1.1"),
    "dsn-bounce-soft.eml": Outcome("bounce-soft", "4.2.2"),
    "hostile-outlook-godkend-ikke-endnu.eml": Outcome("quarantined-ambiguous", "doubt 'ikke'",
                                                      notice=True, quarantined=True),
    "hostile-html-only-hidden-approve.eml": Outcome("quarantined-ambiguous", "not display",
                                                    notice=True, quarantined=True),
    "hostile-gmail-borrowed-display-name.eml": Outcome("quarantined", "no usable From",
                                                       quarantined=True),
}
DECISIVE = {"decision", "refused-decided"}


def test_every_corpus_file_has_an_expected_outcome() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.eml")) == sorted(EXPECTED)


@pytest.fixture(scope="module")
def submitted_db(tmp_path_factory: pytest.TempPathFactory, _sqlite_template: Path) -> Path:
    """A SQLite file with the seed loaded and STS-2027 submitted (copied per test)."""
    path = tmp_path_factory.mktemp("sts") / "submitted.db"
    url = sqlite_copy(_sqlite_template, path)
    engine = make_engine(url)
    load_seed(engine)
    submit_request(engine, KEY, settings=make_settings(url), now=SUBMITTED)
    close_engine(engine)
    return path


@dataclass
class Db:
    engine: Engine
    settings: Settings


@pytest.fixture
def fresh_db(submitted_db: Path, tmp_path: Path) -> Iterator[Db]:
    url = f"sqlite:///{tmp_path / 'copy.db'}"
    shutil.copyfile(submitted_db, tmp_path / "copy.db")
    engine = make_engine(url)
    yield Db(engine, make_settings(url, trusted_authserv_ids=TRUSTED))
    close_engine(engine)


def raw_for(name: str, db: Db) -> bytes:
    """The corpus file aimed at the live step: real token, or our real outbox id for DSNs."""
    approval = outbox(db.engine, kind="approval_request")[0]
    if name.startswith("dsn-"):
        return dsn_for(db.engine, approval.id, hard="hard" in name)
    return corpus_bytes(name, token=approval.token)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_through_ingestion(name: str, fresh_db: Db) -> None:
    expected = EXPECTED[name]
    mails_before = len(outbox(fresh_db.engine))
    result = ingest(fresh_db.engine, raw_for(name, fresh_db), settings=fresh_db.settings,
                    now=SUBMITTED)
    assert result.outcome == expected.outcome, result
    assert expected.detail.lower() in result.detail.lower()

    steps = steps_of(fresh_db.engine, KEY)
    karen = steps[0]
    if expected.decided:
        assert karen.state == ("approved" if expected.detail == "approve" else "rejected")
        assert request_state(fresh_db.engine, KEY) == karen.state
        assert [m.kind for m in outbox(fresh_db.engine)[mails_before:]] == ["approval_outcome"]
    elif expected.outcome == "bounce-hard":
        assert [s.state for s in steps] == ["void", "pending"]
        assert [m.recipient for m in outbox(fresh_db.engine)[mails_before:]] == [
            "vicedirektoer@kommune.example.org"]
    else:
        assert [s.state for s in steps] == ["pending"]
        assert request_state(fresh_db.engine, KEY) == "pending"
        new = outbox(fresh_db.engine)[mails_before:]
        assert [(m.kind.startswith("notice_"), m.recipient) for m in new] == (
            [(True, KAREN)] if expected.notice else [])

    with Session(fresh_db.engine) as session:
        row = session.execute(select(InboundMessage)).scalar_one()
    assert row.outcome == result.outcome
    assert row.quarantined is expected.quarantined
    assert (row.raw is not None) is expected.quarantined


def test_the_second_decisive_reply_is_refused(fresh_db: Db) -> None:
    approve = raw_for("gmail-da-approve.eml", fresh_db)
    reject = raw_for("gmail-en-reject.eml", fresh_db)
    assert ingest(fresh_db.engine, approve, settings=fresh_db.settings, now=SUBMITTED).outcome \
        == "decision"
    assert ingest(fresh_db.engine, reject, settings=fresh_db.settings, now=SUBMITTED).outcome \
        == "refused-decided"
    assert [s.state for s in steps_of(fresh_db.engine, KEY)] == ["approved"]


# --- hostile bytes --------------------------------------------------------------------------

NAMES = sorted(EXPECTED)
BOTH_KEYWORDS = ("ambiguous-both-keywords.eml", "outlook-de-reject-unknown-quote.eml")


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes, bool]:
    """(file, mutated bytes, whether only the header block was touched)."""
    name = draw(st.sampled_from(NAMES))
    raw = (CORPUS / name).read_bytes()
    split = raw.find(b"\n\n") if b"\r\n\r\n" not in raw else raw.find(b"\r\n\r\n")
    headers_only = draw(st.booleans())
    limit = split if headers_only and split > 0 else len(raw)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(0, limit - 1)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        chunk = draw(st.binary(min_size=1, max_size=12) | st.sampled_from(
            [b"\x00", b"\r", b"\n", b"=?utf-8?b?", b"<", b'"', b":", b";", b"\xff\xfe",
             b"charset=unknown-8bit", b"Content-Type: multipart/mixed; boundary=x\n"]))
        span = draw(st.integers(1, 40))
        if kind == "insert":
            raw = raw[:at] + chunk + raw[at:]
            limit += len(chunk)
        elif kind == "delete":
            span = min(span, max(0, limit - at))
            raw = raw[:at] + raw[at + span:]
            limit -= span
        elif kind == "replace":
            raw = raw[:at] + chunk + raw[at + len(chunk):]
        else:
            raw = raw[:at] + raw[at:at + span] + raw[at:]
            limit += len(raw[at:at + span])
    return name, raw, headers_only


@settings(max_examples=50, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=mutated())
def test_hostile_bytes_never_raise_and_never_decide_on_both_keywords(
    case: tuple[str, bytes, bool], fresh_db: Db,
) -> None:
    name, raw, headers_only = case
    approval = outbox(fresh_db.engine, kind="approval_request")[0]
    raw = raw.replace(b"a" * 26, approval.token.encode())
    ctx = make_context(fresh_db.settings, now=SUBMITTED)
    with Session(fresh_db.engine) as session:
        try:
            result = ingest_message(session, raw, source="fuzz", ctx=ctx)
            session.flush()
            pending = session.execute(select(func.count()).select_from(ApprovalStep).where(
                col(ApprovalStep.state) == "pending")).scalar_one()
        finally:
            session.rollback()
    if name in BOTH_KEYWORDS and headers_only:
        assert result.outcome not in DECISIVE, (name, result)
        assert pending == 1
    assert result.outcome  # recorded something, raised nothing
