"""One ingestion path for every inbound mail (file, Maildir, SMTP receiver, IMAP).

parse → dedupe on Message-ID → drop automated mail → bounces → token → sender → authentication
→ step state → read the first line → decide, or quarantine and explain. All of it happens in
the caller's transaction, so a crash leaves the message unprocessed rather than half-done.
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from db.audit import NewEvent, append_events
from domain.answering import (
    answer_refusal,
    answerer_refusal,
    principal_of,
    refusal_detail,
    reply_word,
)
from domain.approval_state import Verdict
from domain.authentication import accepted, assess
from domain.bounces import bounce_mismatch
from domain.errors import Refusal
from domain.replies import Decision, VerdictKind
from mail.inbound_parse import (
    InboundParseError,
    ParsedInbound,
    parse_inbound,
    token_from_recipients,
    verp_address,
)
from mail.reply_reading import read_reply
from models import (
    ApprovalStep,
    ApprovalToken,
    BudgetRequest,
    InboundMessage,
    Outbox,
    Person,
)
from workflow.approval_mail import notice_mail
from workflow.context import WorkflowContext
from workflow.decisions import apply_decision
from workflow.delegations import covers_on
from workflow.escalation import escalate_step
from workflow.outbox import enqueue
from workflow.tokens import token_hash
from workflow.views import load_request_view, person_views


@dataclass(frozen=True)
class IngestResult:
    """What became of one inbound message."""

    outcome: str
    detail: str = ""
    request_key: str | None = None
    step_id: int | None = None
    message_id: str = ""


@cache
def _record_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT (message_id) DO NOTHING RETURNING id, built once per dialect."""
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    return (
        insert_fn(InboundMessage)
        .values(
            message_id=bindparam("message_id"),
            raw_sha256=bindparam("digest"),
            source=bindparam("source"),
            outcome="received",
            detail="",
            quarantined=False,
            subject="",
            received_at=bindparam("now"),
        )
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(col(InboundMessage.id))
    )


def _record(
    session: Session, *, message_id: str, digest: str, source: str, now: datetime
) -> int | None:
    statement = _record_statement(session.get_bind().dialect.name)
    params = {"message_id": message_id[:300], "digest": digest, "source": source, "now": now}
    result: int | None = session.execute(statement, params).scalar_one_or_none()
    return result


_INBOUND = InboundMessage.__table__  # type: ignore[attr-defined]  # SQLModel sets it on tables
_FINISH = (
    update(_INBOUND)
    .where(_INBOUND.c.id == bindparam("inbound_id"))
    .values({name: bindparam(f"new_{name}") for name in (
        "outcome", "detail", "step_id", "from_address", "subject", "quarantined", "raw",
        "received_at")})
)
_TOKEN_BY_HASH = select(ApprovalToken).where(col(ApprovalToken.token_hash) == bindparam("digest"))


def _finish(
    session: Session,
    inbound_id: int,
    result: IngestResult,
    *,
    parsed: ParsedInbound | None,
    raw: bytes | None,
    quarantine: bool,
    events: list[NewEvent],
    ctx: WorkflowContext,
) -> IngestResult:
    session.execute(
        _FINISH,
        {
            "inbound_id": inbound_id,
            "new_outcome": result.outcome,
            "new_detail": result.detail[:2000],
            "new_step_id": result.step_id,
            "new_from_address": (
                parsed.from_address[:254] if parsed and parsed.from_address else None
            ),
            "new_subject": (parsed.subject if parsed else "")[:500],
            "new_quarantined": quarantine,
            "new_raw": raw[: ctx.settings.inbound_raw_keep_bytes] if quarantine and raw else None,
            "new_received_at": ctx.now,
        },
    )
    events.append(
        NewEvent(
            f"mail.received.{result.outcome}",
            f"request:{result.request_key}" if result.request_key else "inbound",
            actor=(parsed.from_address or "unknown") if parsed else "unknown",
            details={
                "message_id": result.message_id,
                "detail": result.detail[:300],
                "step": result.step_id,
            },
        )
    )
    append_events(session, events, now=ctx.now)
    return result


def ingest_message(
    session: Session,
    raw: bytes,
    *,
    source: str,
    ctx: WorkflowContext,
    envelope_recipients: Iterable[str] = (),
) -> IngestResult:
    """Process one raw message in the caller's transaction."""
    settings = ctx.settings
    events: list[NewEvent] = []
    digest = hashlib.sha256(raw).hexdigest()
    try:
        parsed = parse_inbound(raw, max_bytes=settings.inbound_max_bytes)
    except InboundParseError as exc:
        inbound_id = _record(
            session, message_id=f"sha256:{digest}", digest=digest, source=source, now=ctx.now
        )
        if inbound_id is None:
            return IngestResult("duplicate", message_id=f"sha256:{digest}")
        return _finish(
            session,
            inbound_id,
            IngestResult("quarantined", f"unparsable: {exc.reason}", message_id=f"sha256:{digest}"),
            parsed=None,
            raw=raw,
            quarantine=True,
            events=events,
            ctx=ctx,
        )
    inbound_id = _record(
        session, message_id=parsed.message_id, digest=digest, source=source, now=ctx.now
    )
    if inbound_id is None:
        return IngestResult("duplicate", message_id=parsed.message_id)
    result, quarantine, notice = _classify(
        session, parsed, raw, ctx=ctx, events=events, envelope=tuple(envelope_recipients)
    )
    if notice is not None:
        _send_notice(session, notice, inbound_id=inbound_id, ctx=ctx, events=events)
    return _finish(
        session,
        inbound_id,
        result,
        parsed=parsed,
        raw=raw,
        quarantine=quarantine,
        events=events,
        ctx=ctx,
    )


@dataclass(frozen=True)
class _Notice:
    step_id: int
    to_person_id: int
    reason: str
    detail: str


def _send_notice(
    session: Session,
    notice: _Notice,
    *,
    inbound_id: int,
    ctx: WorkflowContext,
    events: list[NewEvent],
) -> None:
    step = session.get(ApprovalStep, notice.step_id)
    if step is None or step.clarifications_sent >= ctx.settings.max_notices_per_step:
        events.append(
            NewEvent(
                "mail.notice_suppressed",
                f"step:{notice.step_id}",
                details={"reason": notice.reason, "cap": "notices per step"},
            )
        )
        return
    step.clarifications_sent += 1
    request = session.get(BudgetRequest, step.request_id)
    if request is None:
        return
    recipient = person_views(session, {notice.to_person_id})[notice.to_person_id]
    mail = notice_mail(
        load_request_view(session, request),
        recipient=recipient,
        reason=notice.reason,
        detail=notice.detail,
        key=f"inbound:{inbound_id}",
        ctx=ctx,
    )
    enqueue(session, [mail], now=ctx.now, domain=ctx.settings.mail_domain)


def _classify(
    session: Session,
    parsed: ParsedInbound,
    raw: bytes,
    *,
    ctx: WorkflowContext,
    events: list[NewEvent],
    envelope: tuple[str, ...],
) -> tuple[IngestResult, bool, _Notice | None]:
    settings = ctx.settings
    mid = parsed.message_id
    recipients = (*parsed.recipients, *(r.lower() for r in envelope))
    if parsed.bounce is not None:
        return _bounce(session, parsed, recipients, ctx=ctx, events=events), False, None
    if parsed.automated_reason:
        return (
            IngestResult("ignored-automated", parsed.automated_reason, message_id=mid),
            False,
            None,
        )
    if parsed.from_address is None:
        return IngestResult("quarantined", "no usable From address", message_id=mid), True, None
    if parsed.from_address == settings.mail_from.lower():
        return IngestResult("ignored-own", "mail from our own address", message_id=mid), False, None
    token = token_from_recipients(recipients, domain=settings.mail_domain)
    if token is None:
        return (
            IngestResult("ignored-no-token", "no approvals+<token> recipient", message_id=mid),
            False,
            None,
        )
    token_row = session.execute(
        _TOKEN_BY_HASH, {"digest": token_hash(token)}
    ).scalar_one_or_none()
    if token_row is None:
        return (
            IngestResult("refused-unknown-token", "token matches no step", message_id=mid),
            True,
            None,
        )
    step = session.get(ApprovalStep, token_row.step_id)
    request = session.get(BudgetRequest, step.request_id) if step else None
    if step is None or request is None:
        return IngestResult("refused-unknown-token", "step is gone", message_id=mid), True, None
    key, sid = request.key, step.id or 0
    people = person_views(session, {step.approver_id})
    approver = people[step.approver_id]
    acting, who = _acting_person(
        session, parsed.from_address, step=step, request=request, approver_email=approver.email,
        ctx=ctx,
    )
    if acting is None or who is not None:
        why = who or Refusal.NOT_APPROVER
        detail = refusal_detail(why, step=step, request=request, token=None)
        return (
            IngestResult(f"refused-{reply_word(why)}",
                         f"{parsed.from_address} may not answer: {detail}", key, sid, mid),
            True,
            _Notice(sid, step.approver_id, "foreign_sender", parsed.from_address),
        )
    verdict = assess(
        parsed.authentication_results,
        trusted_ids=settings.trusted_authserv_ids,
        from_domain=parsed.from_address.rsplit("@", 1)[-1],
        trust_unlabelled=settings.trust_unlabelled_authentication_results,
    )
    if not accepted(verdict, policy=settings.auth_policy):
        return (
            IngestResult(
                "quarantined-authentication", f"authentication {verdict.value}", key, sid, mid
            ),
            True,
            None,
        )
    reply = read_reply(plain=parsed.plain_text, html=parsed.html_text)
    if reply.kind is not VerdictKind.DECISION or reply.decision is None:
        reason = "empty" if reply.kind is VerdictKind.EMPTY else "ambiguous"
        refusal = answer_refusal(step, request, token_row, now=ctx.now)
        if refusal is not None:
            word = reply_word(refusal)
            detail = refusal_detail(refusal, step=step, request=request, token=token_row)
            return (
                IngestResult(f"refused-{word}", detail, key, sid, mid),
                False,
                _Notice(sid, step.approver_id, word, detail),
            )
        return (
            IngestResult(f"quarantined-{reason}", reply.reason, key, sid, mid),
            True,
            _Notice(sid, step.approver_id, reason, reply.reason),
        )
    outcome = apply_decision(
        session,
        step_id=sid,
        verdict=Verdict.APPROVE if reply.decision is Decision.APPROVE else Verdict.REJECT,
        comment=reply.comment,
        channel="reply",
        actor_email=parsed.from_address,
        token_id=token_row.id,
        ctx=ctx,
        audit=events,  # appended by _finish, before its mail.received event, as before
        acting_person_id=acting,
    )
    if outcome.applied:
        return IngestResult("decision", f"{reply.decision.value}", key, sid, mid), False, None
    return (
        IngestResult(f"refused-{outcome.reason}", outcome.detail, key, sid, mid),
        False,
        _Notice(sid, acting, outcome.reason, outcome.detail),
    )


def _acting_person(
    session: Session, sender: str, *, step: ApprovalStep, request: BudgetRequest,
    approver_email: str, ctx: WorkflowContext,
) -> tuple[int | None, Refusal | None]:
    """Who answered (by From address), and why they may not (the one rule), if they may not."""
    person = step.approver_id if sender == approver_email.lower() else session.execute(
        select(col(Person.id)).where(col(Person.email) == sender)).scalar_one_or_none()
    refusal = answerer_refusal(
        step, person=person, requester=request.requester_id,
        delegations=covers_on(session, principal_of(step), ctx.today), day=ctx.today)
    return person, refusal


def _bounce(
    session: Session,
    parsed: ParsedInbound,
    recipients: tuple[str, ...],
    *,
    ctx: WorkflowContext,
    events: list[NewEvent],
) -> IngestResult:
    bounce = parsed.bounce
    mid = parsed.message_id
    verp = verp_address(recipients, domain=ctx.settings.mail_domain)
    if bounce is None or verp is None:
        return IngestResult("ignored-bounce", "bounce without our VERP address", message_id=mid)
    outbox_id = verp.outbox_id
    row = session.get(Outbox, outbox_id)
    if row is None:
        return IngestResult("ignored-bounce", f"unknown outbox {outbox_id}", message_id=mid)
    mismatch = bounce_mismatch(
        claimed_tag=verp.tag, row_tag=row.bounce_tag,
        original_message_id=bounce.original_message_id, row_message_id=row.message_id,
        recipients=(bounce.recipient, bounce.original_recipient), row_recipients=row.recipients)
    if mismatch is not None:
        # Recorded (inbound row + audit event); changes nothing.
        return IngestResult("refused-bounce", f"outbox {outbox_id}: {mismatch.value}",
                            message_id=mid)
    kind = "hard" if bounce.hard else "soft"
    events.append(
        NewEvent(
            f"mail.bounced.{kind}",
            row.subject_ref or f"outbox:{outbox_id}",
            details={
                "outbox_id": outbox_id,
                "status": bounce.status,
                "recipient": bounce.recipient,
            },
        )
    )
    if not bounce.hard or not row.subject_ref.startswith("step:"):
        return IngestResult(f"bounce-{kind}", f"outbox {outbox_id} {bounce.status}", message_id=mid)
    step_id = int(row.subject_ref.split(":", 1)[1])
    result = escalate_step(
        session, step_id, reason=f"approval mail bounced ({bounce.status})", ctx=ctx, events=events
    )
    detail = f"outbox {outbox_id} {bounce.status}; " + (
        f"escalated to {result.target_email}" if result.escalated else result.reason
    )
    return IngestResult("bounce-hard", detail, step_id=step_id, message_id=mid)
