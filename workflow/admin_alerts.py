"""Tell the admins when a flow run failed: one mail per admin per incident, through our outbox."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

from mail.render import render_mail
from models import Outbox, Person
from models.outbox import NewMail
from workflow.admin_digest import ADMIN_ROLE
from workflow.context import WorkflowContext
from workflow.outbox import enqueue


@dataclass(frozen=True)
class Incident:
    """A flow run that ended Failed or Crashed (retries are over by then)."""

    flow_run_id: str
    flow_run_name: str
    flow_name: str
    state: str
    message: str
    url: str


def alert_admins(session: Session, incident: Incident, *, ctx: WorkflowContext) -> int:
    """Enqueue the alert for every active admin; a repeated incident enqueues nothing."""
    admins = list(session.execute(
        select(Person).where(col(Person.role) == ADMIN_ROLE, col(Person.active))).scalars())
    mails = []
    for admin in admins:
        language = admin.language if admin.language in ("da", "en") else "da"
        rendered = render_mail("admin_alert", language=language, templates_dir=ctx.settings
                               .templates_dir, context={"lang": language,
                                                        "recipient_name": admin.name,
                                                        "incident": incident.__dict__})
        mails.append(NewMail(
            key=f"alert:{incident.flow_run_id}:{admin.email}", kind="admin_alert",
            subject_ref=f"flow-run:{incident.flow_run_id}", recipient=admin.email,
            subject=rendered.subject, body_text=rendered.text, body_html=rendered.html))
    sent_before = set(session.execute(select(col(Outbox.key)).where(
        col(Outbox.key).in_([mail.key for mail in mails]))).scalars())
    new = [mail for mail in mails if mail.key not in sent_before]
    enqueue(session, new, now=ctx.now, domain=ctx.settings.mail_domain)
    return len(new)
