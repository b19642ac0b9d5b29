"""Prefect flow `route-budget-request`: route a draft request and mail its first approvers."""

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from sqlmodel import Session

from db.engine import transaction
from flows import runtime
from workflow.context import make_context
from workflow.reports import pending_approvals
from workflow.routing import submit


@task(name="record-steps-and-enqueue-mails")
def record_steps_and_enqueue_mails(request_key: str) -> dict[str, Any]:
    """Steps and the first approval mails in one transaction."""
    ctx = make_context(runtime.settings(), now=runtime.utc_now())
    with transaction(runtime.engine()) as session:
        result = submit(session, request_key, ctx=ctx, actor="route-budget-request")
    get_run_logger().info(
        "%s: %d steps, mailed %s", request_key, result.steps, ", ".join(result.mailed_to)
    )
    return {
        "request": result.request_key,
        "version": result.version,
        "steps": result.steps,
        "mailed_to": list(result.mailed_to),
        "skipped_stages": list(result.skipped_stages),
    }


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
