"""Turn a due reminder into rendered outbox mails, one per recipient, in their language."""

import base64
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from domain.reminders import PlanKind, SendDecision
from domain.working_days import WorkingCalendar
from mail.formatting import MoneyLine, at_stake, describe_line, long_date, years
from mail.ics import all_day_event
from mail.render import render_mail
from models.outbox import NewMail

KIND_TEXT = {
    ("da", "need"): "Behov", ("da", "appropriated"): "Bevilget",
    ("en", "need"): "Need", ("en", "appropriated"): "Appropriated",
}


@dataclass(frozen=True)
class Recipient:
    """Someone who receives a grant's reminders."""

    name: str
    email: str
    language: str


@dataclass(frozen=True)
class GrantFacts:
    """What a reminder mail says about a grant."""

    id: int
    key: str
    title: str
    end_date: date
    funding_source: str
    notes: str
    lines: tuple[MoneyLine, ...]
    recipients: tuple[Recipient, ...]


def _context(
    grant: GrantFacts, decision: SendDecision, *, language: str, recipient: Recipient,
    as_of: date, calendar: WorkingCalendar,
) -> dict[str, object]:
    return {
        "lang": language,
        "recipient_name": recipient.name,
        "grant": {"key": grant.key, "title": grant.title, "funding_source": grant.funding_source,
                  "notes": grant.notes},
        "end_date_text": long_date(grant.end_date, language),
        "due_date_text": long_date(decision.reminder.due_date, language),
        "days_left": max(0, (grant.end_date - as_of).days),
        "working_days_left": calendar.working_days_between(as_of, grant.end_date),
        "late": decision.late,
        "offset_days": decision.reminder.offset_days,
        "stake": at_stake(grant.lines, language, nobreak=True),
        "lines": [{"label": line.label, "kind_text": KIND_TEXT[(language, line.kind)],
                   "years": years(line, language), "amount_text": describe_line(line, language)}
                  for line in grant.lines],
    }


def _calendar_attachment(grant: GrantFacts, *, domain: str, now: datetime) -> dict[str, str]:
    ics = all_day_event(
        uid=f"grant-{grant.key}-{grant.end_date.isoformat()}@{domain}",
        day=grant.end_date,
        summary=f"Bevilling udløber: {grant.title}",
        description=f"{grant.title} ({grant.key}) udløber {long_date(grant.end_date, 'da')}.",
        stamp=now,
    )
    return {"filename": f"udloeb-{grant.key}.ics", "content_type": "text/calendar",
            "method": "PUBLISH", "data": base64.b64encode(ics.encode("utf-8")).decode("ascii")}


def reminder_mails(
    decision: SendDecision, grant: GrantFacts, *, as_of: date, calendar: WorkingCalendar,
    templates_dir: Path, domain: str, now: datetime,
) -> list[NewMail]:
    """One rendered mail per recipient for a reminder or expiry notice."""
    reminder = decision.reminder
    template = "grant_expired" if reminder.kind is PlanKind.EXPIRED else "grant_reminder"
    attachment = _calendar_attachment(grant, domain=domain, now=now)
    mails = []
    for recipient in grant.recipients:
        language = recipient.language if recipient.language in ("da", "en") else "da"
        rendered = render_mail(template, language=language, templates_dir=templates_dir,
                               context=_context(grant, decision, language=language,
                                                recipient=recipient, as_of=as_of,
                                                calendar=calendar))
        mails.append(NewMail(
            key=f"reminder:{reminder.reminder_id}:{recipient.email}",
            kind=template,
            subject_ref=f"grant:{grant.key}",
            recipient=recipient.email,
            subject=rendered.subject,
            body_text=rendered.text,
            body_html=rendered.html,
            attachments=[] if reminder.kind is PlanKind.EXPIRED else [attachment],
        ))
    return mails
