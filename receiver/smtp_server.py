"""SMTP receiver for `bevilling inbound serve`: approval replies and bounces straight from the MTA.

Only two kinds of address exist here, both on `settings.mail_domain`: `approvals+<token>@` (a
reply to an approval mail) and `bounce+<outbox id>-<tag>@` (the VERP return path of our own mail).
Anything else — and any token or bounce tag we never issued (a hash lookup) — is refused at
RCPT, before the sender transmits a byte of content. `receiver.bounded_smtp` refuses over-long
lines, line floods and connection floods as the bytes arrive.

Every accepted message goes through `workflow.inbound.ingest_raw` — the one ingestion path —
in a worker thread, and the 250 is sent only after its transaction has committed. A crash, a
database error or a slow database yields 451 (or no answer), so the sending MTA keeps the message
and retries; a retry that follows a commit we could not confirm is dropped by the Message-ID
dedupe. Mail is therefore never lost and never decided twice.
"""

import asyncio
import logging
import re
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from config.settings import Settings
from receiver.bounded_smtp import BoundedSMTP, ConnectionCount
from workflow.events import announce_decision
from workflow.inbound import ingest_raw
from workflow.recipients import issued_recipient

log = logging.getLogger(__name__)

TOKEN_PATTERN = r"approvals\+[a-z2-7]{26}"  # noqa: S105  (an address pattern, no secret)
VERP_PATTERN = r"bounce\+[0-9]{1,18}(?:-[a-z2-7]{16})?"
MAX_RECIPIENTS = 10
DEFAULT_TIMEOUT_SECONDS = 60.0
DEFAULT_INGEST_TIMEOUT_SECONDS = 45.0
DEFAULT_CONCURRENCY = 4
# 10 MB of 76-character base64 lines is about 140,000 lines; each costs aiosmtpd ~60 bytes more.
MAX_LINES_PER_MESSAGE = 250_000
MAX_CONNECTIONS = 200

UNKNOWN_RECIPIENT = "550 5.1.1 unknown recipient"
TOO_MANY_RECIPIENTS = "452 4.5.3 too many recipients"
ACCEPTED = "250 2.0.0 message accepted"
TRY_AGAIN = "451 4.3.0 temporary failure, please try again later"


def recipient_pattern(domain: str) -> re.Pattern[str]:
    """The addresses we accept at RCPT: approvals+<token>@ and bounce+<digits>@ on `domain`."""
    host = re.escape(domain.strip().rstrip(".").lower())
    return re.compile(rf"(?:{TOKEN_PATTERN}|{VERP_PATTERN})@{host}\.?", re.IGNORECASE)


class InboundHandler:
    """aiosmtpd handler: filter recipients at RCPT, ingest at DATA, answer 250 after the commit."""

    def __init__(self, engine: Engine, settings: Settings, *,
                 concurrency: int = DEFAULT_CONCURRENCY,
                 ingest_timeout: float = DEFAULT_INGEST_TIMEOUT_SECONDS) -> None:
        self._engine = engine
        self._settings = settings
        self._accept = recipient_pattern(settings.mail_domain)
        self._ingest_timeout = ingest_timeout
        self._concurrency = concurrency
        # Created lazily: it must belong to the controller's event loop, not the caller's.
        self._slots: asyncio.Semaphore | None = None
        self.outcomes: dict[str, int] = {}

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        """Accept only approvals+<token>@ and bounce+<id>-<tag>@ on our domain that we issued."""
        bare = address.strip().strip("<>").strip()
        if not self._accept.fullmatch(bare):
            log.info("refused recipient %r from %s", address, session.peer)
            return UNKNOWN_RECIPIENT
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return TOO_MANY_RECIPIENTS
        try:
            issued = await asyncio.to_thread(
                issued_recipient, self._engine, bare, domain=self._settings.mail_domain)
        except Exception:  # the database is away: the MTA keeps the mail and retries
            log.exception("recipient lookup for %r failed: answered 451", address)
            return TRY_AGAIN
        if not issued:
            log.info("refused never-issued recipient %r from %s", address, session.peer)
            return UNKNOWN_RECIPIENT
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Ingest the message in a worker thread; 250 only once its transaction committed."""
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes | bytearray) or not envelope.rcpt_tos:
            return "554 5.5.1 no valid recipients"
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._concurrency)
        try:
            async with self._slots:
                result = await asyncio.wait_for(
                    asyncio.to_thread(
                        ingest_raw, self._engine, bytes(raw), source="smtp",
                        settings=self._settings, now=datetime.now(UTC),
                        envelope_recipients=tuple(envelope.rcpt_tos)),
                    timeout=self._ingest_timeout)
        except TimeoutError:
            # The thread may still commit; the sender's retry is then a duplicate, not a loss.
            log.warning("ingestion of mail from %s took over %.0f s: answered 451",
                        envelope.mail_from, self._ingest_timeout)
            return TRY_AGAIN
        except Exception:  # any failure: the MTA keeps the mail and retries
            log.exception("ingestion of mail from %s failed: answered 451", envelope.mail_from)
            return TRY_AGAIN
        if result.outcome == "decision":  # committed: start delivery now, not at the schedule
            await asyncio.to_thread(announce_decision, source="inbound-smtp",
                                    request_key=result.request_key)
        self.outcomes[result.outcome] = self.outcomes.get(result.outcome, 0) + 1
        log.info("ingested %s: %s %s", result.message_id, result.outcome, result.detail)
        return ACCEPTED


class _BoundedController(Controller):
    """aiosmtpd's Controller serving `BoundedSMTP` (its documented `factory` hook)."""

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._connections = ConnectionCount()

    def factory(self) -> BoundedSMTP:
        return BoundedSMTP(self.handler, connections=self._connections,
                           max_connections=MAX_CONNECTIONS, max_lines=MAX_LINES_PER_MESSAGE,
                           **self.SMTP_kwargs)


def start_inbound_server(engine: Engine, settings: Settings, *, host: str, port: int,
                         timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
                         concurrency: int = DEFAULT_CONCURRENCY) -> Controller:
    """Start the receiver in its own thread on host:port and return the running Controller."""
    handler = InboundHandler(engine, settings, concurrency=concurrency,
                             ingest_timeout=min(DEFAULT_INGEST_TIMEOUT_SECONDS,
                                                timeout_seconds * 0.75))
    controller = _BoundedController(
        handler, hostname=host, port=port, server_hostname=settings.mail_domain,
        # `timeout` closes a connection idle that long between commands (aiosmtpd: 421).
        data_size_limit=settings.inbound_max_bytes, timeout=timeout_seconds, ready_timeout=10.0)
    controller.start()
    return controller
