"""Database time of the daily deadline check on 10k / 100k / 1M grants with the same number due.

    .venv/bin/python -m bench.deadlines [--sizes 10000 100000 1000000] [--due 100] [--runs 5]
        [--rebuild]

Runs the real `workflow.deadlines.process_due_batch` loop (as `enqueue_due_reminders` does) with a
`make_mails` that returns no mails, so no rendering or outbox work happens: what is left is the
database work of the check (due query, row read, grant facts, ledger updates, audit append,
commit) plus SQLAlchemy's own overhead. SQL execution time is also summed per statement family.
"""

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/<name>.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.deadlines_db import AS_OF, ensure
from bench.support import markdown_table
from db.engine import close_engine

TARGET_MS_1M = 100.0
TARGET_RATIO = 3.0
FAMILIES = (  # (label, substring of the SQL) — first match wins
    ("due_grant_ids", "SELECT reminder.grant_id"),
    ("due_rows", "SELECT reminder.id"),
    ("grant_facts", "FROM grants"),
    ("grant_facts", "FROM grantamount"),
    ("grant_facts", "FROM grantrecipient"),
    ("grant_facts", "FROM person"),
    ("ledger updates", "UPDATE reminder"),
    ("audit append", "audit"),
    ("begin", "BEGIN"),
)


@dataclass
class Run:
    """One timed check."""

    wall_ms: float
    sql_ms: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    statements: int = 0


class StatementTimer:
    """Engine listeners that sum cursor-execute time per statement family."""

    def __init__(self) -> None:
        self.current: Run | None = None
        self.captured: dict[str, tuple[str, Any]] = {}
        self._started = 0.0

    def before(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        self._started = time.perf_counter()

    def after(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        elapsed = (time.perf_counter() - self._started) * 1000
        if self.current is None:  # our own set-up and reset statements
            return
        label = next((name for name, part in FAMILIES if part in statement), "other")
        self.captured.setdefault(label, (statement, parameters))
        self.current.sql_ms[label] += elapsed
        self.current.statements += 1


def reset(engine: Any) -> None:
    """Undo exactly what a check wrote: its ledger updates and audit events."""
    from sqlalchemy import delete, update
    from sqlmodel import col

    from models import AuditEvent, AuditHead, Reminder, ReminderState
    from models.audit import GENESIS_HASH

    with engine.begin() as connection:
        connection.execute(update(Reminder).where(col(Reminder.handled_on) == AS_OF).values(
            state=ReminderState.PLANNED, handled_on=None, note="", outbox_id=None))
        connection.execute(delete(AuditEvent))
        connection.execute(update(AuditHead).where(col(AuditHead.id) == 1).values(
            last_seq=0, last_hash=GENESIS_HASH))
    raw = engine.raw_connection()  # outside a transaction: our engines BEGIN IMMEDIATE
    try:
        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()


def due_now(engine: Any) -> int:
    """Planned reminders due on or before AS_OF."""
    from sqlalchemy import func, select
    from sqlmodel import col

    from models import Reminder, ReminderState

    with engine.connect() as connection:
        return int(connection.execute(
            select(func.count()).select_from(Reminder).where(
                col(Reminder.state) == ReminderState.PLANNED,
                col(Reminder.due_date) <= AS_OF)).scalar_one())


def check_once(engine: Any, timer: StatementTimer, *, due: int) -> Run:
    """The check's loop over process_due_batch, timed; verifies it handled exactly `due`."""
    from workflow.deadlines import GRANTS_PER_BATCH, CheckReport, process_due_batch

    report = CheckReport(as_of=AS_OF)
    now = datetime.now(UTC)
    run = Run(0.0)
    timer.current = run
    started = time.perf_counter()
    for _ in range(due // GRANTS_PER_BATCH + 3):
        if not process_due_batch(engine, as_of=AS_OF, now=now, make_mails=lambda *_: [],
                                 domain="bevilling.example.org", expiry_notice_days=365,
                                 report=report):
            break
    run.wall_ms = (time.perf_counter() - started) * 1000
    timer.current = None
    if report.sent != due:
        raise RuntimeError(f"the check handled {report.sent} reminders, expected {due}")
    return run


def read_parts_once(engine: Any) -> dict[str, float]:
    """Wall ms of each read the check makes (ORM included), in one rolled-back session."""
    from sqlmodel import Session

    from workflow.deadlines import GRANTS_PER_BATCH, due_grant_ids, due_rows, grant_facts

    with Session(engine) as session:
        started = time.perf_counter()
        grant_ids = due_grant_ids(session, as_of=AS_OF, limit=GRANTS_PER_BATCH)
        listed = time.perf_counter()
        due_rows(session, grant_ids=grant_ids, as_of=AS_OF)
        rows = time.perf_counter()
        grant_facts(session, grant_ids)
        facts = time.perf_counter()
        session.rollback()
    return {"due_grant_ids": (listed - started) * 1000, "due_rows": (rows - listed) * 1000,
            "grant_facts": (facts - rows) * 1000}


@contextmanager
def working_copy(cached: Path) -> Iterator[Path]:
    """A temporary copy of a cached DB (the cache itself is never written to)."""
    folder = Path(tempfile.mkdtemp(prefix="bevilling-bench-deadlines-", dir=cached.parent))
    try:
        copy = folder / cached.name
        shutil.copyfile(cached, copy)
        yield copy
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def explain(engine: Any, timer: StatementTimer, labels: tuple[str, ...]) -> str:
    """EXPLAIN QUERY PLAN of the statements the check actually ran, with their parameters."""
    out = []
    raw = engine.raw_connection()
    try:
        for label in labels:
            statement, parameters = timer.captured[label]
            rows = raw.cursor().execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
            shown = (parameters if len(parameters) <= 6 else
                     (*parameters[:3], f"… {len(parameters) - 5} more …", *parameters[-2:]))
            sql = " ".join(statement.split())
            if sql.count("?") > 8:  # the IN list of 100+ grant ids
                sql = sql.replace("?, " * (sql.count("?, ") - 2), "?, …, ", 1)
            out.append(f"{label}:\n  {sql}\n  params {shown}")
            out += [f"    {row[-1]}" for row in rows]
    finally:
        raw.close()
    return "\n".join(out)


def measure(size: int, *, due: int, runs: int, rebuild: bool, show_plan: bool) -> dict[str, Any]:
    """Build or reuse the DB, then one warm-up and `runs` timed checks, resetting in between."""
    from sqlalchemy import event

    from db.engine import make_engine

    cached, built = ensure(size, due, rebuild=rebuild)
    if built is not None:
        print(f"built {cached.name} in {built:.1f} s", flush=True)
    with working_copy(cached) as path:
        engine = make_engine(f"sqlite:///{path}")
        timer = StatementTimer()
        event.listen(engine, "before_cursor_execute", timer.before)
        event.listen(engine, "after_cursor_execute", timer.after)
        try:
            if due_now(engine) != due:
                raise RuntimeError(f"{cached} does not have {due} due reminders: --rebuild")
            check_once(engine, timer, due=due)  # warm-up: statement cache, page cache
            timed = []
            for _ in range(runs):
                reset(engine)
                timed.append(check_once(engine, timer, due=due))
            reset(engine)
            parts = [read_parts_once(engine) for _ in range(runs)]
            plan = explain(engine, timer, ("due_grant_ids", "due_rows")) if show_plan else ""
        finally:
            close_engine(engine)
    families = sorted({label for run in timed for label in run.sql_ms})
    return {
        "size": size, "due": due, "built": built,
        "wall_ms": statistics.median(run.wall_ms for run in timed),
        "sql_ms": statistics.median(sum(run.sql_ms.values()) for run in timed),
        "family_ms": {label: statistics.median(run.sql_ms.get(label, 0.0) for run in timed)
                      for label in families},
        "read_ms": {label: statistics.median(part[label] for part in parts)
                    for label in parts[0]},
        "statements": timed[0].statements, "plan": plan,
        "all_ms": [round(run.wall_ms, 1) for run in timed],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.deadlines", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000],
                        help="numbers of grants (default 10000 100000 1000000)")
    parser.add_argument("--due", type=int, default=100,
                        help="grants with a reminder due on the as-of date (default 100)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per size (default 5)")
    parser.add_argument("--rebuild", action="store_true",
                        help="rebuild the cached DBs under var/bench/")
    args = parser.parse_args(argv)
    if any(not 1_000 <= size <= 5_000_000 for size in args.sizes):
        parser.error("--sizes must be 1000..5000000")
    if not 1 <= args.due <= min(args.sizes) // 2 or not 1 <= args.runs <= 50:
        parser.error("--due must be 1..(smallest size / 2), --runs 1..50")
    return args


def main(argv: list[str] | None = None) -> None:
    """Measure every size and print the tables."""
    args = parse_args(argv)
    sizes = sorted(args.sizes)
    results = []
    for size in sizes:
        results.append(measure(size, due=args.due, runs=args.runs, rebuild=args.rebuild,
                               show_plan=size == sizes[-1]))
        print(f"{size} grants: {results[-1]['wall_ms']:.1f} ms (runs {results[-1]['all_ms']})",
              flush=True)
    base = results[0]["wall_ms"]
    print()
    print(f"as of {AS_OF.isoformat()}, median of {args.runs} runs after one warm-up, SQLite "
          "file DB (WAL), make_mails returns []\n")
    print(markdown_table(
        ["grants", "due", "DB ms (median)", f"ratio to {sizes[0] // 1000}k", "SQL execute ms",
         "due query ms", "statements"],
        [[f"{r['size']:,}", r["due"], f"{r['wall_ms']:.1f}", f"{r['wall_ms'] / base:.2f}",
          f"{r['sql_ms']:.1f}", f"{r['family_ms'].get('due_grant_ids', 0.0):.1f}",
          r["statements"]] for r in results]))
    print("\nThe check's reads on their own, wall ms with SQLAlchemy (median), and the rest "
          "(ledger updates, audit append, commit):\n")
    print(markdown_table(
        ["grants", "due_grant_ids", "due_rows", "grant_facts", "rest of the check"],
        [[f"{r['size']:,}", *(f"{r['read_ms'][label]:.1f}" for label in
                              ("due_grant_ids", "due_rows", "grant_facts")),
          f"{r['wall_ms'] - sum(r['read_ms'].values()):.1f}"] for r in results]))
    families = sorted({label for r in results for label in r["family_ms"]})
    print("\nTime inside cursor.execute only, ms by statement family (median):\n")
    print(markdown_table(["grants", *families],
                         [[f"{r['size']:,}", *(f"{r['family_ms'].get(label, 0.0):.2f}"
                                               for label in families)] for r in results]))
    print(f"\nEXPLAIN QUERY PLAN at {sizes[-1]:,} grants:\n")
    print(results[-1]["plan"])
    largest = results[-1]
    ratio = largest["wall_ms"] / base
    print(f"\n- largest: {largest['wall_ms']:.1f} ms (target < {TARGET_MS_1M:.0f} ms for 1M), "
          f"ratio {ratio:.2f} (target ≤ {TARGET_RATIO})")


if __name__ == "__main__":
    main()
