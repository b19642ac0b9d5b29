"""Every mail reads like a careful Danish colleague wrote it (issue 11, texts).

Real mails from a real run — reminders, expiry notices, approval requests, a clarifying notice,
a digest, the outcome — in Danish and English, checked for: a greeting that fits a name or a
role, no English status words in Danish, one term for the request, the earlier approvers'
comments, amounts that cannot wrap inside themselves, and a charset on the calendar part.
The template sources are checked too, for the mails this run does not send (admin digest).
"""

import re
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from sqlmodel import col

from config.settings import get_settings
from db.engine import transaction
from domain.replies import QUOTE_SENTINEL
from mail.formatting import greeting
from models import Person
from tests.support.approvals import (
    SUBMITTED,
    build_reply,
    drain,
    ingest,
    load_seed,
    pending_step,
    plain_text,
    received_by,
    submit_request,
)
from tests.support.factories import ROOT
from tests.support.smtp_server import SmtpServer
from workflow.commands import remind_and_escalate_now
from workflow.deadlines import enqueue_due

KAREN = "karen.holm@kommune.example.org"
DIRECTOR = "stadsdirektoer@kommune.example.org"  # reads English in this test
MAYOR = "borgmester@kommune.example.org"
REQUESTER = "medborgerskab@kommune.example.org"
ECONOMY = "okonomi@kommune.example.org"  # reads English in this test
TEMPLATES = ROOT / "templates" / "email"

# Words that must never stand in a Danish mail (status values, our own English UI words).
ENGLISH = {"extended", "lapsed", "active", "pending", "approved", "rejected", "waiting",
           "skipped", "request", "requests", "deadline", "approve", "reject", "dear", "hello",
           "please", "the", "your", "step"}
# One term for the request, as on the confirm page: "ansøgning", never "anmodning".
OTHER_TERMS = re.compile(r"(?i:anmodning)|\bTekst\b")  # "Tekst" as the lines' column header
# An amount with an ordinary space or a breakable dash inside it.
AMOUNT = re.compile(r"\d[\d.,]*(?:–\u2060?\d[\d.,]*)?[ \xa0](?:mio\.[ \xa0])?kr\."
                    r"|DKK[ \xa0]\d[\d.,]*(?:–\u2060?\d[\d.,]*)?(?:[ \xa0]million)?")


def _parts(message: EmailMessage) -> dict[str, str]:
    found = {}
    for part in message.walk():
        if part.get_content_type() in ("text/plain", "text/html") and not part.get_filename():
            found[part.get_content_type()] = str(part.get_content())
    return found


@pytest.fixture
def mails(app_env: dict[str, str], engine: Engine, smtp_server: SmtpServer) -> list[EmailMessage]:
    """Every mail of a busy morning, as the SMTP server received them."""
    load_seed(engine)
    with transaction(engine) as session:
        session.execute(update(Person).where(col(Person.email).in_([DIRECTOR, ECONOMY]))
                        .values(language="en"))
    settings = get_settings()
    enqueue_due(date(2025, 10, 1), now=SUBMITTED)   # reminders (late), Danish and English
    enqueue_due(date(2026, 1, 5), now=SUBMITTED)    # the expiry notices of 31 December
    now = SUBMITTED
    submit_request(engine, "DOMEN-DRIFT", settings=settings, now=now)
    submit_request(engine, "STS-2027", settings=settings, now=now)
    drain(now := now + timedelta(minutes=5))

    def answer(approver: str, text: str) -> str:
        nonlocal now
        (original, *_) = [m for m in reversed(received_by(smtp_server.handler.received, approver))
                          if "DOMEN-DRIFT" in str(m["Subject"])
                          and "approvals+" in str(m["Reply-To"])]
        now += timedelta(minutes=5)
        outcome = ingest(engine, build_reply(original, sender=approver, text=text, date=now),
                         settings=settings, now=now).outcome
        drain(now := now + timedelta(minutes=1))
        return outcome

    doubtful = answer(KAREN, "Det ser fint ud, men jeg vil lige tale med Jens")
    assert doubtful.startswith("quarantined")
    assert answer(KAREN, "GODKEND Husk at følge op på driften") == "decision"
    assert answer(DIRECTOR, "GODKEND Enig") == "decision"
    assert answer(MAYOR, "GODKEND") == "decision"
    # The STS request waits; a working day before its deadline the approver gets a digest.
    step = pending_step(engine, "STS-2027", KAREN)
    assert step.state == "pending"
    for days in range(1, 9):
        moment = SUBMITTED + timedelta(days=days)
        remind_and_escalate_now(settings=settings, engine=engine, now=moment)
        drain(moment + timedelta(minutes=1))
        if any("Påmindelse" in str(m["Subject"])
               for m in received_by(smtp_server.handler.received, KAREN)):
            break
    return [received.message for received in smtp_server.handler.received]


def test_every_mail_reads_right(mails: list[EmailMessage]) -> None:
    subjects = [str(m["Subject"]) for m in mails]
    assert any(s.startswith("Påmindelse") for s in subjects), subjects  # the digest is there
    kinds = {str(m["X-Bevilling-Ref"]).split(":")[0] for m in mails}
    assert len(mails) >= 10, kinds
    problems: list[str] = []
    for message in mails:
        to = str(message["To"])
        danish = str(message["Content-Language"] or "da").startswith("da") and not any(
            address in to for address in (DIRECTOR, ECONOMY))
        for kind, body in _parts(message).items():
            where = f"{message['Subject']} → {to} ({kind})"
            # The bilingual reply sentinel is part of the reply protocol, not prose.
            text = re.sub(r"<[^>]+>|https?://\S+|\{[^}]*\}", " ",
                          body.replace(QUOTE_SENTINEL, ""))
            if danish:
                words = {w.lower() for w in re.findall(r"[A-Za-zæøåÆØÅ]+", text)}
                if english := sorted(words & ENGLISH):
                    problems.append(f"{where}: English {english}")
                if found := OTHER_TERMS.search(text):
                    problems.append(f"{where}: {found.group(0)!r} (the page says ansøgning)")
                if re.search(r"Kære \w+(en|et)\b(?! \w)", text):
                    problems.append(f"{where}: 'Kære' before a role")
            for amount in AMOUNT.findall(text):
                if " " in amount or re.search(r"–(?!\u2060)", amount):
                    problems.append(f"{where}: breakable amount {amount!r}")
        for part in message.walk():
            if (part.get_content_type() == "text/calendar"
                    and part.get_content_charset() != "utf-8"):
                problems.append(f"{message['Subject']}: .ics without charset=utf-8")
    assert problems == [], "\n".join(problems)


def test_the_next_approver_reads_the_earlier_comments(mails: list[EmailMessage]) -> None:
    to_director = [m for m in mails if DIRECTOR in str(m["To"])
                   and "DOMEN-DRIFT" in str(m["Subject"])]
    text = plain_text(to_director[-1])
    assert "Husk at følge op på driften" in text
    to_mayor = [m for m in mails if MAYOR in str(m["To"]) and "DOMEN-DRIFT" in str(m["Subject"])]
    text = plain_text(to_mayor[-1])
    assert "Husk at følge op på driften" in text
    assert "Enig" in text


def test_greetings_fit_names_and_roles() -> None:
    assert greeting("Karen Holm", "da") == "Kære Karen Holm"
    assert greeting("Digitaliseringschefen", "da") == "Til Digitaliseringschefen"
    assert greeting("Karen Holm", "en") == "Dear Karen Holm"
    assert greeting("Stadsdirektøren", "en") == "Hello"


@pytest.mark.parametrize("path", sorted(TEMPLATES.glob("*.da.*.j2")), ids=lambda p: p.name)
def test_danish_template_sources_hold_no_english_and_only_unbreakable_amounts(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    prose = re.sub(r"\{[{%#].*?[}%#]\}|<[^>]+>", " ", source, flags=re.DOTALL)
    words = {w.lower() for w in re.findall(r"[A-Za-zæøåÆØÅ]+", prose)}
    assert words & ENGLISH == set()
    assert OTHER_TERMS.search(prose) is None
    assert "Kære {{" not in source  # the greeting filter decides between a name and a role
    for expression in re.findall(r"\{\{([^}]*(?:amount_text|total_text)[^}]*)\}\}", source):
        assert "|amount" in expression, expression
