"""SQLite WAL checkpoints run in a thread of the engine, not inside a writer's commit."""

import os
import threading
import time
from pathlib import Path

from sqlalchemy import text

from db.engine import (
    AUTOCHECKPOINT_PAGES,
    WalCheckpointer,
    close_engine,
    dispose_engines,
    get_engine,
    make_engine,
)


def _checkpoint_threads(path: Path) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"wal-checkpoint {path}"]


def _wait_for(condition: object, *, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.02)
    return False


def test_committed_pages_reach_the_database_file_without_a_writer_checkpointing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wal.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:
            assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar() == \
                AUTOCHECKPOINT_PAGES
            connection.execute(text("CREATE TABLE blob (data BLOB)"))
            # ~2 MB: 500 pages, far below the writers' own checkpoint threshold.
            connection.execute(text("INSERT INTO blob VALUES (:d)"), {"d": os.urandom(2_000_000)})
        assert _wait_for(lambda: path.stat().st_size > 2_000_000), \
            "the checkpoint thread did not copy the WAL into the database file"
        assert len(_checkpoint_threads(path)) == 1
    finally:
        close_engine(engine)
    assert not _checkpoint_threads(path), "the thread outlived its engine"


def test_dispose_engines_stops_the_threads(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    engine = get_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    assert len(_checkpoint_threads(path)) == 1
    dispose_engines()
    assert not _checkpoint_threads(path)


def test_a_stopped_checkpointer_does_not_start_again(tmp_path: Path) -> None:
    checkpointer = WalCheckpointer(str(tmp_path / "never.db"), interval_seconds=0.01)
    checkpointer.stop()
    checkpointer.start()
    assert not _checkpoint_threads(tmp_path / "never.db")
