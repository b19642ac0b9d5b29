"""The weekly admin digest: what ran, what failed, what is overdue, what runs out soon."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from mail.formatting import long_date
from mail.render import render_mail
from models import InboundMessage, Outbox, OutboxState, Person
from models.outbox import NewMail
from workflow.context import WorkflowContext
from workflow.deadlines import upcoming_deadlines
from workflow.reports import pending_approvals

ADMIN_ROLE = "admin"


@dataclass(frozen=True)
class RunSummary:
    """One flow run as the digest lists it."""

    name: str
    state: str
    when: str


def digest_mails(
    session: Session, *, runs: list[RunSummary], ctx: WorkflowContext, since: datetime
) -> list[NewMail]:
    """One digest per active person with the admin role, in their language."""
    admins = list(
        session.execute(
            select(Person).where(col(Person.role) == ADMIN_ROLE, col(Person.active))
        ).scalars()
    )
    if not admins:
        return []
    failed = [
        {"to": ", ".join(o.recipients), "subject": o.subject, "error": o.last_error or ""}
        for o in session.execute(
            select(Outbox).where(
                col(Outbox.state) == OutboxState.FAILED, col(Outbox.created_at) >= since
            )
        ).scalars()
    ]
    quarantined = [
        {"from": m.from_address or "?", "outcome": m.outcome, "detail": m.detail}
        for m in session.execute(
            select(InboundMessage).where(
                col(InboundMessage.quarantined), col(InboundMessage.received_at) >= since
            )
        ).scalars()
    ]
    overdue = [p for p in pending_approvals(session, today=ctx.today, now=ctx.now) if p.overdue]
    ending = upcoming_deadlines(session, start=ctx.today, end=ctx.today + timedelta(days=90))
    mails = []
    for admin in admins:
        language = admin.language if admin.language in ("da", "en") else "da"
        context = {
            "lang": language,
            "recipient_name": admin.name,
            "period_text": f"{long_date(since.date(), language)} – "
                           f"{long_date(ctx.today, language)}",
            "runs": [run.__dict__ for run in runs],
            "failed_mails": failed,
            "quarantined": quarantined,
            "overdue": [
                {
                    "request": p.request_key,
                    "stage": p.stage,
                    "approver": p.approver,
                    "due": _day(p.due_date, language),
                }
                for p in overdue
            ],
            "ending": [
                {"title": g.title, "key": g.key, "end": _day(g.end_date, language)}
                for g in ending
                if g.status == "active"
            ],
        }
        rendered = render_mail(
            "admin_digest",
            language=language,
            context=context,
            templates_dir=ctx.settings.templates_dir,
        )
        mails.append(
            NewMail(
                key=f"admin-digest:{admin.email}:{ctx.today.isoformat()}",
                kind="admin_digest",
                subject_ref="admin",
                recipient=admin.email,
                subject=rendered.subject,
                body_text=rendered.text,
                body_html=rendered.html,
            )
        )
    return mails


def _day(day: date | None, language: str) -> str:
    return long_date(day, language) if day else "–"
