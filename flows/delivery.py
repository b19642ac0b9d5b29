"""Prefect flow `deliver-outbox`: one task drains the outbox (the engine: workflow.delivery)."""

from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from workflow.delivery import drain_outbox


@task(name="send-due-mail")
async def send_due_mail(now: datetime | None = None) -> dict[str, Any]:
    """Claim, send and record every due outbox row, in batches inside this one task."""
    summary = await drain_outbox(now=now)
    get_run_logger().info("sent %(sent)d, retry later %(retry)d, failed %(failed)d", summary)
    if not (summary["sent"] or summary["retry"] or summary["failed"]):
        return summary  # an idle run publishes nothing: "9 sent" stays the latest report
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
