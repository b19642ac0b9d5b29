"""Mails about a step that changed hands or ran out: moved by a delegation, voided by a new
version, no one left to escalate to (`templates/email/step_notice.*`)."""

from typing import Any

from mail.render import render_mail
from models.outbox import NewMail
from workflow.approval_mail import MailAddressing
from workflow.context import WorkflowContext
from workflow.views import PersonView


def step_notice_mail(
    *, recipient: PersonView, reason: str, request: dict[str, str], stage: dict[str, str],
    facts: dict[str, Any], key: str, ctx: WorkflowContext,
) -> NewMail:
    """One notice: `reason` is moved | voided | exhausted; `facts` fill the template in.

    `request` holds key, title and version; `stage` its Danish and English titles (da/en).
    """
    language = recipient.language if recipient.language in ("da", "en") else "da"
    rendered = render_mail(
        "step_notice", language=language, templates_dir=ctx.settings.templates_dir,
        context={"lang": language, "recipient_name": recipient.name, "reason": reason,
                 "request": request, "stage": stage[language], **facts})
    thread = MailAddressing(None, thread_id_for(request["key"], ctx=ctx))
    return NewMail(key=f"step-notice:{key}", kind=f"step_{reason}",
                   subject_ref=f"request:{request['key']}", recipient=recipient.email,
                   subject=rendered.subject, body_text=rendered.text, body_html=rendered.html,
                   headers=thread.headers())


def thread_id_for(request_key: str, *, ctx: WorkflowContext) -> str:
    """The request's thread Message-ID (the one `approval_mail.thread_id` gives) from its key."""
    return f"<request-{request_key.lower()}@{ctx.settings.mail_domain}>"
