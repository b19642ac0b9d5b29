"""Where escalation ends: never back to someone who had the step; when nobody is left, the step
says so (`requests show`) and the admins are told, once."""

from sqlalchemy import select
from sqlmodel import Session, col

from db.audit import NewEvent
from models import ApprovalStep, BudgetRequest, Person
from workflow.context import WorkflowContext
from workflow.outbox import enqueue
from workflow.step_notices import step_notice_mail
from workflow.views import PersonView, person_views

EXHAUSTED = "escalation exhausted"
ADMIN_ROLE = "admin"


def had_step(session: Session, step: ApprovalStep) -> set[int]:
    """Everyone who has had this step so far: approvers and principals, back to the first."""
    had: set[int] = set()
    current: ApprovalStep | None = step
    while current is not None:
        had.add(current.approver_id)
        if current.on_behalf_of_id:
            had.add(current.on_behalf_of_id)
        current = (session.get(ApprovalStep, current.escalated_from_id)
                   if current.escalated_from_id is not None else None)
    return had


def admins(session: Session, *, ctx: WorkflowContext) -> list[PersonView]:
    """Active people with the admin role, plus BEVILLING_ADMIN_EMAILS (as unnamed recipients)."""
    ids = set(session.execute(select(col(Person.id)).where(
        col(Person.role) == ADMIN_ROLE, col(Person.active))).scalars())
    found = list(person_views(session, {i for i in ids if i is not None}).values())
    known = {p.email.lower() for p in found}
    found += [PersonView(0, email.lower(), email, "da", None)
              for email in ctx.settings.admin_emails if email.lower() not in known]
    return found


def tell_admins_exhausted(
    session: Session, step: ApprovalStep, request: BudgetRequest, *, reason: str,
    ctx: WorkflowContext, events: list[NewEvent],
) -> None:
    """Mark the step as having nobody left to escalate to, and mail the admins (once a step)."""
    if step.note.startswith(EXHAUSTED):
        return
    had = person_views(session, had_step(session, step))
    names = ", ".join(sorted(p.name for p in had.values()))
    step.note = f"{EXHAUSTED}: {reason}; had it: {names}"[:500]
    recipients = admins(session, ctx=ctx)
    mails = [step_notice_mail(
        recipient=admin, reason="exhausted",
        request={"key": request.key, "title": request.title, "version": request.version},
        stage={"da": step.stage_title_da, "en": step.stage_title_en}, facts={"had": names},
        key=f"exhausted:{step.id}:{admin.email}", ctx=ctx) for admin in recipients]
    enqueue(session, mails, now=ctx.now, domain=ctx.settings.mail_domain)
    events.append(NewEvent("step.escalation_exhausted", f"request:{request.key}", details={
        "step": step.id, "reason": reason, "had": sorted(p.email for p in had.values()),
        "told": [a.email for a in recipients]}))
