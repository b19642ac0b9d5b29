"""The hash-chained audit log: append inside the caller's transaction, verify the whole chain."""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlmodel import Session, col

from models.audit import GENESIS_HASH, AuditEvent, AuditHead

# Core statements built once: the append runs in every decision, and building ORM statements
# per call (coercion, annotation, ORM bulk-insert planning) cost more than executing them.
_EVENTS = AuditEvent.__table__  # type: ignore[attr-defined]  # SQLModel sets it on table models
_HEAD = AuditHead.__table__  # type: ignore[attr-defined]
_HEAD_FOR_UPDATE = (
    select(_HEAD.c.last_seq, _HEAD.c.last_hash).where(_HEAD.c.id == 1).with_for_update()
)
_INSERT_EVENT = insert(_EVENTS)
_MOVE_HEAD = (
    update(_HEAD).where(_HEAD.c.id == 1)
    .values(last_seq=bindparam("new_seq"), last_hash=bindparam("new_hash"))
)


@dataclass(frozen=True)
class NewEvent:
    """An event to append: what happened, to what, by whom, with details."""

    kind: str
    subject: str
    actor: str = "system"
    details: dict[str, Any] = field(default_factory=dict)


def event_hash(
    *, prev_hash: str, seq: int, at: datetime, kind: str, subject: str, actor: str,
    details: dict[str, Any],
) -> str:
    """SHA-256 over the previous hash and every field of the event."""
    canonical = json.dumps(
        [prev_hash, seq, at.isoformat(timespec="microseconds"), kind, subject, actor, details],
        sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def append_events(session: Session, events: Iterable[NewEvent], *, now: datetime) -> int:
    """Append events to the chain in this transaction; returns how many were written."""
    batch = list(events)
    if not batch:
        return 0
    head = session.execute(_HEAD_FOR_UPDATE).one()
    seq, prev = int(head[0]), str(head[1])
    at = now
    rows = []
    for event in batch:
        seq += 1
        details = json.loads(json.dumps(event.details, default=str))
        digest = event_hash(prev_hash=prev, seq=seq, at=at, kind=event.kind,
                            subject=event.subject, actor=event.actor, details=details)
        rows.append({"seq": seq, "at": at, "kind": event.kind, "subject": event.subject,
                     "actor": event.actor, "details": details, "prev_hash": prev, "hash": digest})
        prev = digest
    session.execute(_INSERT_EVENT, rows)
    session.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": prev})
    return len(rows)


@dataclass(frozen=True)
class ChainReport:
    """Result of verifying the audit chain."""

    events: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when nothing was altered, inserted or deleted."""
        return not self.problems


def verify_chain(session: Session, *, batch_size: int = 5000) -> ChainReport:
    """Recompute every hash in order; report altered, missing or re-ordered events."""
    problems: list[str] = []
    expected_prev, expected_seq, count, last_id = GENESIS_HASH, 0, 0, 0
    while True:
        rows = session.execute(
            select(AuditEvent).where(col(AuditEvent.id) > last_id)
            .order_by(col(AuditEvent.id)).limit(batch_size)
        ).scalars().all()
        if not rows:
            break
        for row in rows:
            last_id = row.id
            count += 1
            expected_seq += 1
            if row.seq != expected_seq:
                problems.append(f"event id {row.id}: sequence {row.seq}, expected {expected_seq} "
                                "(an event was deleted or inserted)")
                expected_seq = row.seq
            if row.prev_hash != expected_prev:
                problems.append(f"event seq {row.seq}: previous-hash link broken")
            recomputed = event_hash(prev_hash=row.prev_hash, seq=row.seq, at=row.at, kind=row.kind,
                                    subject=row.subject, actor=row.actor, details=row.details)
            if recomputed != row.hash:
                problems.append(f"event seq {row.seq} ({row.kind} {row.subject}): content altered")
            expected_prev = row.hash
    head = session.get(AuditHead, 1)
    if head is None:
        problems.append("audit head row is missing")
    elif head.last_seq != expected_seq or head.last_hash != expected_prev:
        problems.append(f"chain ends at seq {expected_seq} but the head records seq "
                        f"{head.last_seq}: events at the end were deleted or added")
    return ChainReport(count, tuple(problems))
