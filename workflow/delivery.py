"""The delivery engine: claim due outbox rows in batches, send, record the outcomes.

The Prefect flow `deliver-outbox` (flows/delivery.py) wraps `drain_outbox` in one task.

Each row's message was built and stored as wire bytes at enqueue (`Outbox.raw_message`), so
sending is `sendmail(bounce+<id>-<tag>@domain, [rcpt], raw)` and a retry sends the same bytes with
the same Message-ID. Approval and outcome mails are stored as a template context instead
(`mail.deferred`: a decision need not render them); right after claiming, the worker renders
those, stores the bodies and bytes in their rows, and only then sends, so retries are the same.
Outcomes are committed in groups (`OutcomeRecorder`): when `flush_every`
(default 25) results are pending, when the oldest pending result is `flush_after` seconds
(default 0.025) old, and at the end of every claimed batch — one transaction per group, the
rows' states and their audit events together. A flush runs inline on the event loop (no thread,
so the SQLite connection never crosses threads): a group of 25 costs a few ms (≈ 0.15–0.3 ms per
outcome, one commit), so the connections lose little, and nothing else runs while it commits.

Crash window (SIGKILL, power loss, lost DB connection) — what can be sent twice. A message is at
risk from the moment the server has answered 250 to its DATA until the commit of the group that
records it. With `c` = send_concurrency connections and `k` = flush_every, at any instant:

- at most `c` messages are accepted by the server with the 250 not yet read by us (one in flight
  per connection), and
- at most `k` results are read but not committed: the buffer holds ≤ k − 1 between flushes, and
  while a flush of k commits the connection that produced the k-th result is waiting on it, so
  at most c − 1 others are in flight.

So a crash resends at most **k + c − 1** messages (28 with the defaults; `resend_bound`), and
none was held uncommitted longer than `flush_after` plus one flush after its 250 was read. The
rows stay `sending` under the dead worker's lease; after `delivery_lease_seconds` another run
claims them and sends each once more — the same bytes, the same Message-ID, so recipients'
clients and our inbound matching can tell the copies apart. Every other message is either
committed as sent or was never accepted, and is sent exactly once. (A 250 lost to a read timeout
is a retry, too: the server may already hold that message; that is separate from this window.)
"""

import asyncio
import os
import random
import socket
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from config.settings import Settings, get_settings
from db.engine import get_engine
from db.outbox import SendOutcome, claim_batch, record_outcomes, store_materialized
from domain.retry import retry_delay
from mail.deferred import DeferredBodyError, materialize
from mail.mime import envelope_sender, raw_message_for
from mail.smtp_delivery import (
    DeliveryResult,
    PermanentDeliveryError,
    RateLimiter,
    SmtpConfig,
    deliver,
)
from models.outbox import ClaimedMail, Materialized

MAX_BATCHES = 1000
FLUSH_EVERY = 25
FLUSH_AFTER_SECONDS = 0.025


def resend_bound(*, concurrency: int, flush_every: int = FLUSH_EVERY) -> int:
    """How many messages one crash can make us send twice (see the module docstring)."""
    return flush_every + concurrency - 1


class OutcomeRecorder:
    """Buffers send outcomes and commits them in groups: k pending, the oldest `after` s old."""

    def __init__(self, engine: Engine, *, worker: str, clock: Callable[[], datetime],
                 every: int = FLUSH_EVERY, after: float = FLUSH_AFTER_SECONDS) -> None:
        self._engine = engine
        self._worker = worker
        self._clock = clock
        self._every = max(1, every)
        self._after = after
        self._pending: list[SendOutcome] = []
        self._timer: asyncio.TimerHandle | None = None
        self._error: Exception | None = None
        self.flushes = 0

    def add(self, outcome: SendOutcome) -> None:
        """Buffer one outcome; commit the group at once when it is full."""
        self._raise_deferred()
        self._pending.append(outcome)
        if len(self._pending) >= self._every:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._after, self._on_timer)

    def flush(self) -> None:
        """Commit everything pending (one transaction); re-raise a failed timed flush."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._raise_deferred()
        outcomes, self._pending = self._pending, []
        if outcomes:
            # If this raises, these outcomes stay uncommitted: their rows stay `sending` and are
            # resent once after the lease, exactly as after a crash.
            record_outcomes(self._engine, outcomes, worker=self._worker, now=self._clock())
            self.flushes += 1

    def _on_timer(self) -> None:
        self._timer = None
        try:
            self.flush()
        except Exception as exc:  # a loop callback cannot raise: the next add/flush re-raises
            self._error = exc

    def _raise_deferred(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error


async def smtp_config(settings: Settings) -> SmtpConfig:
    """SMTP settings; the password may come from a Prefect Secret block instead of the env."""
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    if password is None and settings.smtp_password_block:
        from prefect.blocks.system import Secret

        block: Secret[str] = await Secret.aload(settings.smtp_password_block)
        password = str(block.get())
    return SmtpConfig(host=settings.smtp_host, port=settings.smtp_port,
                      username=settings.smtp_username, password=password,
                      starttls=settings.smtp_starttls, use_tls=settings.smtp_use_tls,
                      timeout=settings.smtp_timeout_seconds)


def _outcome(result: DeliveryResult, *, settings: Settings, now: datetime) -> SendOutcome:
    error = result.error
    if error is None:
        return SendOutcome(result.mail, "sent")
    if (isinstance(error, PermanentDeliveryError)
            or result.mail.attempts >= settings.delivery_max_attempts):
        return SendOutcome(result.mail, "failed", str(error), error.code)
    delay = retry_delay(result.mail.attempts, base_seconds=settings.delivery_backoff_seconds,
                        draw=random.random())  # noqa: S311  (jitter, not security)
    return SendOutcome(result.mail, "retry", str(error), error.code, retry_at=now + delay)


def materialize_batch(
    engine: Engine, batch: Sequence[ClaimedMail], *, worker: str, templates_dir: Path
) -> tuple[list[ClaimedMail], list[SendOutcome]]:
    """Render the deferred mails of a claimed batch and store them; (sendable, failed).

    A mail whose stored context cannot be rendered fails at once (no retry can fix it) and
    shows up in the delivery-failures artifact; the others are sent as if built at enqueue.
    """
    sendable: list[ClaimedMail] = []
    failed: list[SendOutcome] = []
    rendered: list[tuple[int, Materialized]] = []
    for mail in batch:
        if mail.raw_message is not None or mail.deferred_body is None:
            sendable.append(mail)
            continue
        try:
            done = materialize(mail, templates_dir=templates_dir)
        except DeferredBodyError as exc:
            failed.append(SendOutcome(mail, "failed", f"cannot render the mail: {exc}"))
            continue
        rendered.append((mail.id, done))
        sendable.append(replace(mail, body_text=done.body_text, body_html=done.body_html,
                                raw_message=done.raw_message))
    store_materialized(engine, rendered, worker=worker)
    return sendable, failed


async def drain_outbox(*, now: datetime | None = None, max_batches: int = MAX_BATCHES,
                       worker: str | None = None, flush_every: int = FLUSH_EVERY,
                       flush_after: float = FLUSH_AFTER_SECONDS) -> dict[str, Any]:
    """Send everything due until the outbox has nothing due; returns counts and failures."""
    settings = get_settings()
    engine = get_engine(settings.database_url)
    config = await smtp_config(settings)
    limiter = RateLimiter(settings.send_rate_per_minute)
    worker_id = worker or f"{socket.gethostname()}:{os.getpid()}"
    counts = {"sent": 0, "retry": 0, "failed": 0, "batches": 0}
    failures: list[dict[str, Any]] = []

    def clock() -> datetime:
        return now or datetime.now(UTC)

    def raw(mail: ClaimedMail) -> bytes:
        return raw_message_for(mail, sender=settings.mail_from,
                               sender_name=settings.mail_from_name, now=clock())

    def envelope(mail: ClaimedMail) -> str:
        return envelope_sender(mail.id, tag=mail.bounce_tag, domain=settings.mail_domain)

    recorder = OutcomeRecorder(engine, worker=worker_id, clock=clock, every=flush_every,
                               after=flush_after)

    async def on_result(result: DeliveryResult) -> None:
        outcome = _outcome(result, settings=settings, now=clock())
        recorder.add(outcome)
        counts[outcome.status] += 1
        if outcome.status == "failed":
            failures.append({"outbox id": result.mail.id, "to": ", ".join(result.mail.recipients),
                             "subject": result.mail.subject, "error": outcome.error or ""})

    for _ in range(max_batches):
        claimed = claim_batch(engine, worker=worker_id, now=clock(),
                              lease_seconds=settings.delivery_lease_seconds,
                              limit=settings.delivery_batch_size)
        if not claimed:
            break
        counts["batches"] += 1
        batch, unrenderable = materialize_batch(engine, claimed, worker=worker_id,
                                                templates_dir=settings.templates_dir)
        for outcome in unrenderable:
            recorder.add(outcome)
            counts["failed"] += 1
            failures.append({"outbox id": outcome.mail.id,
                             "to": ", ".join(outcome.mail.recipients),
                             "subject": outcome.mail.subject, "error": outcome.error or ""})
        try:
            await deliver(batch, config=config, build=raw, envelope_from=envelope,
                          concurrency=settings.send_concurrency, limiter=limiter,
                          on_result=on_result)
        finally:
            # Also when deliver fails: every 250 already read is worth recording.
            recorder.flush()
    return {**counts, "failures": failures}
