"""The process-inbox flow against a real IMAP server (pymap) under the Prefect test harness."""

from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from config.settings import get_settings
from db.imap_cursor import CursorPosition, cursor_key, load_cursor, save_cursor
from flows.inbox import process_inbox
from models import ApprovalStep
from tests.integration.test_inbound_server import (
    NEXT_APPROVER,
    ApprovalMail,
    outbox_recipients,
    reply,
    submitted_request,
)
from tests.support.imap_server import ImapServer, running_imap_server
from workflow.inbound import ingest_raw

MAILBOX = "Indbakke"  # not INBOX: the test recreates it to change its UIDVALIDITY
PROCESSED = "Behandlet"
QUARANTINE = "Karantaene"  # ASCII: the stdlib test client cannot name UTF-7 folders

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture(scope="module")
def shared_imap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImapServer]:
    with running_imap_server(tmp_path_factory.mktemp("imap")) as server:
        yield server


@pytest.fixture
def imap(shared_imap: ImapServer, app_env: dict[str, str],
         monkeypatch: pytest.MonkeyPatch) -> ImapServer:
    """The module's server emptied, with the BEVILLING_IMAP_* settings pointing at it."""
    shared_imap.reset()
    with shared_imap.session() as client:
        client.create(MAILBOX)
    for name, value in {"HOST": shared_imap.host, "PORT": str(shared_imap.port),
                        "USERNAME": shared_imap.username, "PASSWORD": shared_imap.password,
                        "MAILBOX": MAILBOX, "PROCESSED_MAILBOX": PROCESSED,
                        "QUARANTINE_MAILBOX": QUARANTINE, "TIMEOUT_SECONDS": "10"}.items():
        monkeypatch.setenv(f"BEVILLING_IMAP_{name}", value)
    return shared_imap


def out_of_office(mail: ApprovalMail) -> EmailMessage:
    message = reply(mail, body="Jeg er på ferie til og med 20. oktober.")
    del message["Subject"]
    message["Subject"] = "Automatisk svar: " + mail.subject
    message["Auto-Submitted"] = "auto-replied"
    return message


def decided_steps(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.execute(select(col(ApprovalStep.stage_key)).where(
            col(ApprovalStep.decided_at).is_not(None))).scalars())


def cursor(imap: ImapServer, engine: Engine) -> CursorPosition | None:
    return load_cursor(engine, cursor_key(host=imap.host, port=imap.port,
                                          username=imap.username, mailbox=MAILBOX))


async def latest_artifact(key: str) -> Any:
    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert artifacts, f"no artifact {key!r}"
    return max(artifacts, key=lambda a: str(a.created))


async def test_reply_decides_auto_reply_and_duplicate_are_dropped_all_are_moved(
    imap: ImapServer, engine: Engine,
) -> None:
    mail = submitted_request(engine, get_settings())
    answer = reply(mail).as_bytes()
    uids = imap.append_many([answer, out_of_office(mail).as_bytes(), answer], mailbox=MAILBOX)

    summary = await process_inbox()

    assert summary["outcomes"] == {"decision": 1, "ignored-automated": 1, "duplicate": 1}
    assert decided_steps(engine) == ["afdelingschef"]
    assert outbox_recipients(engine).count(NEXT_APPROVER) == 1
    assert imap.uids(mailbox=MAILBOX) == []
    assert len(imap.uids(mailbox=PROCESSED)) == 3
    assert imap.uids(mailbox=QUARANTINE) == []
    assert cursor(imap, engine) == CursorPosition(imap.uidvalidity(mailbox=MAILBOX), max(uids))
    report = await latest_artifact("inbox-report")
    assert "| decision | 1 |" in str(report.data)
    assert "| duplicate | 1 |" in str(report.data)

    again = await process_inbox()

    assert again["outcomes"] == {}
    assert cursor(imap, engine) == CursorPosition(imap.uidvalidity(mailbox=MAILBOX), max(uids))


async def test_a_new_uidvalidity_resets_the_cursor_and_decides_nothing_twice(
    imap: ImapServer, engine: Engine,
) -> None:
    mail = submitted_request(engine, get_settings())
    answer = reply(mail).as_bytes()
    first_uids = imap.append_many([answer, out_of_office(mail).as_bytes()], mailbox=MAILBOX)
    await process_inbox()
    old = cursor(imap, engine)
    assert old is not None
    assert old.last_uid == max(first_uids)

    imap.recreate(MAILBOX)
    # pymap restarts UIDs at 101: without the reset these would hide below the old cursor.
    new_uids = imap.append_many([answer, out_of_office(mail).as_bytes()], mailbox=MAILBOX)
    assert min(new_uids) <= old.last_uid
    summary = await process_inbox()

    assert summary["cursor_reset"] is True
    assert summary["outcomes"] == {"duplicate": 1, "ignored-automated": 1}
    assert decided_steps(engine) == ["afdelingschef"]
    assert outbox_recipients(engine).count(NEXT_APPROVER) == 1
    assert imap.uids(mailbox=MAILBOX) == []
    assert len(imap.uids(mailbox=PROCESSED)) == 4
    new_validity = imap.uidvalidity(mailbox=MAILBOX)
    assert new_validity != old.uidvalidity
    assert cursor(imap, engine) == CursorPosition(new_validity, max(new_uids))
    assert "UIDVALIDITY changed" in str((await latest_artifact("inbox-report")).data)


def test_cursor_keeps_unsigned_32_bit_uids(engine: Engine) -> None:
    # pymap's UIDVALIDITY exceeds 2**31 - 1 in half of every ~18 h; the column is INTEGER.
    key = "imap://u@h:143/INBOX"
    for position in (CursorPosition(2**32 - 1, 2**31), CursorPosition(2**31 - 1, 7)):
        save_cursor(engine, key, position, now=datetime.now(UTC))
        assert load_cursor(engine, key) == position


async def test_mail_left_behind_by_a_crash_before_the_move_is_read_again_and_moved(
    imap: ImapServer, engine: Engine,
) -> None:
    mail = submitted_request(engine, get_settings())
    answer = reply(mail).as_bytes()
    uid = imap.append(answer, mailbox=MAILBOX)
    # The state a crash after "commit, save the cursor" and before UID MOVE leaves behind.
    first = ingest_raw(engine, answer, source="imap", settings=get_settings(),
                       now=datetime.now(UTC))
    assert first.outcome == "decision"
    save_cursor(engine, cursor_key(host=imap.host, port=imap.port, username=imap.username,
                                   mailbox=MAILBOX),
                CursorPosition(imap.uidvalidity(mailbox=MAILBOX), uid), now=datetime.now(UTC))

    summary = await process_inbox()

    assert summary["outcomes"] == {"duplicate": 1}
    assert imap.uids(mailbox=MAILBOX) == []
    assert imap.uids(mailbox=PROCESSED) != []
    assert decided_steps(engine) == ["afdelingschef"]
    assert outbox_recipients(engine).count(NEXT_APPROVER) == 1


async def test_without_imap_settings_the_flow_does_nothing(app_env: dict[str, str]) -> None:
    summary = await process_inbox()

    assert summary["configured"] is False
    assert summary["outcomes"] == {}
