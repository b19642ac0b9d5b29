"""Build (and cache) a register of N grants for `bench.deadlines`, with bulk inserts.

Every grant gets five planned ledger rows due in the future; exactly `due` grants, spread evenly
over the id range, have one reminder due on the as-of date (their earlier reminders are already
sent). The schema comes from the real migrations; secondary indexes are dropped during the load
and recreated from their own stored SQL afterwards, which is the same schema but a faster build.
"""

import random
import sqlite3
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from bench.support import PROJECT_ROOT

CACHE_DIR = PROJECT_ROOT / "var" / "bench"
FORMAT_VERSION = 1  # bump when the generated data changes, so stale caches are rebuilt
AS_OF = date(2025, 12, 1)  # before every future due date: ends 2027–2060 minus ≤ 365 days
OFFSETS = (365, 180, 90, 30, 7)
DUE_OFFSET = 30  # the reminder that is due on AS_OF for the due grants
DEPARTMENTS = 25
PEOPLE = 2_000
CHUNK = 50_000
STAMP = "2025-11-01 08:00:00.000000"  # how SQLAlchemy stores a naive UTC datetime on SQLite
FIRST_END = date(2027, 1, 1)
LAST_END = date(2060, 12, 31)


def cache_path(size: int, due: int) -> Path:
    """Where the DB for `size` grants with `due` due reminders is cached."""
    return CACHE_DIR / f"deadlines-{size}-due{due}-v{FORMAT_VERSION}.db"


def due_grant_ids(size: int, due: int) -> list[int]:
    """The grant ids that have a reminder due on AS_OF, spread evenly over 1..size."""
    step = size / due
    return [int(index * step) + 1 for index in range(due)]


def _grants(size: int, due_ids: set[int], rng: random.Random) -> Iterator[tuple[object, ...]]:
    span = (LAST_END - FIRST_END).days
    for grant_id in range(1, size + 1):
        if grant_id in due_ids:
            end = AS_OF + timedelta(days=DUE_OFFSET)
        else:
            end = FIRST_END + timedelta(days=rng.randrange(span + 1))
        yield (grant_id, f"G-{grant_id:07d}", f"Bevilling nr. {grant_id} til indsats i afdeling",
               "Byrådets budgetforlig", "2024-01-01", end.isoformat(), "", "ACTIVE",
               1 + grant_id % DEPARTMENTS, 1 + rng.randrange(PEOPLE), None,
               f"{grant_id:064x}", STAMP, STAMP)


def _reminders(ends: dict[int, date], due_ids: set[int]) -> Iterator[tuple[object, ...]]:
    for grant_id, end in ends.items():
        for offset in OFFSETS:
            due_date = end - timedelta(days=offset)
            if grant_id in due_ids and offset > DUE_OFFSET:
                state, handled = "SENT", due_date.isoformat()  # handled on earlier days
            else:
                state, handled = "PLANNED", None
            yield (grant_id, "REMINDER", offset, end.isoformat(), due_date.isoformat(), state,
                   None, handled, "", STAMP)


def _amounts(size: int) -> Iterator[tuple[object, ...]]:
    for grant_id in range(1, size + 1):
        yield (grant_id, 0, "Drift", "APPROPRIATED", "YEARLY", 2024, 2027, 1_300_000.0, None)
        yield (grant_id, 1, "Behov efter udløb", "NEED", "YEARLY", 2028, None, 1_500_000.0, None)


def build(path: Path, *, size: int, due: int, seed: int = 20251201) -> float:
    """Create the DB at `path` (via a temp name, so a crash never leaves a half cache)."""
    from db.migrate import upgrade_to_head

    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    building = path.with_suffix(".building")
    for leftover in (building, Path(f"{building}-wal"), Path(f"{building}-shm")):
        leftover.unlink(missing_ok=True)
    upgrade_to_head(f"sqlite:///{building}")
    rng = random.Random(seed + size)
    due_ids = set(due_grant_ids(size, due))
    connection = sqlite3.connect(building, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=DELETE")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-262144")
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL "
            "AND tbl_name IN ('grants', 'reminder', 'grantamount', 'grantrecipient')").fetchall()
        connection.execute("BEGIN")
        for name, _sql in indexes:
            connection.execute(f'DROP INDEX "{name}"')
        connection.executemany(
            "INSERT INTO department (id, key, name) VALUES (?, ?, ?)",
            [(i, f"dep-{i}", f"Afdeling {i}") for i in range(1, DEPARTMENTS + 1)])
        connection.executemany(
            "INSERT INTO person (id, email, name, role, title, language, active, department_id, "
            "manager_id) VALUES (?, ?, ?, 'owner', '', ?, 1, ?, NULL)",
            [(i, f"person{i}@aarhus.example", f"Person {i}", "da" if i % 5 else "en",
              1 + i % DEPARTMENTS) for i in range(1, PEOPLE + 1)])
        ends: dict[int, date] = {}
        batch: list[tuple[object, ...]] = []

        def flush_grants() -> None:
            connection.executemany(
                "INSERT INTO grants (id, key, title, funding_source, start_date, end_date, notes, "
                "status, department_id, owner_id, reminder_offsets, content_hash, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
            for row in batch:
                ends[int(str(row[0]))] = date.fromisoformat(str(row[5]))
            connection.executemany(
                "INSERT INTO reminder (grant_id, kind, offset_days, end_date, due_date, state, "
                "outbox_id, handled_on, note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _reminders(ends, due_ids))
            ends.clear()
            batch.clear()

        for row in _grants(size, due_ids, rng):
            batch.append(row)
            if len(batch) >= CHUNK:
                flush_grants()
        flush_grants()
        connection.executemany(
            "INSERT INTO grantamount (grant_id, position, label, kind, recurrence, year_from, "
            "year_to, amount, amount_max) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", _amounts(size))
        connection.executemany(
            "INSERT INTO grantrecipient (grant_id, person_id) VALUES (?, ?)",
            [(grant_id, 1 + (grant_id * 7) % PEOPLE) for grant_id in range(1, size + 1, 10)])
        for _name, sql in indexes:
            connection.execute(sql)
        connection.execute("COMMIT")
        # No ANALYZE: the application never runs it, so the planner must do without statistics.
    finally:
        connection.close()
    building.replace(path)
    return time.perf_counter() - started


def ensure(size: int, due: int, *, rebuild: bool) -> tuple[Path, float | None]:
    """The cached DB for (size, due), built first if missing; also the build seconds if built."""
    path = cache_path(size, due)
    if path.exists() and not rebuild:
        return path, None
    return path, build(path, size=size, due=due)
