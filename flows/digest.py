"""Prefect flow `send-digest`: the admins' weekly overview mail."""

from datetime import datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime

from db.engine import transaction
from flows import runtime
from workflow.admin_digest import RunSummary, digest_mails
from workflow.context import make_context
from workflow.outbox import enqueue


async def recent_runs(since: datetime) -> list[RunSummary]:
    """Flow runs started since `since` from the Prefect API: failed ones first, then by time."""
    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)),
            limit=200,
        )
    summaries = [
        RunSummary(
            run.name,
            (run.state.name or "?") if run.state else "?",
            run.start_time.isoformat(timespec="minutes") if run.start_time else "",
        )
        for run in runs
    ]
    return sorted(summaries, key=lambda r: (r.state == "Completed", r.when))


@task(name="enqueue-admin-digest")
def enqueue_admin_digest(runs: list[RunSummary], since: datetime, now: datetime) -> int:
    """Render and enqueue the digest for every admin (one transaction)."""
    ctx = make_context(runtime.settings(), now=now)
    with transaction(runtime.engine()) as session:
        mails = digest_mails(session, runs=runs, ctx=ctx, since=since)
        enqueue(session, mails, now=now, domain=ctx.settings.mail_domain)
    return len(mails)


@flow(name="send-digest", flow_run_name="send-digest", log_prints=True)
async def send_digest(now: datetime | None = None) -> dict[str, Any]:
    """Mail the admins what ran, failed, is overdue and runs out within 90 days."""
    moment = now or runtime.utc_now()
    since = moment - timedelta(days=7)
    runs = await recent_runs(since)
    count = enqueue_admin_digest(runs, since, moment)
    get_run_logger().info("admin digest enqueued for %d admin(s), %d runs listed", count, len(runs))
    return {"admins": count, "runs": len(runs)}
