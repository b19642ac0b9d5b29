"""Engines and sessions: SQLite gets WAL and BEGIN IMMEDIATE so concurrent writers queue up."""

import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session, create_engine

from db.raw import RawConnection

_engines: dict[str, Engine] = {}
_checkpointer_of: "weakref.WeakKeyDictionary[Engine, WalCheckpointer]" = weakref.WeakKeyDictionary()
# Pages in the WAL before a committing writer checkpoints it itself: a safety net only, the
# engine's WalCheckpointer normally has done it (the default 1,000 made every ~60th decision
# wait ~5-40 ms for the copy and its fsyncs).
AUTOCHECKPOINT_PAGES = 10_000


class WalCheckpointer:
    """Checkpoints one SQLite file's WAL from its own thread, so commits never wait for it.

    SQLite's docs suggest exactly this for write-heavy applications: a PASSIVE checkpoint copies
    committed pages back into the database without blocking readers or writers (if it cannot
    finish, the next round does). Started on the engine's first connection; stopped by
    `stop()`, `dispose_engines()` or when the engine is garbage-collected.
    """

    def __init__(self, path: str, *, interval_seconds: float = 0.25) -> None:
        self.path = path
        self.interval_seconds = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the thread once (later calls do nothing)."""
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name=f"wal-checkpoint {self.path}", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close its connection."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                     timeout=0)
        try:
            while not self._stop.wait(self.interval_seconds):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    continue  # busy, or the file is gone: the next round (or a writer) does it
        finally:
            connection.close()


def _configure_sqlite(engine: Engine, checkpointer: WalCheckpointer | None) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us emit BEGIN ourselves: pysqlite's implicit BEGIN is DEFERRED, and a deferred
        # transaction that reads then writes fails at once under WAL instead of waiting.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if checkpointer is not None:
            cursor.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
            checkpointer.start()
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        # Straight to the driver: this runs for every transaction, and it is one fixed statement.
        # A raw_transaction has begun already when a session joins it (orm_session).
        driver = connection.connection.driver_connection
        if not driver.in_transaction:
            driver.execute("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """A new engine for `url` with our per-dialect settings."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            from pathlib import Path

            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # The pool hands a connection to one thread at a time; servers run DB work in threads.
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        checkpointer = None
        if database and database != ":memory:" and not database.startswith("file:"):
            checkpointer = WalCheckpointer(database)
            _checkpointer_of[engine] = checkpointer
            weakref.finalize(engine, checkpointer.stop)
        _configure_sqlite(engine, checkpointer)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def get_engine(url: str) -> Engine:
    """The process-wide engine for `url` (created once)."""
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = make_engine(url)
    return engine


def close_engine(engine: Engine) -> None:
    """Close an engine's pooled connections and stop its checkpoint thread, if it has one."""
    engine.dispose()
    checkpointer = _checkpointer_of.pop(engine, None)
    if checkpointer is not None:
        checkpointer.stop()


def dispose_engines() -> None:
    """Close every pooled connection and stop the checkpoint threads (tests, forked processes)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
    for checkpointer in list(_checkpointer_of.values()):
        checkpointer.stop()
    _checkpointer_of.clear()


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on any exception."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def raw_transaction(engine: Engine) -> Iterator[RawConnection]:
    """A transaction run mostly with hand-written SQL (`db.raw`); committed on success.

    Lighter than an ORM session's transaction (~0.1 ms, which a decision notices). Code that
    needs the ORM on a rare path gets a session in the same transaction from `orm_session()`;
    it is flushed before the commit.
    """
    with engine.connect() as connection:
        driver = connection.connection.driver_connection
        if engine.dialect.name == "sqlite":
            driver.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]  # sqlite3 connection
        raw = RawConnection.of_connection(connection)
        try:
            yield raw
            raw.flush_orm()
            raw.close_orm()
            # A session joined (orm_session): the Core connection holds the transaction now.
            if connection.in_transaction():
                connection.commit()
            else:
                driver.commit()  # type: ignore[union-attr]
        except BaseException:
            raw.close_orm()
            if connection.in_transaction():
                connection.rollback()
            else:
                driver.rollback()  # type: ignore[union-attr]
            raise


def is_postgres(engine: Engine) -> bool:
    """True on PostgreSQL, where we use row locks and SKIP LOCKED."""
    return engine.dialect.name == "postgresql"
