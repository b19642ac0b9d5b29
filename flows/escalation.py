"""Prefect flow `escalate-approvals`: digest reminders before deadlines, escalation after."""

from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, task

from flows import runtime
from flows.approvals import publish_pending_approvals
from workflow.commands import remind_and_escalate_now
from workflow.events import OUTBOX_ENQUEUED, announce


@task(name="remind-and-escalate")
def remind_and_escalate(now: datetime | None = None) -> dict[str, Any]:
    """One transaction: digests for steps due tomorrow (working day), escalation of overdue ones."""
    summary = remind_and_escalate_now(settings=runtime.settings(), engine=runtime.engine(),
                                      now=now or runtime.utc_now())
    get_run_logger().info("%d digests for %d steps; escalated %d; moved %d", summary["digests"],
                          summary["reminded_steps"], len(summary["escalated"]), summary["moved"])
    announce(OUTBOX_ENQUEUED, count=summary["digests"] + len(summary["escalated"]),
             source="escalate-approvals")
    return summary


@flow(name="escalate-approvals", flow_run_name="escalate-approvals", log_prints=True)
def escalate_approvals(now: datetime | None = None) -> dict[str, Any]:
    """Remind approvers a working day before their deadline; escalate after it."""
    summary = remind_and_escalate(now)
    publish_pending_approvals()
    return summary
