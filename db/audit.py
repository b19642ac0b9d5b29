"""The hash-chained audit log: append inside the caller's transaction, verify the whole chain."""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from db.raw import RawConnection, RawSQL, raw_of
from models.audit import GENESIS_HASH, AuditEvent, AuditHead

# Written once, run on the session's DB-API connection: the append runs in every decision.
_EVENTS = AuditEvent.__table__  # type: ignore[attr-defined]  # SQLModel sets it on table models
_HEAD = AuditHead.__table__  # type: ignore[attr-defined]
_HEAD_FOR_UPDATE = RawSQL("SELECT last_seq, last_hash FROM audithead WHERE id = 1", lock=True)
_INSERT_EVENT = RawSQL(
    "INSERT INTO auditevent (seq, at, kind, subject, actor, details, prev_hash, hash)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    # details: bound as the canonical JSON text itself (what JSONText would have written).
    (_EVENTS.c.seq, _EVENTS.c.at, _EVENTS.c.kind, _EVENTS.c.subject, _EVENTS.c.actor,
     None, _EVENTS.c.prev_hash, _EVENTS.c.hash),
)
_MOVE_HEAD = RawSQL(
    "UPDATE audithead SET last_seq = ?, last_hash = ? WHERE id = 1",
    (_HEAD.c.last_seq, _HEAD.c.last_hash),
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


def _canonical_details(details: dict[str, Any]) -> str:
    """The details as JSONText stores them (sorted keys, compact), after a JSON round trip."""
    return json.dumps(json.loads(json.dumps(details, default=str)), sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"))


def _hash_with_details_json(
    *, prev_hash: str, seq: int, at: datetime, kind: str, subject: str, actor: str,
    details_json: str,
) -> str:
    """`event_hash` with the details already in canonical JSON (the array is the same text)."""
    head = json.dumps([prev_hash, seq, at.isoformat(timespec="microseconds"), kind, subject, actor],
                      ensure_ascii=False, separators=(",", ":"))
    canonical = f"{head[:-1]},{details_json}]"
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def append_events(db: Session | RawConnection, events: Iterable[NewEvent], *, now: datetime) -> int:
    """Append events to the chain in this transaction; returns how many were written."""
    batch = list(events)
    if not batch:
        return 0
    raw = raw_of(db)
    head = raw.one_or_none(_HEAD_FOR_UPDATE)
    if head is None:
        raise LookupError("audit head row is missing (run `bevilling init`)")
    seq, prev = int(head[0]), str(head[1])
    at = now
    rows = []
    for event in batch:
        seq += 1
        # One canonical text is both hashed and stored: what verify_chain reads back and hashes.
        details_json = _canonical_details(event.details)
        digest = _hash_with_details_json(prev_hash=prev, seq=seq, at=at, kind=event.kind,
                                         subject=event.subject, actor=event.actor,
                                         details_json=details_json)
        rows.append((seq, at, event.kind, event.subject, event.actor, details_json, prev, digest))
        prev = digest
    raw.run_many(_INSERT_EVENT, rows)
    raw.run(_MOVE_HEAD, seq, prev)
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
