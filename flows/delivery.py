"""Prefect flow `deliver-outbox`: claim due outbox rows in batches, send, record each outcome."""

import os
import random
import socket
from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from config.settings import Settings
from db.outbox import SendOutcome, claim_batch, record_outcomes
from domain.retry import retry_delay
from flows import runtime
from mail.mime import build_message, envelope_sender
from mail.smtp_delivery import (
    DeliveryResult,
    PermanentDeliveryError,
    RateLimiter,
    SmtpConfig,
    deliver,
)
from models.outbox import ClaimedMail

MAX_BATCHES = 1000


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


async def drain_outbox(*, now: datetime | None = None, max_batches: int = MAX_BATCHES,
                       worker: str | None = None) -> dict[str, Any]:
    """Send everything due until the outbox has nothing due; returns counts and failures."""
    settings = runtime.settings()
    engine = runtime.engine()
    config = await smtp_config(settings)
    limiter = RateLimiter(settings.send_rate_per_minute)
    worker_id = worker or f"{socket.gethostname()}:{os.getpid()}"
    counts = {"sent": 0, "retry": 0, "failed": 0, "batches": 0}
    failures: list[dict[str, Any]] = []

    def build(mail: ClaimedMail) -> Any:
        return build_message(mail, sender=settings.mail_from, sender_name=settings.mail_from_name,
                             now=clock())

    def envelope(mail: ClaimedMail) -> str:
        return envelope_sender(mail.id, domain=settings.mail_domain)

    def clock() -> datetime:
        return now or runtime.utc_now()

    async def on_result(result: DeliveryResult) -> None:
        # Commit each outcome at once: a crash can then resend at most the one message whose
        # 250 arrived just before it (same Message-ID).
        outcome = _outcome(result, settings=settings, now=clock())
        record_outcomes(engine, [outcome], worker=worker_id, now=clock())
        counts[outcome.status] += 1
        if outcome.status == "failed":
            failures.append({"outbox id": result.mail.id, "to": ", ".join(result.mail.recipients),
                             "subject": result.mail.subject, "error": outcome.error or ""})

    for _ in range(max_batches):
        batch = claim_batch(engine, worker=worker_id, now=clock(),
                            lease_seconds=settings.delivery_lease_seconds,
                            limit=settings.delivery_batch_size)
        if not batch:
            break
        counts["batches"] += 1
        await deliver(batch, config=config, build=build, envelope_from=envelope,
                      concurrency=settings.send_concurrency, limiter=limiter, on_result=on_result)
    return {**counts, "failures": failures}


@task(name="send-due-mail")
async def send_due_mail(now: datetime | None = None) -> dict[str, Any]:
    """Claim, send and record every due outbox row, in batches inside this one task."""
    summary = await drain_outbox(now=now)
    get_run_logger().info("sent %(sent)d, retry later %(retry)d, failed %(failed)d", summary)
    await acreate_markdown_artifact(
        key="delivery-report",
        markdown=(f"## Outbox delivery\n\n| sent | retried | failed |\n|---|---|---|\n"
                  f"| {summary['sent']} | {summary['retry']} | {summary['failed']} |\n"),
        description="Messages handled by the latest delivery run",
    )
    if summary["failures"]:
        await acreate_table_artifact(key="delivery-failures", table=summary["failures"],
                                    description="Mails the SMTP server refused for good")
    return summary


@flow(name="deliver-outbox", flow_run_name="deliver-outbox", log_prints=True)
async def deliver_outbox(now: datetime | None = None) -> dict[str, Any]:
    """Deliver every due outbox row; `now` is for tests that move the clock."""
    return await send_due_mail(now)
