"""Prefect flow `check-grant-deadlines`: enqueue due reminders (catching up missed days)."""

from datetime import date, timedelta
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact

from flows import runtime
from workflow.deadlines import enqueue_due, upcoming_deadlines_of
from workflow.events import OUTBOX_ENQUEUED, announce


@task(name="enqueue-due-reminders")
def enqueue_due_reminders(as_of: date) -> dict[str, Any]:
    """Enqueue everything due, logging progress per batch (one task run for all grants)."""
    logger = get_run_logger()
    summary = enqueue_due(as_of, now=runtime.utc_now(), progress=lambda r: logger.info(
        "batch %d: %d reminders enqueued so far", r.batches, r.sent))
    announce(OUTBOX_ENQUEUED, count=summary["mails"], source="check-grant-deadlines")
    return summary


@task(name="publish-upcoming-deadlines")
def publish_upcoming_deadlines(as_of: date) -> int:
    """Table artifact: grants ending in the next 12 months, with amounts and reminder counts."""
    rows = upcoming_deadlines_of(runtime.engine(), start=as_of - timedelta(days=30),
                                 end=as_of + timedelta(days=365))
    table = [{"grant": r.key, "title": r.title, "end date": r.end_date.isoformat(),
              "days left": (r.end_date - as_of).days, "status": r.status, "owner": r.owner_email,
              "reminders sent": r.reminders_sent, "reminders planned": r.reminders_planned}
             for r in rows]
    create_table_artifact(key="upcoming-deadlines", table=table,
                          description=f"Grants ending within 12 months of {as_of.isoformat()}")
    return len(table)


def _run_name() -> str:
    from prefect.runtime import flow_run

    as_of = flow_run.parameters.get("as_of")
    return f"deadlines-{as_of or runtime.scheduled_day().isoformat()}"


@flow(name="check-grant-deadlines", flow_run_name=_run_name, log_prints=True)
def check_grant_deadlines(as_of: date | None = None) -> dict[str, Any]:
    """Enqueue every reminder due on or before `as_of` (default: the scheduled day)."""
    day = as_of or runtime.scheduled_day()
    summary = enqueue_due_reminders(day)
    publish_upcoming_deadlines(day)
    return summary
