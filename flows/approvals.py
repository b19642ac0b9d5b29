"""Prefect flow `route-budget-request`: route a draft request and mail its first approvers."""

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from sqlmodel import Session

from flows import runtime
from workflow.commands import submit_request
from workflow.events import OUTBOX_ENQUEUED, announce
from workflow.reports import pending_approvals


@task(name="record-steps-and-enqueue-mails")
def record_steps_and_enqueue_mails(request_key: str) -> dict[str, Any]:
    """Steps and the first approval mails in one transaction."""
    summary = submit_request(request_key, settings=runtime.settings(), engine=runtime.engine(),
                             now=runtime.utc_now(), actor="route-budget-request")
    get_run_logger().info(
        "%s: %d steps, mailed %s", request_key, summary["steps"], ", ".join(summary["mailed_to"])
    )
    announce(OUTBOX_ENQUEUED, count=len(summary["mailed_to"]), source="route-budget-request",
             request_key=request_key)
    return summary


@task(name="publish-pending-approvals")
def publish_pending_approvals() -> int:
    """Table artifact of every pending step with its age and answer time (overdue first)."""
    now = runtime.utc_now()
    with Session(runtime.engine()) as session:
        rows = pending_approvals(session, today=runtime.local_today(now), now=now)
    create_table_artifact(
        key="pending-approvals",
        table=[row.as_row() for row in rows],
        description="Pending approval steps; overdue ones are marked ⚠",
    )
    return len(rows)


@flow(name="route-budget-request", flow_run_name="route-{request_key}", log_prints=True)
def route_budget_request(request_key: str) -> dict[str, Any]:
    """Route one budget request through its approval policy."""
    summary = record_steps_and_enqueue_mails(request_key)
    publish_pending_approvals()
    return summary


@flow(name="refresh-pending-approvals", flow_run_name="refresh-pending-approvals",
      log_prints=True)
def refresh_pending_approvals() -> int:
    """Republish the pending-approvals table (triggered by every decision)."""
    return publish_pending_approvals()
