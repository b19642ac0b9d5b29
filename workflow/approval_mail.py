"""Rendered approval mails: the request to an approver, the outcome, and notices about replies."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from domain.approval_state import StepState
from domain.replies import QUOTE_SENTINEL
from domain.request_changes import describe_changes
from mail.deferred import deferred_body
from mail.formatting import long_date, money
from mail.render import RenderedMail, render_mail, render_subject
from models.outbox import NewMail
from workflow.context import WorkflowContext
from workflow.tokens import reply_address, sign_link
from workflow.views import PersonView, RequestView, StepView

CATEGORY_TEXT = {
    "da": {
        "continuation": "Videreførelse af bevilling",
        "ai": "AI",
        "cyber": "Cybersikkerhed",
        "preparedness": "Beredskab",
        "csr": "CSR / sociale klausuler",
        "operations": "Drift",
    },
    "en": {
        "continuation": "Continuation of a grant",
        "ai": "AI",
        "cyber": "Cyber security",
        "preparedness": "Preparedness",
        "csr": "CSR / social clauses",
        "operations": "Operations",
    },
}
DECISION_TEXT = {
    "da": {"approve": "godkendt", "reject": "afvist"},
    "en": {"approve": "approved", "reject": "rejected"},
}
# A consultation's answer is advice, never an approval or a rejection (issue 10).
CONSULT_TEXT = {
    "da": {"approve": "høringssvar: for", "reject": "høringssvar: imod"},
    "en": {"approve": "consultation: in favour", "reject": "consultation: against"},
}


def _language(person: PersonView) -> str:
    return person.language if person.language in ("da", "en") else "da"


def thread_id(request: RequestView, *, domain: str) -> str:
    """A fixed Message-ID every mail about a request refers to, so clients thread them."""
    return f"<request-{request.key.lower()}@{domain}>"


def _stage_title(step: StepView, language: str) -> str:
    return step.stage_title_da if language == "da" else step.stage_title_en


def _who(step: StepView) -> str:
    if step.on_behalf_of is not None:
        return f"{step.approver.name} (på vegne af {step.on_behalf_of.name})"
    return step.approver.name


def _request_context(request: RequestView, language: str) -> dict[str, Any]:
    return {
        "key": request.key,
        "title": request.title,
        "version": request.version,
        "justification": request.justification,
        "amounts_note": request.amounts_note,
        "category_text": CATEGORY_TEXT[language].get(request.category, request.category),
        "requester_name": request.requester.name,
        "grant_key": request.grant_key,
    }


def _lines(request: RequestView, language: str) -> list[dict[str, Any]]:
    kinds = {"da": ("løbende", "engangsbeløb"), "en": ("recurring", "one-off")}[language]
    return [
        {
            "year": line.year,
            "label": line.label,
            "amount_text": money(line.amount, line.amount_max, language),
            "kind_text": kinds[0] if line.recurring else kinds[1],
        }
        for line in request.lines
    ]


@dataclass(frozen=True)
class MailAddressing:
    """Threading and reply headers for one outgoing mail."""

    reply_to: str | None
    thread: str

    def headers(self) -> dict[str, str]:
        """The headers NewMail carries to the wire."""
        values = {"References": self.thread, "In-Reply-To": self.thread}
        if self.reply_to:
            values["Reply-To"] = self.reply_to
        return values


def _new_mail(
    *,
    key: str,
    kind: str,
    subject_ref: str,
    recipient: str,
    rendered: RenderedMail,
    addressing: MailAddressing,
) -> NewMail:
    """The outbox entry for one rendered mail."""
    return NewMail(
        key=key,
        kind=kind,
        subject_ref=subject_ref,
        recipient=recipient,
        subject=rendered.subject,
        body_text=rendered.text,
        body_html=rendered.html,
        headers=addressing.headers(),
    )


def _deferred_mail(
    template: str, recipient: str, context: dict[str, Any], addressing: MailAddressing, *,
    key: str, subject_ref: str, ctx: WorkflowContext,
) -> NewMail:
    """The outbox entry for a mail whose bodies the delivery worker renders (`mail.deferred`).

    The language is the context's `lang`; the subject is rendered now: lists and reports show it
    before the mail is sent.
    """
    language = context["lang"]
    subject = render_subject(template, language=language, context=context,
                             templates_dir=ctx.settings.templates_dir)
    return NewMail(
        key=key,
        kind=template,
        subject_ref=subject_ref,
        recipient=recipient,
        subject=subject,
        body_text="",
        body_html="",
        headers=addressing.headers(),
        deferred_body=deferred_body(template, language=language, context=context),
    )


def approval_request_mail(
    request: RequestView,
    step: StepView,
    *,
    token: str,
    token_id: int,
    ctx: WorkflowContext,
    reminder: bool = False,
) -> NewMail:
    """The mail asking one approver to decide, with the reply address and the signed link."""
    language = _language(step.approver)
    settings = ctx.settings
    approved = [  # with their comments: the next approver reads what the earlier ones said
        f"{_stage_title(s, language)}: {_who(s)}" + (f" – »{s.comment}«" if s.comment else "")
        for s in request.steps
        if s.version == request.version and s.state is StepState.APPROVED
    ]
    context = {
        "lang": language,
        "sentinel": QUOTE_SENTINEL,
        "reminder": reminder,
        "approver_name": step.approver.name,
        "on_behalf_of_name": step.on_behalf_of.name if step.on_behalf_of else "",
        "confirm_url": f"{settings.web_base_url.rstrip('/')}/confirm/"
        f"{sign_link(token, secret=ctx.token_secret, now=ctx.now)}",
        "due_text": long_date(step.due_date, language) if step.due_date else "–",
        "stage_title": _stage_title(step, language),
        "consult": step.stage_kind == "consult",
        "request": _request_context(request, language),
        "lines": _lines(request, language),
        "total_text": money(Decimal(request.total_low), Decimal(request.total_high), language),
        "changes": describe_changes(request.previous, request.content, language=language),
        "approved": approved,
    }
    addressing = MailAddressing(
        reply_address(token, domain=settings.mail_domain),
        thread_id(request, domain=settings.mail_domain),
    )
    return _deferred_mail("approval_request", step.approver.email, context, addressing,
                          key=f"approval:{step.id}:{token_id}", subject_ref=f"step:{step.id}",
                          ctx=ctx)


def outcome_mail(request: RequestView, *, approved: bool, ctx: WorkflowContext) -> NewMail:
    """The requester learns the final outcome with every decision of the current version."""
    language = _language(request.requester)
    decisions = [
        {
            "stage": _stage_title(s, language),
            "who": _who(s),
            "decision": (CONSULT_TEXT if s.stage_kind == "consult" else DECISION_TEXT)[
                language].get(s.decision or "", "–"),
            "comment": s.comment,
        }
        for s in request.steps
        if s.version == request.version and s.decision
    ]
    context = {
        "lang": language,
        "recipient_name": request.requester.name,
        "approved": approved,
        "decisions": decisions,
        "request": _request_context(request, language),
    }
    addressing = MailAddressing(None, thread_id(request, domain=ctx.settings.mail_domain))
    return _deferred_mail("approval_outcome", request.requester.email, context, addressing,
                          key=f"outcome:{request.key}:{request.version}",
                          subject_ref=f"request:{request.key}", ctx=ctx)


def notice_mail(
    request: RequestView,
    *,
    recipient: PersonView,
    reason: str,
    detail: str,
    key: str,
    ctx: WorkflowContext,
) -> NewMail:
    """A short explanation: ambiguous reply, decided/expired/outdated step, foreign sender."""
    language = _language(recipient)
    rendered = render_mail(
        "reply_notice",
        language=language,
        templates_dir=ctx.settings.templates_dir,
        context={
            "lang": language,
            "recipient_name": recipient.name,
            "reason": reason,
            "detail": detail,
            "request": _request_context(request, language),
        },
    )
    addressing = MailAddressing(None, thread_id(request, domain=ctx.settings.mail_domain))
    return _new_mail(
        key=f"notice:{key}",
        kind=f"notice_{reason}",
        subject_ref=f"request:{request.key}",
        recipient=recipient.email,
        rendered=rendered,
        addressing=addressing,
    )
