"""Prefect flow `escalate-approvals`: digest reminders before deadlines, escalation after."""

from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, task

from db.engine import transaction
from flows import runtime
from flows.approvals import publish_pending_approvals
from workflow.context import make_context
from workflow.follow_up import follow_up


@task(name="remind-and-escalate")
def remind_and_escalate(now: datetime | None = None) -> dict[str, Any]:
    """One transaction: digests for steps due tomorrow (working day), escalation of overdue ones."""
    ctx = make_context(runtime.settings(), now=now or runtime.utc_now())
    with transaction(runtime.engine()) as session:
        report = follow_up(session, ctx=ctx)
    get_run_logger().info(
        "%d digests for %d steps; escalated %d",
        report.digests,
        report.reminded_steps,
        len(report.escalated),
    )
    return {
        "digests": report.digests,
        "reminded_steps": report.reminded_steps,
        "escalated": report.escalated,
        "not_escalated": report.not_escalated,
        "closed_day": report.closed_day,
        "moved": report.moved,
    }


@flow(name="escalate-approvals", flow_run_name="escalate-approvals", log_prints=True)
def escalate_approvals(now: datetime | None = None) -> dict[str, Any]:
    """Remind approvers a working day before their deadline; escalate after it."""
    summary = remind_and_escalate(now)
    publish_pending_approvals()
    return summary
