"""How far the IMAP poller got: one `imap_cursor` row per mailbox, voided by a new UIDVALIDITY.

IMAP UIDs and UIDVALIDITY are unsigned 32-bit numbers (RFC 3501), but the columns are a signed
32-bit INTEGER on PostgreSQL; pymap, for one, hands out UIDVALIDITY values above 2**31 - 1. We
therefore store them in two's complement (`to_column`/`from_column`), a bijection that also
stays correct if the columns are later widened to BIGINT.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from db.engine import transaction
from models import ImapCursor

_UINT32 = 2**32
_INT32_MAX = 2**31 - 1
_KEY_LENGTH = 200


@dataclass(frozen=True)
class CursorPosition:
    """The last UID handled in a mailbox, valid only under the same UIDVALIDITY."""

    uidvalidity: int
    last_uid: int


def to_column(value: int) -> int:
    """An unsigned 32-bit IMAP number as it fits a signed 32-bit column."""
    if not 0 <= value < _UINT32:
        raise ValueError(f"not an unsigned 32-bit IMAP number: {value}")
    return value - _UINT32 if value > _INT32_MAX else value


def from_column(value: int) -> int:
    """The unsigned IMAP number back from its column value."""
    return value + _UINT32 if value < 0 else value


def cursor_key(*, host: str, port: int, username: str, mailbox: str) -> str:
    """The row key: which account and folder, so a new server does not inherit an old cursor."""
    return f"imap://{username}@{host}:{port}/{mailbox}"[:_KEY_LENGTH]


def load_cursor(engine: Engine, key: str) -> CursorPosition | None:
    """The saved position for `key`, or None before the first run."""
    with Session(engine) as session:
        row = session.get(ImapCursor, key)
        if row is None:
            return None
        return CursorPosition(from_column(row.uidvalidity), from_column(row.last_uid))


def position_for(saved: CursorPosition | None, *, uidvalidity: int) -> int:
    """The UID to read after: the saved one, or 0 if none is saved or UIDVALIDITY changed."""
    if saved is None or saved.uidvalidity != uidvalidity:
        return 0
    return saved.last_uid


def save_cursor(engine: Engine, key: str, position: CursorPosition, *, now: datetime) -> None:
    """Insert or overwrite the position for `key` in its own transaction."""
    values = {"mailbox": key, "uidvalidity": to_column(position.uidvalidity),
              "last_uid": to_column(position.last_uid), "updated_at": now}
    insert_fn = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    statement = insert_fn(ImapCursor).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["mailbox"],
        set_={name: statement.excluded[name] for name in ("uidvalidity", "last_uid",
                                                            "updated_at")})
    with transaction(engine) as session:
        session.execute(statement)
