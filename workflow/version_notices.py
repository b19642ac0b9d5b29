"""A new version tells at once everyone whose decision or open step it replaced, with what
changed (the new routing's own approval mails already say so to the people it mails now)."""

from sqlmodel import Session

from db.audit import NewEvent, append_events
from domain.approval_state import StepState, Verdict
from domain.request_changes import describe_changes
from models import BudgetRequest
from workflow.approval_mail import CONSULT_TEXT, DECISION_TEXT
from workflow.context import WorkflowContext
from workflow.outbox import enqueue
from workflow.step_notices import step_notice_mail
from workflow.views import person_views

# approver, stage title da/en, stage kind, state, verdict
Replaced = tuple[int, str, str, str, StepState, Verdict | None]



def tell_superseded(
    session: Session, request: BudgetRequest, replaced: list[Replaced], *, skip: set[str],
    ctx: WorkflowContext,
) -> None:
    """One notice per person and replaced step, unless they are among `skip` (mailed anew)."""
    if not replaced:
        return
    people = person_views(session, {approver for approver, *_ in replaced})
    mails = []
    for approver, title_da, title_en, kind, state, verdict in replaced:
        person = people[approver]
        if person.email in skip:
            continue
        language = person.language if person.language in ("da", "en") else "da"
        words = CONSULT_TEXT if kind == "consult" else DECISION_TEXT
        decided = words[language][verdict.value] if (
            state is not StepState.PENDING and verdict is not None) else ""
        mails.append(step_notice_mail(
            recipient=person, reason="voided",
            request={"key": request.key, "title": request.title, "version": request.version},
            stage={"da": title_da, "en": title_en},
            facts={"decided": decided, "changes": describe_changes(
                request.previous_snapshot, request.content_snapshot, language=language)},
            key=f"superseded:{request.key}:{request.version}:{approver}:{title_en}", ctx=ctx))
    enqueue(session, mails, now=ctx.now, domain=ctx.settings.mail_domain)
    append_events(session, [NewEvent("step.superseded_told", f"request:{request.key}", details={
        "version": request.version, "told": sorted(m.recipient for m in mails)})], now=ctx.now)
