"""Typed helpers for approval tests: seed + requests, submit at a given moment, find tokens and
build replies from the approval mail exactly as an approver's client would answer it.

Only the clock is mocked (every helper takes `now`); mails, tokens and the database are real.
"""

import asyncio
import email
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from config.settings import Settings
from db.engine import transaction
from loading.register_file import read_register
from mail.mime import envelope_sender
from models import ApprovalStep, BudgetRequest, Outbox, Person
from tests.support.factories import NOW, SEED, load_file
from tests.support.smtp_server import Received, SmtpServer
from workflow.context import make_context
from workflow.inbound import ingest_raw
from workflow.ingest import IngestResult
from workflow.outbox import stored_message
from workflow.request_load import RequestLoadReport, apply_requests
from workflow.routing import SubmitResult, submit

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "eml"
DOMAIN = "bevilling.example.org"
PLACEHOLDER = "a" * 26
SECRET = "test-secret-not-for-production"
SUBMITTED = datetime(2025, 10, 1, 7, 0, tzinfo=UTC)  # a Wednesday morning in Copenhagen
_TOKEN_IN_ADDRESS = re.compile(r"approvals\+([a-z2-7]{26})@", re.IGNORECASE)


@dataclass(frozen=True)
class StepInfo:
    """One approval step as tests look at it."""

    id: int
    stage: str
    approver: str
    on_behalf_of: str | None
    state: str
    version: str


def load_seed(engine: Engine, *, path: Path = SEED, now: datetime = NOW) -> RequestLoadReport:
    """Load departments, people and grants, then the `requests:` section, as `bevilling load`."""
    load_file(engine, path, now=now)
    return load_requests(engine, path=path, now=now)


def load_requests(engine: Engine, *, path: Path, now: datetime) -> RequestLoadReport:
    """(Re)load only the `requests:` section of a register file."""
    register = read_register(path)
    with transaction(engine) as session:
        return apply_requests(session, register, now=now)


def submit_request(engine: Engine, key: str, *, settings: Settings,
                   now: datetime = SUBMITTED) -> SubmitResult:
    """Submit a draft request at `now` in its own transaction."""
    ctx = make_context(settings, now=now, secret=SECRET)
    with transaction(engine) as session:
        return submit(session, key, ctx=ctx)


def steps_of(engine: Engine, key: str) -> list[StepInfo]:
    """Every step of a request (all versions), oldest first."""
    with Session(engine) as session:
        request = session.execute(select(BudgetRequest).where(
            col(BudgetRequest.key) == key)).scalar_one()
        emails: dict[int | None, str] = dict(
            session.execute(select(col(Person.id), col(Person.email))).all())
        rows = session.execute(select(ApprovalStep).where(
            col(ApprovalStep.request_id) == request.id).order_by(col(ApprovalStep.id))).scalars()
        return [StepInfo(s.id or 0, s.stage_key, emails[s.approver_id],
                         emails.get(s.on_behalf_of_id) if s.on_behalf_of_id else None,
                         s.state, s.version) for s in rows]


def pending_step(engine: Engine, key: str, approver: str) -> StepInfo:
    """The one pending step of `approver` on the request."""
    found = [s for s in steps_of(engine, key) if s.state == "pending" and s.approver == approver]
    if len(found) != 1:
        raise LookupError(f"{len(found)} pending steps of {approver} on {key}")
    return found[0]


def request_state(engine: Engine, key: str) -> str:
    """The request's state column."""
    with Session(engine) as session:
        return str(session.execute(select(col(BudgetRequest.state)).where(
            col(BudgetRequest.key) == key)).scalar_one())


@dataclass(frozen=True)
class OutboxMail:
    """An outbox row as tests read it."""

    id: int
    kind: str
    recipient: str
    subject_ref: str
    headers: dict[str, str]
    body_text: str
    raw: bytes

    @property
    def token(self) -> str:
        """The reply token in the Reply-To header (approval mails only)."""
        return token_in(self.headers.get("Reply-To", ""))

    @property
    def message(self) -> EmailMessage:
        """The stored wire bytes, parsed: the same bytes the SMTP server receives."""
        return parse_message(self.raw)


def outbox(engine: Engine, *, kind: str | None = None, recipient: str | None = None,
           ) -> list[OutboxMail]:
    """Outbox rows in id order, optionally filtered by kind (prefix) and recipient."""
    templates = Settings().templates_dir
    with Session(engine) as session:
        rows = session.execute(select(Outbox).order_by(col(Outbox.id))).scalars().all()
        mails = [OutboxMail(r.id or 0, r.kind, r.recipients[0], r.subject_ref, dict(r.headers),
                            *stored_message(r, templates_dir=templates)) for r in rows]
    return [m for m in mails if (kind is None or m.kind.startswith(kind))
            and (recipient is None or m.recipient == recipient)]


def approval_mail_for(engine: Engine, step_id: int) -> OutboxMail:
    """The latest approval-request mail of a step."""
    found = outbox(engine, kind="approval_request")
    mine = [m for m in found if m.subject_ref == f"step:{step_id}"]
    if not mine:
        raise LookupError(f"no approval mail for step {step_id}")
    return mine[-1]


def token_in(address: str) -> str:
    """The token of an `approvals+<token>@…` address."""
    match = _TOKEN_IN_ADDRESS.search(address)
    if match is None:
        raise LookupError(f"no reply token in {address!r}")
    return match.group(1).lower()


def parse_message(raw: bytes) -> EmailMessage:
    """Raw bytes → EmailMessage (policy.default)."""
    message = email.message_from_bytes(raw, policy=default_policy)
    if not isinstance(message, EmailMessage):
        raise TypeError("policy.default always yields EmailMessage")
    return message


def received_by(received: list[Received], recipient: str) -> list[EmailMessage]:
    """Messages the SMTP server accepted for `recipient`, in order."""
    return [r.message for r in received if recipient in r.rcpt_tos]


def plain_text(message: EmailMessage) -> str:
    """The text/plain part of a message."""
    part = message.get_body(preferencelist=("plain",))
    if part is None or not isinstance(part, EmailMessage):
        raise LookupError("message has no text/plain part")
    return str(part.get_content())


_counter = [0]


def build_reply(original: EmailMessage, *, sender: str, text: str, message_id: str | None = None,
                extra_headers: dict[str, str] | None = None,
                date: datetime = SUBMITTED) -> bytes:
    """An approver's reply: threaded on the original, to its Reply-To, `text` above a `>` quote."""
    _counter[0] += 1
    reply = EmailMessage(policy=default_policy)
    reply["From"] = sender
    reply["To"] = str(original["Reply-To"])
    reply["Subject"] = "SV: " + str(original["Subject"])
    reply["Date"] = format_datetime(date)
    reply["Message-ID"] = message_id or f"<reply-{_counter[0]}.{id(reply):x}@kommune.example.org>"
    original_id = str(original["Message-ID"]).strip()
    reply["In-Reply-To"] = original_id
    reply["References"] = original_id
    for name, value in (extra_headers or {}).items():
        reply[name] = value
    quoted = "\n".join("> " + line if line else ">" for line in plain_text(original).splitlines())
    sender_name = parseaddr(str(original["From"]))[0] or "Bevilling"
    reply.set_content(f"{text}\n\nDen 1. okt. 2025 skrev {sender_name}:\n{quoted}\n")
    return reply.as_bytes()


def corpus_bytes(name: str, *, token: str) -> bytes:
    """A corpus file with the placeholder token replaced by a real one (headers only)."""
    raw = (CORPUS / name).read_bytes()
    return raw.replace(PLACEHOLDER.encode("ascii"), token.encode("ascii"))


def bounce_address(engine: Engine, outbox_id: int) -> str:
    """The VERP return path our delivery uses for an outbox row (`bounce+<id>-<tag>@`)."""
    with Session(engine) as session:
        row = session.get(Outbox, outbox_id)
        if row is None:
            raise LookupError(f"no outbox row {outbox_id}")
        return envelope_sender(outbox_id, tag=row.bounce_tag, domain=Settings().mail_domain)


def dsn_for(engine: Engine, outbox_id: int, *, hard: bool = True,
            address: str | None = None, original_id: str | None = None) -> bytes:
    """The corpus DSN rewritten to bounce our real outbox row: its VERP address, Message-ID.

    `address` and `original_id` replace what a genuine report would carry (forgery tests).
    """
    name = "dsn-bounce-hard.eml" if hard else "dsn-bounce-soft.eml"
    raw = (CORPUS / name).read_bytes()
    with Session(engine) as session:
        row = session.get(Outbox, outbox_id)
        if row is None:
            raise LookupError(f"no outbox row {outbox_id}")
        message_id = row.message_id
    verp = address or bounce_address(engine, outbox_id)
    return (raw.replace(b"bounce+17@bevilling.example.org", verp.encode("ascii"))
            .replace(b"<ob-17.k3f9@bevilling.example.org>",
                     (original_id or message_id).encode("ascii")))


def ingest(engine: Engine, raw: bytes, *, settings: Settings, now: datetime,
           envelope: tuple[str, ...] = ()) -> IngestResult:
    """One inbound message through the production ingestion path, in its own transaction."""
    return ingest_raw(engine, raw, source="test", settings=settings, now=now,
                      envelope_recipients=envelope)


def drain(now: datetime) -> dict[str, Any]:
    """Send every due outbox row through the configured SMTP server (workflow.delivery)."""
    from workflow.delivery import drain_outbox

    return asyncio.run(drain_outbox(now=now))


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for a test database, with the token secret set."""
    values: dict[str, Any] = {"database_url": database_url, "token_secret": SECRET}
    values.update(overrides)
    return Settings(**values)


@dataclass
class Flow:
    """The running system of one test: database, settings, SMTP server, and the clock."""

    engine: Engine
    settings: Settings
    smtp: SmtpServer
    now: datetime = SUBMITTED

    def tick(self, minutes: int = 5) -> datetime:
        self.now += timedelta(minutes=minutes)
        return self.now

    def deliver(self) -> dict[str, Any]:
        return drain(self.tick())

    def inbox(self, recipient: str) -> list[EmailMessage]:
        return received_by(self.smtp.handler.received, recipient)

    def reply(self, original: EmailMessage, *, sender: str, text: str, **kw: Any) -> str:
        raw = build_reply(original, sender=sender, text=text, date=self.now, **kw)
        return ingest(self.engine, raw, settings=self.settings, now=self.tick()).outcome
