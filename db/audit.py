"""The hash-chained audit log: append inside the caller's transaction, verify the whole chain.

Each event carries an HMAC-SHA256 over the previous hash and its fields, keyed with the audit
key from settings (`BEVILLING_AUDIT_KEY`, else derived from `BEVILLING_TOKEN_SECRET`): the key is
never in the database, so whoever can write the tables cannot rewrite the chain and its head
unnoticed. Events written before the chain was keyed keep their unkeyed SHA-256 (`scheme`) and
stay verifiable; the first keyed event's link anchors them. Time is hashed in one canonical form,
UTC with microseconds, whatever offset the caller's `now` has.
"""

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlmodel import Session, col

from config.settings import Settings, get_settings
from models.audit import GENESIS_HASH, AuditEvent, AuditHead

KEYED, UNKEYED = "hmac", "sha256"

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


@dataclass(frozen=True)
class ChainKey:
    """The audit key and where it came from (for `audit verify` to say)."""

    secret: bytes
    source: str


@lru_cache(maxsize=8)
def _derive(secret: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), b"bevilling-audit-chain-v1", hashlib.sha256).digest()


def chain_key(settings: Settings | None = None) -> ChainKey | None:
    """The audit chain's key from settings, or None when neither key nor token secret is set."""
    settings = settings or get_settings()
    if settings.audit_key is not None and settings.audit_key.get_secret_value():
        return ChainKey(settings.audit_key.get_secret_value().encode("utf-8"),
                        "BEVILLING_AUDIT_KEY")
    if settings.token_secret is not None and settings.token_secret.get_secret_value():
        return ChainKey(_derive(settings.token_secret.get_secret_value()),
                        "derived from BEVILLING_TOKEN_SECRET")
    local = _local_secret(settings)
    if local:
        return ChainKey(_derive(local), f"derived from the local key {settings.token_secret_file}")
    return None


def _local_secret(settings: Settings) -> str:
    """`make run`'s key file (written by `bevilling init`), when settings allow it; "" if none."""
    if not settings.token_secret_file_allowed or settings.token_secret_block:
        return ""
    try:
        stamp = settings.token_secret_file.stat().st_mtime_ns
    except OSError:
        return ""
    return _read_secret(str(settings.token_secret_file), stamp)


@lru_cache(maxsize=8)
def _read_secret(path: str, stamp: int) -> str:
    """The key file's text, read once per (path, modification time): appends run per decision."""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def canonical_time(at: datetime) -> str:
    """The one form time is hashed in: UTC, microseconds, whatever offset `at` came with."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def event_hash(
    *, prev_hash: str, seq: int, at: datetime, kind: str, subject: str, actor: str,
    details: dict[str, Any], key: bytes | None = None,
) -> str:
    """HMAC-SHA256 with `key` (SHA-256 without one) over the previous hash and every field."""
    canonical = json.dumps(
        [prev_hash, seq, canonical_time(at), kind, subject, actor, details],
        sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str,
    ).encode("utf-8")
    if key is None:
        return hashlib.sha256(canonical).hexdigest()
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


def append_events(session: Session, events: Iterable[NewEvent], *, now: datetime) -> int:
    """Append events to the chain in this transaction; returns how many were written."""
    batch = list(events)
    if not batch:
        return 0
    head = session.execute(_HEAD_FOR_UPDATE).one()
    seq, prev = int(head[0]), str(head[1])
    at = now.astimezone(UTC)
    key = chain_key()
    secret, scheme = (key.secret, KEYED) if key is not None else (None, UNKEYED)
    rows = []
    for event in batch:
        seq += 1
        details = json.loads(json.dumps(event.details, default=str))
        digest = event_hash(prev_hash=prev, seq=seq, at=at, kind=event.kind,
                            subject=event.subject, actor=event.actor, details=details, key=secret)
        rows.append({"seq": seq, "at": at, "kind": event.kind, "subject": event.subject,
                     "actor": event.actor, "details": details, "prev_hash": prev, "hash": digest,
                     "scheme": scheme})
        prev = digest
    session.execute(_INSERT_EVENT, rows)
    session.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": prev})
    return len(rows)


@dataclass(frozen=True)
class ChainReport:
    """Result of verifying the audit chain, and what was checked."""

    events: int
    problems: tuple[str, ...]
    checked: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing was altered, inserted or deleted."""
        return not self.problems


def verify_chain(
    session: Session, *, batch_size: int = 5000, settings: Settings | None = None,
) -> ChainReport:
    """Recompute every hash in order; report altered, missing or re-ordered events.

    With a key configured, a keyed event that does not verify, an unkeyed event after a keyed
    one, or an unkeyed tip (a chain rewritten without the key) is a problem.
    """
    key = chain_key(settings)
    problems: list[str] = []
    expected_prev, expected_seq, count, last_id = GENESIS_HASH, 0, 0, 0
    first_keyed: int | None = None
    last_scheme = ""
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
            if row.scheme == KEYED:
                first_keyed = row.seq if first_keyed is None else first_keyed
                if key is None:
                    problems.append(f"event seq {row.seq} is keyed but no audit key is "
                                    "configured: cannot check it")
            elif first_keyed is not None:
                problems.append(f"event seq {row.seq} is unkeyed after keyed events: rewritten "
                                "without the key")
            secret = key.secret if key is not None and row.scheme == KEYED else None
            if row.scheme == KEYED and key is None:
                expected_prev = row.hash
                last_scheme = row.scheme
                continue
            recomputed = event_hash(prev_hash=row.prev_hash, seq=row.seq, at=row.at, kind=row.kind,
                                    subject=row.subject, actor=row.actor, details=row.details,
                                    key=secret)
            if not hmac.compare_digest(recomputed, row.hash):
                problems.append(f"event seq {row.seq} ({row.kind} {row.subject}): content altered")
            expected_prev = row.hash
            last_scheme = row.scheme
    head = session.get(AuditHead, 1)
    if head is None:
        problems.append("audit head row is missing")
    elif head.last_seq != expected_seq or head.last_hash != expected_prev:
        problems.append(f"chain ends at seq {expected_seq} but the head records seq "
                        f"{head.last_seq}: events at the end were deleted or added")
    if key is not None and count and last_scheme != KEYED:
        problems.append("the chain's last event is not keyed although a key is configured: "
                        "the chain was rewritten without the key (or nothing was appended since "
                        "the upgrade: `bevilling audit seal`)")
    return ChainReport(count, tuple(problems), _checked(count, expected_seq, key, first_keyed))


def _checked(count: int, last: int, key: ChainKey | None, first_keyed: int | None) -> tuple[
        str, ...]:
    lines = [f"{count} events: sequence 1–{last} without gaps, each linked to the one before",
             "the head row (last sequence number and hash) against the chain's end",
             "time hashed as UTC (canonical), whatever offset it was written with"]
    if key is None:
        lines.append("no audit key configured: hashes are unkeyed SHA-256, so a rewrite of "
                     "every hash and the head would not be noticed")
    elif first_keyed is None:
        lines.append(f"audit key ({key.source}) configured, but no event is keyed yet")
    else:
        lines.append(f"HMAC-SHA256 with the audit key ({key.source}) on events {first_keyed}–"
                     f"{last}: they cannot be rewritten without the key")
        if first_keyed > 1:
            lines.append(f"events 1–{first_keyed - 1} predate the key: unkeyed SHA-256, "
                         f"anchored by the keyed link of event {first_keyed}")
    return tuple(lines)
