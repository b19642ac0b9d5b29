"""Prefect flow `check-grant-deadlines`: enqueue due reminders (catching up missed days)."""

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from sqlmodel import Session

from db.deadlines import CheckReport, process_due_batch, upcoming_deadlines
from domain.reminders import DueReminder, SendDecision
from flows import runtime
from mail.reminder_mail import GrantFacts, reminder_mails
from models.outbox import NewMail

MAX_BATCHES = 10_000
EXPIRY_NOTICE_DAYS = 365


def enqueue_due(as_of: date, *, now: datetime | None = None,
                progress: Callable[[CheckReport], None] | None = None) -> dict[str, Any]:
    """Ledger + outbox rows for everything due on or before `as_of`, batch by batch."""
    settings = runtime.settings()
    engine = runtime.engine()
    calendar = runtime.calendar_around(as_of)
    moment = now or runtime.utc_now()
    report = CheckReport(as_of=as_of)

    def make_mails(reminder: DueReminder, late: bool, grant: GrantFacts) -> list[NewMail]:
        return reminder_mails(SendDecision(reminder, late), grant, as_of=as_of,
                              calendar=calendar, templates_dir=settings.templates_dir,
                              domain=settings.mail_domain, now=moment)

    for _ in range(MAX_BATCHES):
        if not process_due_batch(engine, as_of=as_of, now=moment, make_mails=make_mails,
                                 domain=settings.mail_domain,
                                 expiry_notice_days=EXPIRY_NOTICE_DAYS, report=report):
            break
        if progress:
            progress(report)
    return {"as_of": as_of.isoformat(), "reminders": report.sent, "late": report.late,
            "expired": report.expired, "superseded": report.superseded,
            "too_old": report.too_old, "mails": report.mails, "grants": report.grant_keys}


@task(name="enqueue-due-reminders")
def enqueue_due_reminders(as_of: date) -> dict[str, Any]:
    """Enqueue everything due, logging progress per batch (one task run for all grants)."""
    logger = get_run_logger()
    return enqueue_due(as_of, progress=lambda r: logger.info(
        "batch %d: %d reminders enqueued so far", r.batches, r.sent))


@task(name="publish-upcoming-deadlines")
def publish_upcoming_deadlines(as_of: date) -> int:
    """Table artifact: grants ending in the next 12 months, with amounts and reminder counts."""
    with Session(runtime.engine()) as session:
        rows = upcoming_deadlines(session, start=as_of - timedelta(days=30),
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
