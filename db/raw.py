"""Hand-written SQL on the session's own DB-API connection, for the paths that run per decision.

A decision is a dozen small statements; through the ORM each costs ~80 µs of SQLAlchemy
planning against ~10 µs in the driver, which caps decisions near 400/s. Here the SQL is written
once, the placeholders name the column they bind to, and values are converted by that column's
own type (so a row written here reads back through the ORM exactly as one written there: UTC
datetimes, JSON text, enum names). The statements run in the session's transaction.
"""

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Column, Connection, Date, Dialect, Numeric
from sqlalchemy.exc import DBAPIError, StatementError
from sqlmodel import Session

from models.types import UTCDateTime

Processor = Callable[[Any], Any] | None


Converter = Callable[[Sequence[Any]], Sequence[Any]]


class RawSQL:
    """One statement: SQL with `?` placeholders, the column each binds to, the columns it returns.

    `lock=True` appends FOR UPDATE on PostgreSQL (SQLite holds the database write lock already:
    our transactions start with BEGIN IMMEDIATE). A `None` bind or result column is passed as is.
    """

    __slots__ = ("_prepared", "binds", "lock", "returns", "sql")

    def __init__(
        self,
        sql: str,
        binds: Sequence[Column[Any] | None] = (),
        returns: Sequence[Column[Any] | None] = (),
        *,
        lock: bool = False,
    ) -> None:
        if sql.count("?") != len(binds):
            raise ValueError(f"{sql!r}: {sql.count('?')} placeholders, {len(binds)} bind columns")
        if "%" in sql:
            raise ValueError(f"{sql!r}: '%' would be a placeholder for psycopg")
        self.sql = " ".join(sql.split())
        self.binds = tuple(binds)
        self.returns = tuple(returns)
        self.lock = lock
        self._prepared: dict[str, tuple[str, Converter, Converter | None]] = {}

    def prepared(self, dialect: Dialect) -> tuple[str, Converter, Converter | None]:
        """(SQL in the driver's parameter style, bind converter, result converter or None)."""
        found = self._prepared.get(dialect.name)
        if found is None:
            sql = self.sql
            if dialect.name == "postgresql":
                sql = sql.replace("?", "%s") + (" FOR UPDATE" if self.lock else "")
            binds = [_bind_processor(column, dialect) for column in self.binds]
            results = [_result_processor(column, dialect) for column in self.returns]
            found = (sql, _converter(binds, len(self.binds)),
                     _converter(results, None) if any(results) else None)
            self._prepared[dialect.name] = found
        return found


def _sqlite_utc_to_text(value: datetime) -> str:
    """UTCDateTime's SQLite storage text (naive UTC, microseconds), as SQLAlchemy writes it."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _sqlite_text_to_utc(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _sqlite_text_to_date(value: str) -> date:
    return date.fromisoformat(value)


def _bind_processor(column: Column[Any] | None, dialect: Dialect) -> Processor:
    if column is None:
        return None
    if dialect.name == "sqlite" and isinstance(column.type, UTCDateTime):
        return _sqlite_utc_to_text  # same text as the type's processors, without their regexes
    processor: Processor = column.type.dialect_impl(dialect).bind_processor(dialect)
    return processor


def _result_processor(column: Column[Any] | None, dialect: Dialect) -> Processor:
    if column is None:
        return None
    if dialect.name == "sqlite" and isinstance(column.type, UTCDateTime):
        return _sqlite_text_to_utc
    if dialect.name == "sqlite" and type(column.type) is Date:
        return _sqlite_text_to_date
    # psycopg's numeric processor wants the column's type code; 1700 is PostgreSQL's `numeric`.
    coltype = 1700 if isinstance(column.type, Numeric) else None
    processor: Processor = column.type.dialect_impl(dialect).result_processor(dialect, coltype)
    return processor


def _converter(processors: Sequence[Processor], expected: int | None) -> Converter:
    """Values → values with each non-NULL one passed through its column's processor."""
    active = [(index, processor) for index, processor in enumerate(processors) if processor]

    def convert(values: Sequence[Any]) -> Sequence[Any]:
        if expected is not None and len(values) != expected:
            raise ValueError(f"{len(values)} values for {expected} placeholders")
        if not active:
            return values
        converted = list(values)
        for index, processor in active:
            value = converted[index]
            if value is not None:
                converted[index] = processor(value)
        return converted

    return convert


class RawConnection:
    """The session's DB-API connection, inside its transaction (pending ORM changes flushed)."""

    __slots__ = ("_bind", "_dbapi", "_session", "dialect")

    def __init__(self, session: Session) -> None:
        # Raw statements do not autoflush: whatever the ORM holds must reach the database first.
        session.flush()
        connection = session.connection()
        self.dialect = connection.dialect
        dbapi = connection.connection.driver_connection
        if dbapi is None:
            raise RuntimeError("the session's connection has no DB-API connection")
        self._dbapi: Any = dbapi
        self._session: Session | None = session
        self._bind: Connection | None = None

    @classmethod
    def of_connection(cls, connection: Connection) -> "RawConnection":
        """The DB-API side of a Core connection already in a transaction (no session yet)."""
        driver = connection.connection.driver_connection
        if driver is None:
            raise RuntimeError("no DB-API connection")
        raw = cls.__new__(cls)
        raw.dialect = connection.dialect
        raw._dbapi = driver
        raw._session = None
        raw._bind = connection
        return raw

    def orm_session(self) -> Session:
        """An ORM session in this same transaction, for the rare paths written with the ORM.

        Made on first use; `raw_transaction` flushes it before committing.
        """
        if self._session is None:
            if self._bind is None:
                raise RuntimeError("this raw connection has no session and no Core connection")
            if not self._bind.in_transaction():
                self._bind.begin()  # Core takes over the transaction the driver is in
            # Joins that transaction: its commit and rollback stay raw_transaction's.
            self._session = Session(bind=self._bind, expire_on_commit=False)
        return self._session

    def flush_orm(self) -> None:
        """Write what a session made by `orm_session` holds (before the commit)."""
        if self._bind is not None and self._session is not None:
            self._session.flush()

    def close_orm(self) -> None:
        """Close a session made by `orm_session` (the transaction stays the caller's)."""
        if self._bind is not None and self._session is not None:
            self._session.close()
            self._session = None

    @property
    def is_postgres(self) -> bool:
        """True on PostgreSQL."""
        return self.dialect.name == "postgresql"

    def run(self, statement: RawSQL, *values: Any) -> int:
        """Execute a write; returns the number of rows it changed."""
        sql, binds, _ = statement.prepared(self.dialect)
        params = binds(values)
        try:
            count: int = self._dbapi.execute(sql, params).rowcount
        except self.dialect.loaded_dbapi.Error as exc:
            raise self._wrapped(exc, sql, params) from exc
        return count

    def run_many(self, statement: RawSQL, rows: Iterable[Sequence[Any]]) -> None:
        """Execute a write once per row of values."""
        sql, binds, _ = statement.prepared(self.dialect)
        converted = [binds(values) for values in rows]
        if not converted:
            return
        try:
            self._dbapi.cursor().executemany(sql, converted)
        except self.dialect.loaded_dbapi.Error as exc:
            raise self._wrapped(exc, sql, converted) from exc

    def rows(self, statement: RawSQL, *values: Any) -> list[Sequence[Any]]:
        """Every row a query (or a write with RETURNING) yields, converted by the result columns."""
        sql, binds, results = statement.prepared(self.dialect)
        params = binds(values)
        try:
            fetched = self._dbapi.execute(sql, params).fetchall()
        except self.dialect.loaded_dbapi.Error as exc:
            raise self._wrapped(exc, sql, params) from exc
        if results is None:
            return list(fetched)
        return [results(row) for row in fetched]

    def _wrapped(self, error: Exception, sql: str, params: Any) -> StatementError:
        """A driver error as SQLAlchemy's (OperationalError, IntegrityError, …), as the ORM raises
        it: callers and the CLI's readable messages need not know the driver."""
        return DBAPIError.instance(sql, params, error, self.dialect.loaded_dbapi.Error,
                                   dialect=self.dialect)

    def one_or_none(self, statement: RawSQL, *values: Any) -> Sequence[Any] | None:
        """The single row of a query, or None."""
        found = self.rows(statement, *values)
        if len(found) > 1:
            raise LookupError(f"{statement.sql!r} returned {len(found)} rows, expected one")
        return found[0] if found else None


def raw_of(db: "Session | RawConnection") -> "RawConnection":
    """The raw connection of a transaction given as a session or as its raw connection."""
    return db if isinstance(db, RawConnection) else RawConnection(db)


def session_of(db: "Session | RawConnection") -> Session:
    """An ORM session in the transaction given as a session or as its raw connection."""
    return db.orm_session() if isinstance(db, RawConnection) else db


def placeholders(count: int) -> str:
    """`?, ?, …` for an IN list of `count` values."""
    return ", ".join("?" * count)
