"""Confirm links: the refusals, the page facts and the decision (rows: workflow.confirm_link)."""

import hashlib
import hmac
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from domain.answering import answer_refusal, answerer_refusal
from domain.approval_state import StepState, Verdict
from domain.errors import Refusal as Reason
from domain.errors import RefusedError
from domain.request_changes import describe_changes
from mail.formatting import greeting, long_date, money
from models import ApprovalStep
from web.texts import REQUEST_STATES, UI, language_of
from workflow.approval_mail import CATEGORY_TEXT, CONSULT_TEXT, DECISION_TEXT
from workflow.confirm_link import Target, reload_target
from workflow.context import WorkflowContext
from workflow.decisions import apply_decision
from workflow.tokens import LinkError, read_link
from workflow.views import RequestView, StepView, load_request_view

FORBIDDEN, NOT_FOUND, GONE = 403, 404, 410


class Refusal(RefusedError):
    """The link cannot be used; `reason` picks the explanation, `facts` fill it in."""

    def __init__(self, reason: Reason | str, language: str = "da",
                 facts: dict[str, str] | None = None) -> None:
        super().__init__(Reason(reason))
        self.language = language
        self.facts = dict(facts or {})

    @classmethod
    def of(cls, error: RefusedError) -> "Refusal":
        """A refusal from the workflow as the page shows it (Danish, no facts, unless known)."""
        return error if isinstance(error, Refusal) else cls(error.reason)

    @property
    def status(self) -> int:
        """404 for links we never issued, 403 for a person who may not answer, 410 otherwise."""
        if self.reason in (Reason.REQUESTER, Reason.NOT_APPROVER):
            return FORBIDDEN
        return NOT_FOUND if self.reason is Reason.INVALID else GONE


def form_key(signed: str, *, secret: str) -> str:
    """The hidden form field: proves the POST comes from a page we rendered for this link."""
    message = b"bevilling-confirm-form:" + signed.encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def form_key_ok(signed: str, given: str, *, secret: str) -> bool:
    """Constant-time check of the hidden form field."""
    return hmac.compare_digest(form_key(signed, secret=secret), given)


def read_token(signed: str, *, secret: str, max_age_seconds: int, now: datetime) -> str:
    """The raw token inside the link (checked at `now`), or Refusal(invalid | expired)."""
    try:
        return read_link(signed, secret=secret, max_age_seconds=max_age_seconds, now=now)
    except LinkError as exc:
        raise Refusal(Reason.EXPIRED if exc.reason == "expired" else Reason.INVALID) from exc


def check_open(target: Target, ctx: WorkflowContext) -> None:
    """Refusal unless the step waits for this link's answer now."""
    token, step, request = target.token, target.step, target.request
    language = language_of(target.approver.language)
    facts = {"key": request.key, "version": request.version,
             "stage": step.stage_title_en if language == "en" else step.stage_title_da,
             "state": REQUEST_STATES[language].get(request.state, request.state)}
    reason = answer_refusal(step, request, token, now=ctx.now) or answerer_refusal(
        step, person=target.approver.id, requester=request.requester_id, delegations=(),
        day=ctx.today)  # the link speaks for the step's approver: no substitute to look up
    if reason is Reason.DECIDED:
        facts |= decided_facts(step, language, ctx)
    if reason is not None:
        raise Refusal(reason, language, facts)


def decided_facts(step: ApprovalStep, language: str, ctx: WorkflowContext) -> dict[str, str]:
    """'godkendt' and 'den 3. december 2026 via link' for the decided-page."""
    words = UI[language]
    decision = (CONSULT_TEXT if step.stage_kind == "consult" else DECISION_TEXT)[language][
        "approve" if step.decision == "approve" else "reject"]
    when = ""
    if step.decided_at is not None:
        day = step.decided_at.astimezone(ZoneInfo(ctx.settings.timezone)).date()
        when = ("den " if language == "da" else "on ") + long_date(day, language)
    if step.channel:
        channel = words.get(f"channel_{step.channel}", step.channel)
        when = f"{when} {words['via'].format(channel=channel)}".strip()
    return {"decision": decision, "when": when}


def _who(step: StepView, language: str) -> str:
    if step.on_behalf_of is None:
        return step.approver.name
    return f"{step.approver.name} ({UI[language]['on_behalf'].format(name=step.on_behalf_of.name)})"


def _stage(step: StepView, language: str) -> str:
    return step.stage_title_en if language == "en" else step.stage_title_da


def page_context(session: Session, target: Target) -> dict[str, Any]:
    """Everything the confirm page shows about the request and this step."""
    language = language_of(target.approver.language)
    words = UI[language]
    view = load_request_view(session, target.request)
    step = next(s for s in view.steps if s.id == target.step.id)
    lines = [{"year": line.year, "label": line.label,
              "amount": money(line.amount, line.amount_max, language),
              "kind": words["recurring"] if line.recurring else words["one_off"]}
             for line in sorted(view.lines, key=lambda line: line.year)]
    approved = [f"{_stage(s, language)}: {_who(s, language)}"
                + (f" – »{s.comment}«" if s.comment else "") for s in view.steps
                if s.version == view.version and s.state is StepState.APPROVED]
    return {
        "lang": language, "t": words,
        "approver_name": step.approver.name,
        "greeting": greeting(step.approver.name, language),
        "on_behalf_of": step.on_behalf_of.name if step.on_behalf_of else "",
        "stage": _stage(step, language), "consult": step.stage_kind == "consult",
        "deadline": long_date(step.due_date, language) if step.due_date else "–",
        "request": _request_facts(view, language), "lines": lines,
        "total": money(Decimal(view.total_low), Decimal(view.total_high), language),
        "changes": describe_changes(view.previous, view.content, language=language),
        "approved": approved,
    }


def _request_facts(view: RequestView, language: str) -> dict[str, str]:
    return {"key": view.key, "title": view.title, "version": view.version,
            "justification": view.justification, "amounts_note": view.amounts_note,
            "category": CATEGORY_TEXT[language].get(view.category, view.category),
            "requester": view.requester.name, "grant": view.grant_key or ""}


def decide(session: Session, target: Target, *, verdict: Verdict, comment: str,
           ctx: WorkflowContext) -> dict[str, Any]:
    """Apply the decision in the caller's transaction; the result page's context or Refusal."""
    language = language_of(target.approver.language)
    result = apply_decision(
        session, step_id=target.step.id or 0, verdict=verdict, comment=comment, channel="link",
        actor_email=target.approver.email, token_id=target.token.id, ctx=ctx)
    if not result.applied:
        check_open(reload_target(session, target), ctx)  # explains with the current facts
        # Reached only if the re-read rows look open; a used token is caught by check_open.
        raise Refusal(result.refusal or Reason.DECIDED, language,
                      {"key": result.request_key})
    words = UI[language]
    view = load_request_view(session, target.request)
    done = "done_consult" if target.step.stage_kind == "consult" else f"done_{verdict.value}"
    names = {s.approver.email: _who(s, language) for s in view.steps}
    if result.finished:
        key = f"next_final_{result.request_state}"
        next_text = words.get(key, words["next_nothing"]).format(name=view.requester.name)
    elif result.next_approvers:
        next_text = words["next_sent"].format(
            names=", ".join(names.get(e, e) for e in result.next_approvers))
    else:
        waiting = [_who(s, language) for s in view.steps
                   if s.version == view.version and s.state is StepState.PENDING]
        next_text = (words["next_waiting"].format(names=", ".join(waiting)) if waiting
                     else words["next_nothing"])
    return {"lang": language, "t": words, "heading": words[done], "next_text": next_text,
            "comment": comment, "request": _request_facts(view, language)}
