"""Run ingestion with its own transactions: one per message, so one bad mail blocks nothing."""

import mailbox
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, update
from sqlmodel import Session, col

from config.settings import Settings
from models import InboundMessage
from workflow.context import make_context
from workflow.ingest import IngestResult, ingest_message


def read_sources(paths: Iterable[Path]) -> Iterator[tuple[str, bytes]]:
    """(name, raw bytes) of every .eml file and every message in Maildir folders."""
    for path in paths:
        if path.is_dir():
            if not (path / "cur").is_dir() and not (path / "new").is_dir():
                raise FileNotFoundError(f"{path} is a folder but not a Maildir (no cur/ or new/)")
            box = mailbox.Maildir(str(path), factory=None, create=False)
            for key in sorted(box.keys()):
                yield f"{path}:{key}", box.get_bytes(key)
        elif path.is_file():
            yield str(path), path.read_bytes()
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")


def ingest_raw(
    engine: Engine,
    raw: bytes,
    *,
    source: str,
    settings: Settings,
    now: datetime,
    envelope_recipients: Iterable[str] = (),
    secret: str | None = None,
) -> IngestResult:
    """Ingest one message in its own transaction (`secret` saves a Secret-block lookup)."""
    ctx = make_context(settings, now=now, secret=secret)
    with Session(engine, expire_on_commit=False) as session:
        result = ingest_message(
            session, raw, source=source, ctx=ctx, envelope_recipients=envelope_recipients
        )
        session.commit()
    return result


def prune_raw_messages(engine: Engine, *, settings: Settings, now: datetime) -> int:
    """Drop the raw bytes of quarantined messages older than the retention; rows stay."""
    before = now - timedelta(days=settings.inbound_raw_retention_days)
    with Session(engine) as session:
        result = session.execute(
            update(InboundMessage)
            .where(col(InboundMessage.received_at) < before, col(InboundMessage.raw).is_not(None))
            .values(raw=None))
        session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
