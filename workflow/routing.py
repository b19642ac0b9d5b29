"""Submit a budget request: route it through the policy, record its steps, mail the first group."""

from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlmodel import Session, col

from db.audit import NewEvent, append_events
from db.requests import request_lines, totals
from domain.approval_routing import Delegation as DelegationFacts
from domain.approval_routing import PersonFacts, RequestFacts, route_request
from domain.approval_state import (
    IllegalTransition,
    RequestEvent,
    RequestState,
    StepState,
    next_request_state,
    start,
    supersede_for_new_version,
)
from models import ApprovalStep, Delegation, Person
from workflow.context import WorkflowContext
from workflow.steps import (
    apply_step_changes,
    current_steps,
    lock_request,
    mail_activated,
    revoke_tokens,
    snapshot,
)
from workflow.version_notices import tell_superseded


@dataclass(frozen=True)
class SubmitResult:
    """What submitting created."""

    request_key: str
    version: str
    steps: int
    mailed_to: tuple[str, ...]
    skipped_stages: tuple[str, ...]


def people_facts(session: Session) -> tuple[list[PersonFacts], dict[int, str], dict[str, int]]:
    """Every person as routing sees them, plus id ↔ email maps."""
    people = list(session.execute(select(Person)).scalars())
    emails = {p.id or 0: p.email for p in people}
    facts = [
        PersonFacts(
            email=p.email,
            name=p.name,
            roles=frozenset({p.role}),
            manager_email=emails.get(p.manager_id) if p.manager_id else None,
            active=p.active,
        )
        for p in people
    ]
    return facts, emails, {email: pid for pid, email in emails.items()}


def delegation_facts(session: Session, emails: dict[int, str]) -> list[DelegationFacts]:
    """Every recorded delegation."""
    return [
        DelegationFacts(emails[d.person_id], emails[d.substitute_id], d.starts, d.ends)
        for d in session.execute(select(Delegation)).scalars()
    ]


def submit(
    session: Session, key: str, *, ctx: WorkflowContext, actor: str = "system"
) -> SubmitResult:
    """Route a draft request and start its first stage group, all in the caller's transaction."""
    request = lock_request(session, key=key)
    state = RequestState(request.state)
    if state is not RequestState.DRAFT:
        raise IllegalTransition(request_key=key, step=None, state=state, event=RequestEvent.SUBMIT)
    people, emails, ids = people_facts(session)
    lines = request_lines(session, request.id or 0)
    total, yearly = totals(lines)
    facts = RequestFacts(
        key=request.key,
        category=request.category,
        requester_email=emails[request.requester_id],
        total_max=total,
        yearly_max=yearly,
        recurring=request.recurring,
        new_theme=request.new_theme,
    )
    policy = ctx.policy(request.policy_name)
    plan = route_request(
        facts,
        policy=policy,
        people=people,
        delegations=delegation_facts(session, emails),
        today=ctx.today,
        calendar=ctx.calendar,
    )
    rows = []
    for stage in plan.stages:
        for planned in stage.steps:
            rows.append(
                {
                    "request_id": request.id,
                    "version": request.version,
                    "stage_key": stage.key,
                    "stage_title_da": stage.policy.title_da,
                    "stage_title_en": stage.policy.title_en,
                    "stage_order": stage.order,
                    "stage_mode": stage.policy.mode,
                    "stage_quorum": stage.policy.required
                    if stage.policy.mode == "quorum"
                    else None,
                    "stage_kind": stage.policy.kind,
                    "answer_days": stage.policy.answer_working_days,
                    "approver_id": ids[planned.approver_email],
                    "on_behalf_of_id": ids[planned.on_behalf_of_email]
                    if planned.on_behalf_of_email
                    else None,
                    "state": StepState.WAITING,
                    "note": "; ".join(stage.notes)[:500],
                    "created_at": ctx.now,
                }
            )
    session.execute(insert(ApprovalStep), rows)
    steps = current_steps(session, request)
    outcome = start(snapshot(steps, emails), request_key=key, request_state=state)
    activated = apply_step_changes(
        session, outcome.step_changes, steps={s.id or 0: s for s in steps}, ctx=ctx
    )
    request.state = outcome.request_state
    request.submitted_at = ctx.now
    session.flush()
    events = [
        NewEvent(
            "request.submitted",
            f"request:{key}",
            actor=actor,
            details={
                "version": request.version,
                "policy": policy.name,
                "stages": [s.key for s in plan.stages],
                "skipped": [f"{s.stage_key}: {s.reason}" for s in plan.skipped],
            },
        )
    ]
    mails = mail_activated(session, request, activated, ctx=ctx, events=events)
    append_events(session, events, now=ctx.now)
    return SubmitResult(
        key,
        request.version,
        len(rows),
        tuple(m.recipient for m in mails),
        tuple(s.stage_key for s in plan.skipped),
    )


def resubmit_revised(session: Session, request_id: int, *, ctx: WorkflowContext) -> SubmitResult:
    """A pending request got a new version: every step of the old one reads `superseded`, the
    people whose decision or open step that voided are told with what changed (unless the new
    routing mails them at once), and the request is routed again."""
    request = lock_request(session, request_id=request_id)
    old_steps = list(
        session.execute(
            select(ApprovalStep).where(
                col(ApprovalStep.request_id) == request.id,
                col(ApprovalStep.version) != request.version,
                col(ApprovalStep.state) != StepState.SUPERSEDED,
            )
        ).scalars()
    )
    people, emails, _ = people_facts(session)
    del people
    told = [(s.approver_id, s.stage_title_da, s.stage_title_en, s.stage_kind, s.state,
             s.decision)
            for s in old_steps if s.state in (StepState.PENDING, StepState.APPROVED,
                                              StepState.REJECTED)]
    changes = supersede_for_new_version(snapshot(old_steps, emails), request_key=request.key)
    apply_step_changes(session, changes, steps={s.id or 0: s for s in old_steps}, ctx=ctx)
    revoke_tokens(session, [s.id or 0 for s in old_steps], now=ctx.now)
    request.state = next_request_state(
        request.state, event=RequestEvent.REVISE, request_key=request.key
    )
    session.flush()
    append_events(
        session,
        [
            NewEvent(
                "request.revised",
                f"request:{request.key}",
                details={"version": request.version, "voided_steps": [s.id for s in old_steps]},
            )
        ],
        now=ctx.now,
    )
    result = submit(session, request.key, ctx=ctx)
    tell_superseded(session, request, told, skip=set(result.mailed_to), ctx=ctx)
    return result
