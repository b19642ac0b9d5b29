"""Approvers who have not answered: one digest reminder a working day before the deadline,
then escalation once it has passed. At most two reminders per step, ever."""

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlmodel import Session, col

from db.audit import NewEvent, append_events
from domain.approval_state import RequestState, StepState
from mail.formatting import long_date
from mail.render import render_mail
from models import ApprovalStep, BudgetRequest
from models.outbox import NewMail
from workflow.context import WorkflowContext
from workflow.escalation import escalate_step
from workflow.outbox import enqueue
from workflow.step_holders import retarget_pending
from workflow.steps import issue_tokens
from workflow.tokens import sign_link
from workflow.views import PersonView, person_views

MAX_REMINDERS = 2


@dataclass
class FollowUpReport:
    """What one run did."""

    digests: int = 0
    reminded_steps: int = 0
    escalated: list[str] = field(default_factory=list)
    not_escalated: list[str] = field(default_factory=list)
    closed_day: bool = False
    moved: int = 0


def _due_steps(session: Session) -> list[tuple[ApprovalStep, BudgetRequest]]:
    rows = session.execute(
        select(ApprovalStep, BudgetRequest)
        .join(BudgetRequest, col(BudgetRequest.id) == col(ApprovalStep.request_id))
        .where(
            col(ApprovalStep.state) == StepState.PENDING,
            col(BudgetRequest.state) == RequestState.PENDING,
            col(ApprovalStep.version) == col(BudgetRequest.version),
            col(ApprovalStep.due_date).is_not(None),
            col(ApprovalStep.reminders_sent) < MAX_REMINDERS,
        )
        .order_by(col(ApprovalStep.id))
    ).all()
    return [(step, request) for step, request in rows]


def _digest(person: PersonView, items: list[dict[str, str]], *, ctx: WorkflowContext) -> NewMail:
    language = person.language if person.language in ("da", "en") else "da"
    rendered = render_mail(
        "approval_digest",
        language=language,
        templates_dir=ctx.settings.templates_dir,
        context={"lang": language, "recipient_name": person.name, "items": items},
    )
    return NewMail(
        key=f"digest:{person.email}:{ctx.today.isoformat()}",
        kind="approval_digest",
        subject_ref=f"person:{person.email}",
        recipient=person.email,
        subject=rendered.subject,
        body_text=rendered.text,
        body_html=rendered.html,
    )


def follow_up(session: Session, *, ctx: WorkflowContext) -> FollowUpReport:
    """Send due digests and escalate overdue steps, in the caller's transaction."""
    report = FollowUpReport()
    if not ctx.calendar.is_working_day(ctx.today):
        # Nobody is chased on a weekend or holiday; the next working day's run catches up.
        report.closed_day = True
        return report
    events: list[NewEvent] = []
    # Delegations that started or ended since the last run: steps go to today's holder first,
    # so digests and escalation reach someone who is at work.
    report.moved = len(retarget_pending(session, ctx=ctx, events=events,
                                        why=f"stedfortræderaftaler {ctx.today.isoformat()}"))
    remind: dict[int, list[tuple[ApprovalStep, BudgetRequest]]] = defaultdict(list)
    for step, request in _due_steps(session):
        if step.due_date is None:
            continue
        if ctx.today > step.due_date:
            result = escalate_step(
                session,
                step.id or 0,
                ctx=ctx,
                events=events,
                reason=f"no answer by {step.due_date.isoformat()}",
            )
            step.reminders_sent = MAX_REMINDERS
            (report.escalated if result.escalated else report.not_escalated).append(
                f"{request.key}/{step.stage_key}: {result.target_email or result.reason}"
            )
        elif step.reminders_sent == 0 and ctx.today >= ctx.calendar.subtract_working_days(
            step.due_date, 1
        ):
            remind[step.approver_id].append((step, request))
    people = person_views(session, set(remind))
    mails = []
    for person_id, pairs in remind.items():
        person = people[person_id]
        language = person.language if person.language in ("da", "en") else "da"
        items = []
        for step, request in pairs:
            token, _ = issue_tokens(session, [step.id or 0], version=request.version, ctx=ctx)[
                step.id or 0
            ]
            step.reminders_sent += 1
            items.append(
                {
                    "title": request.title,
                    "key": request.key,
                    "stage": step.stage_title_da if language == "da" else step.stage_title_en,
                    "due_text": long_date(step.due_date, language) if step.due_date else "",
                    "url": f"{ctx.settings.web_base_url.rstrip('/')}/confirm/"
                    f"{sign_link(token, secret=ctx.token_secret, now=ctx.now)}",
                }
            )
            report.reminded_steps += 1
        mails.append(_digest(person, items, ctx=ctx))
        events.append(
            NewEvent(
                "approver.reminded",
                f"person:{person.email}",
                details={"steps": [s.id for s, _ in pairs]},
            )
        )
    enqueue(session, mails, now=ctx.now, domain=ctx.settings.mail_domain)
    report.digests = len(mails)
    append_events(session, events, now=ctx.now)
    return report
