"""Prefect flow `process-inbox`: read new approval replies over IMAP and ingest each one.

Order per batch: ingest every message (each in its own transaction) → save the cursor → only then
`UID MOVE` the handled messages to the processed folder (those whose ingestion raised go to the
quarantine folder). A crash between the commit and the move leaves handled mail in the inbox;
every run therefore starts reading at UID 0 for one batch, so leftovers are read again, dropped
by the Message-ID dedupe and moved — at most one batch of re-reading per run — and then goes on
after the saved cursor. A new UIDVALIDITY voids the cursor; re-reading is safe for the same reason.
"""

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError

from db.imap_cursor import CursorPosition, cursor_key, load_cursor, position_for, save_cursor
from flows import runtime
from mail.imap_inbox import FetchedMessage, ImapConfig, ImapInbox
from workflow.context import ConfigurationError
from workflow.events import announce_decision
from workflow.inbound import ingest_raw

# Not the message's fault (database down, schema wrong, settings missing): stop and leave the
# mail for the next run instead of parking every message in the quarantine folder.
_STOP_THE_RUN = (OperationalError, InterfaceError, ProgrammingError, ConfigurationError)


class ImapSettings(BaseSettings):
    """`BEVILLING_IMAP_*`: the mailbox approval replies arrive in; unset host = no polling."""

    model_config = SettingsConfigDict(env_prefix="BEVILLING_IMAP_", env_file=".env",
                                      extra="ignore", frozen=True)

    host: str | None = None
    port: int | None = Field(default=None, description="Default 993 with SSL, else 143.")
    username: str | None = None
    password: SecretStr | None = None
    password_block: str | None = Field(
        default=None, description="Name of a Prefect Secret block holding the IMAP password.")
    use_ssl: bool = False
    mailbox: str = "INBOX"
    processed_mailbox: str = "Processed"
    quarantine_mailbox: str = "Quarantine"
    timeout_seconds: float = Field(default=30.0, gt=0)
    batch_size: int = Field(default=100, ge=1, le=1000)
    max_batches: int = Field(default=20, ge=1)


class ImapNotConfigured(ConfigurationError):
    """IMAP is half-configured: a host without a user or password."""


async def imap_config(imap: ImapSettings) -> ImapConfig | None:
    """The connection settings, or None when no IMAP host is set."""
    if not imap.host:
        return None
    password = imap.password.get_secret_value() if imap.password else None
    if password is None and imap.password_block:
        from prefect.blocks.system import Secret

        block: Secret[str] = await Secret.aload(imap.password_block)
        password = str(block.get())
    if not imap.username or password is None:
        raise ImapNotConfigured(
            "BEVILLING_IMAP_HOST is set but BEVILLING_IMAP_USERNAME and BEVILLING_IMAP_PASSWORD "
            "(or BEVILLING_IMAP_PASSWORD_BLOCK) are not")
    return ImapConfig(host=imap.host, port=imap.port or (993 if imap.use_ssl else 143),
                      username=imap.username, password=password, use_ssl=imap.use_ssl,
                      mailbox=imap.mailbox, processed_mailbox=imap.processed_mailbox,
                      quarantine_mailbox=imap.quarantine_mailbox,
                      timeout_seconds=imap.timeout_seconds)


@dataclass
class InboxReport:
    """What one run did: outcomes, the messages held back, the cursor it left."""

    configured: bool = True
    outcomes: Counter[str] = field(default_factory=Counter)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    moved_processed: int = 0
    moved_quarantine: int = 0
    batches: int = 0
    uidvalidity: int | None = None
    last_uid: int = 0
    cursor_reset: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Plain values for the flow result."""
        return {"configured": self.configured, "outcomes": dict(self.outcomes),
                "quarantined": self.quarantined, "moved_processed": self.moved_processed,
                "moved_quarantine": self.moved_quarantine, "batches": self.batches,
                "uidvalidity": self.uidvalidity, "last_uid": self.last_uid,
                "cursor_reset": self.cursor_reset}


async def _ingest(message: FetchedMessage, *, now: datetime | None, report: InboxReport) -> bool:
    """Ingest one message; True if handled, False if it belongs in the quarantine folder."""
    settings = runtime.settings()
    try:
        result = await asyncio.to_thread(ingest_raw, runtime.engine(), message.raw, source="imap",
                                         settings=settings, now=now or runtime.utc_now())
    except _STOP_THE_RUN:
        raise
    except Exception as exc:  # anything else is about this message: park it, go on
        get_run_logger().exception("UID %d could not be ingested", message.uid)
        report.outcomes["error"] += 1
        report.quarantined.append({"uid": message.uid, "message_id": "", "outcome": "error",
                                   "detail": f"{type(exc).__name__}: {exc}"[:300]})
        return False
    report.outcomes[result.outcome] += 1
    if result.outcome.startswith(("quarantined", "refused")):
        report.quarantined.append({"uid": message.uid, "message_id": result.message_id,
                                   "outcome": result.outcome, "detail": result.detail[:300]})
    return True


async def ingest_mailbox(config: ImapConfig, imap: ImapSettings, *,
                         now: datetime | None = None) -> InboxReport:
    """Fetch, ingest, save the cursor, then move — batch by batch, within the run's bounds."""
    engine = runtime.engine()
    key = cursor_key(host=config.host, port=config.port, username=config.username,
                     mailbox=config.mailbox)
    saved = load_cursor(engine, key)
    report = InboxReport()
    async with ImapInbox(config) as inbox:
        uidvalidity = inbox.uidvalidity
        start = position_for(saved, uidvalidity=uidvalidity)
        report.uidvalidity, report.last_uid = uidvalidity, start
        report.cursor_reset = saved is not None and saved.uidvalidity != uidvalidity
        # First batch from 0: picks up leftovers (handled, not moved) before new mail.
        after = 0
        for _ in range(imap.max_batches):
            batch = await inbox.fetch_batch(after_uid=after, limit=imap.batch_size)
            if not batch:
                break
            report.batches += 1
            handled: list[int] = []
            failed: list[int] = []
            stopped: BaseException | None = None
            for message in batch:
                try:
                    (handled if await _ingest(message, now=now, report=report)
                     else failed).append(message.uid)
                except _STOP_THE_RUN as exc:
                    stopped = exc
                    break
            done = handled + failed
            if done:
                report.last_uid = max(report.last_uid, *done)
                save_cursor(engine, key, CursorPosition(uidvalidity, report.last_uid),
                            now=now or runtime.utc_now())
                await inbox.move(handled, to=config.processed_mailbox)
                await inbox.move(failed, to=config.quarantine_mailbox)
                report.moved_processed += len(handled)
                report.moved_quarantine += len(failed)
            if stopped is not None:
                raise stopped
            after = max(report.last_uid, batch[-1].uid)
        if report.batches == 0 and (saved is None or report.cursor_reset):
            save_cursor(engine, key, CursorPosition(uidvalidity, report.last_uid),
                        now=now or runtime.utc_now())
    return report


def report_markdown(report: InboxReport, *, mailbox: str) -> str:
    """The `inbox-report` artifact: counts per outcome and the messages held back."""
    lines = [f"## Inbox `{mailbox}`", ""]
    if report.cursor_reset:
        lines += ["UIDVALIDITY changed: the cursor was reset and the mailbox read again.", ""]
    lines += ["| outcome | messages |", "|---|---|"]
    lines += [f"| {outcome} | {count} |" for outcome, count in sorted(report.outcomes.items())]
    if not report.outcomes:
        lines.append("| (no new mail) | 0 |")
    lines += ["", f"Moved to the processed folder: {report.moved_processed}; to the quarantine "
                  f"folder: {report.moved_quarantine}. Cursor: UID {report.last_uid} "
                  f"(UIDVALIDITY {report.uidvalidity})."]
    if report.quarantined:
        lines += ["", "### Quarantined or refused", "", "| UID | Message-ID | outcome | detail |",
                  "|---|---|---|---|"]
        lines += [f"| {q['uid']} | {_cell(q['message_id'])} | {q['outcome']} | "
                  f"{_cell(q['detail'])} |" for q in report.quarantined]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


@task(name="ingest-new-mail")
async def ingest_new_mail(now: datetime | None = None) -> dict[str, Any]:
    """Read new mail over IMAP in batches, ingest it, move it; publish `inbox-report`."""
    logger = get_run_logger()
    imap = ImapSettings()
    config = await imap_config(imap)
    if config is None:
        logger.info("IMAP is not configured (BEVILLING_IMAP_HOST unset): nothing to read")
        return InboxReport(configured=False).as_dict()
    report = await ingest_mailbox(config, imap, now=now)
    if report.outcomes.get("decision"):
        announce_decision(source="process-inbox", request_key=None)
    logger.info("%s: %s; moved %d processed, %d quarantined; cursor UID %d",
                config.mailbox, dict(report.outcomes) or "no new mail", report.moved_processed,
                report.moved_quarantine, report.last_uid)
    await acreate_markdown_artifact(key="inbox-report",
                                    markdown=report_markdown(report, mailbox=config.mailbox),
                                    description="Approval replies read by the latest inbox run")
    return report.as_dict()


@flow(name="process-inbox", flow_run_name="process-inbox", log_prints=True)
async def process_inbox(now: datetime | None = None) -> dict[str, Any]:
    """Ingest new approval replies from the IMAP inbox; `now` is for tests that move the clock."""
    return await ingest_new_mail(now)
