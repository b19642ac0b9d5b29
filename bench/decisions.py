"""Decisions per second through a three-stage chain, with the state persisted after every step.

N copies of DOMEN-DRIFT (afdelingschef → stadsdirektør → borgmester) are loaded through the
register loader and submitted. Then, per backend:

- **decisions/s**: `apply_decision` for every stage-1 step, then stage 2, then stage 3, one
  transaction each (lock, claim, activate the next stage with token + rendered mail in the
  outbox, audit events, commit);
- **replies/s**: the same chain on a second fresh database, driven by real reply bytes built
  from each approval mail in the outbox and fed to `ingest_raw` (parse → dedupe → token →
  sender → authentication → interpret → decide → enqueue, one transaction each). Building the
  replies happens between stages and is not timed.

    python -m bench.decisions [-n 500] [--postgres postgresql+psycopg://…/postgres] [--profile]

`--postgres` is an admin URL: the script creates `bevilling_bench_<pid>`, migrates it, and drops
it at the end. `--profile` runs cProfile over the SQLite runs and prints the top costs.
"""

import argparse
import cProfile
import email
import os
import pstats
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import yaml
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, col

from bench.support import PROJECT_ROOT
from config.closed_days import working_calendar
from config.settings import Settings
from db.engine import close_engine, make_engine, transaction
from db.migrate import upgrade_to_head
from domain.approval_state import Verdict
from loading.register_file import read_register
from models import ApprovalStep, BudgetRequest, Outbox, Person
from workflow.context import make_context
from workflow.decisions import apply_decision
from workflow.inbound import ingest_raw
from workflow.outbox import stored_message
from workflow.register_load import apply_register
from workflow.request_load import apply_requests
from workflow.routing import submit

SEED = PROJECT_ROOT / "data" / "aarhus-budget-2026-2029.yaml"
TEMPLATE_KEY = "DOMEN-DRIFT"
STAGES = ("afdelingschef", "stadsdirektoer", "borgmester")
SECRET = "bench-secret-not-for-production"  # noqa: S105  (signs links in a throwaway DB)
START = datetime(2025, 10, 1, 7, 0, tzinfo=UTC)
TARGET_REPLIES = 400  # decisions have a relative floor: ≥ 1.2× SpiffWorkflow (bench.versus_spiff)


@dataclass(frozen=True)
class Timing:
    """One measured phase."""

    count: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def register_file(directory: Path, n: int) -> Path:
    """The seed with its requests replaced by N copies of DOMEN-DRIFT."""
    document = yaml.safe_load(SEED.read_text(encoding="utf-8"))
    template = next(r for r in document["requests"] if r["key"] == TEMPLATE_KEY)
    document["requests"] = [{**template, "key": f"{TEMPLATE_KEY}-{i:05d}"} for i in range(n)]
    path = directory / f"bench-{n}.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")
    return path


def prepare(url: str, register: Path, settings: Settings) -> Engine:
    """Migrate, load people/grants/requests, submit every request (untimed)."""
    upgrade_to_head(url)
    engine = make_engine(url)
    loaded = read_register(register)
    calendar = working_calendar(settings, around=date(2026, 1, 1), span_years=15)
    with transaction(engine) as session:
        apply_register(session, loaded, default_offsets=settings.reminder_offsets,
                       calendar=calendar, now=START)
        apply_requests(session, loaded, now=START)
    ctx = make_context(settings, now=START, secret=SECRET)
    keys = [r.item.key for r in loaded.requests]
    with transaction(engine) as session:
        for key in keys:
            submit(session, key, ctx=ctx)
    return engine


def steps_by_stage(engine: Engine) -> dict[str, list[int]]:
    """Step ids of the current version, grouped by stage, in request order."""
    with Session(engine) as session:
        rows = session.execute(select(col(ApprovalStep.stage_key), col(ApprovalStep.id))
                               .order_by(col(ApprovalStep.request_id))).all()
    grouped: dict[str, list[int]] = {stage: [] for stage in STAGES}
    for stage, step_id in rows:
        grouped[stage].append(step_id or 0)
    return grouped


def run_decisions(engine: Engine, settings: Settings) -> Timing:
    """apply_decision for every step, stage by stage, one transaction each.

    Each in its own SQLModel session and transaction, as the reply path and the page run it.
    """
    grouped = steps_by_stage(engine)
    ctx = make_context(settings, now=START + timedelta(hours=1), secret=SECRET)
    count, started = 0, time.perf_counter()
    for stage in STAGES:
        for step_id in grouped[stage]:
            with transaction(engine) as db:
                result = apply_decision(db, step_id=step_id, verdict=Verdict.APPROVE,
                                        comment="", channel="bench", actor_email="bench",
                                        token_id=None, ctx=ctx)
            if not result.applied:
                raise RuntimeError(f"step {step_id} not decided: {result}")
            count += 1
    return Timing(count, time.perf_counter() - started)


_counter = [0]


def reply_bytes(original: EmailMessage, *, sender: str, text: str) -> bytes:
    """What an approver's client sends: threaded, to the Reply-To, text above a `>` quote."""
    _counter[0] += 1
    reply = EmailMessage(policy=default_policy)
    reply["From"] = sender
    reply["To"] = str(original["Reply-To"])
    reply["Subject"] = "SV: " + str(original["Subject"])
    reply["Message-ID"] = f"<bench-{_counter[0]}@kommune.example.org>"
    reply["In-Reply-To"] = str(original["Message-ID"]).strip()
    reply["References"] = str(original["Message-ID"]).strip()
    body = original.get_body(preferencelist=("plain",))
    quoted = "\n".join(f"> {line}" for line in str(
        body.get_content() if isinstance(body, EmailMessage) else "").splitlines())
    reply.set_content(f"{text}\n\nDen 1. okt. 2025 skrev Bevilling:\n{quoted}\n")
    return reply.as_bytes()


def pending_replies(engine: Engine, step_ids: list[int]) -> list[bytes]:
    """One GODKEND reply per step, built from the step's approval mail in the outbox."""
    refs = [f"step:{step_id}" for step_id in step_ids]
    with Session(engine) as session:
        emails = dict(session.execute(select(col(Person.id), col(Person.email))).all())
        approvers = dict(session.execute(select(col(ApprovalStep.id), col(ApprovalStep.approver_id))
                                         .where(col(ApprovalStep.id).in_(step_ids))).all())
        templates = Settings().templates_dir
        mails = {row.subject_ref: stored_message(row, templates_dir=templates)[1]
                 for row in session.execute(select(Outbox).where(
                     col(Outbox.subject_ref).in_(refs))).scalars()}
    replies = []
    for step_id in step_ids:
        parsed = email.message_from_bytes(mails[f"step:{step_id}"], policy=default_policy)
        if not isinstance(parsed, EmailMessage):
            raise TypeError("policy.default yields EmailMessage")
        replies.append(reply_bytes(parsed, sender=emails[approvers[step_id]], text="GODKEND"))
    return replies


def run_replies(engine: Engine, settings: Settings) -> Timing:
    """ingest_raw of prebuilt replies, stage by stage; only the ingestion is timed."""
    grouped = steps_by_stage(engine)
    now = START + timedelta(hours=1)
    count, seconds = 0, 0.0
    for stage in STAGES:
        replies = pending_replies(engine, grouped[stage])
        started = time.perf_counter()
        for raw in replies:
            result = ingest_raw(engine, raw, source="bench", settings=settings, now=now)
            if result.outcome != "decision":
                raise RuntimeError(f"reply not decisive: {result}")
            count += 1
        seconds += time.perf_counter() - started
    return Timing(count, seconds)


def check_finished(engine: Engine, n: int) -> None:
    """Every request approved after three stages."""
    with Session(engine) as session:
        states = [s for (s,) in session.execute(select(col(BudgetRequest.state))).all()]
    if states.count("approved") != n:
        raise RuntimeError(f"expected {n} approved requests, got {states}")


@contextmanager
def sqlite_database(directory: Path, name: str) -> Iterator[str]:
    yield f"sqlite:///{directory / name}.db"


@contextmanager
def postgres_database(admin_url: str, name: str) -> Iterator[str]:
    """Create `name` on the server of `admin_url`; drop it afterwards."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :n"), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def measure(database: Callable[[str], AbstractContextManager[str]], register: Path, n: int,
            profile: cProfile.Profile | None) -> tuple[Timing, Timing]:
    """(decisions, replies) timings, each on its own fresh database."""
    results = []
    phases: tuple[tuple[str, Callable[[Engine, Settings], Timing]], ...] = (
        ("decisions", run_decisions),
        ("replies", run_replies),
    )
    for phase, runner in phases:
        results.append(measure_phase(database, phase, runner, register, n, profile))
    return results[0], results[1]


def measure_phase(database: Callable[[str], AbstractContextManager[str]], phase: str,
                  runner: Callable[[Engine, Settings], Timing], register: Path, n: int,
                  profile: cProfile.Profile | None = None) -> Timing:
    """One phase on its own fresh database `phase`: prepare (untimed), run, check all approved."""
    with database(phase) as url:
        settings = Settings(database_url=url, token_secret=SECRET)
        engine = prepare(url, register, settings)
        try:
            if profile is not None:
                profile.enable()
            timing = runner(engine, settings)
            if profile is not None:
                profile.disable()
            check_finished(engine, n)
        finally:
            close_engine(engine)
    return timing


def top_costs(profile: cProfile.Profile, *, limit: int = 15) -> list[str]:
    """The project functions with the largest own + callee time, as file:line."""
    stats = pstats.Stats(profile)
    entries = []
    for (filename, line, name), (_, calls, tottime, cumtime, _) in \
            stats.stats.items():  # type: ignore[attr-defined]
        entries.append((cumtime, tottime, calls, filename, line, name))
    root = str(PROJECT_ROOT)
    rows = []
    for cumtime, tottime, calls, filename, line, name in sorted(entries, reverse=True):
        if not filename.startswith(root) or "/.venv/" in filename or "/bench/" in filename:
            continue
        rows.append(f"| `{filename[len(root) + 1:]}:{line}` {name} | {calls} | "
                    f"{cumtime:.2f} | {tottime:.2f} |")
        if len(rows) >= limit:
            break
    library = sorted(entries, key=lambda e: e[1], reverse=True)[:10]
    rows.append("")
    rows.append("| hottest functions by own time (any module) | calls | cum s | own s |")
    rows.append("|---|---|---|---|")
    for cumtime, tottime, calls, filename, line, name in library:
        short = re.sub(r".*/site-packages/", "", filename).replace(root + "/", "")
        rows.append(f"| `{short}:{line}` {name} | {calls} | {cumtime:.2f} | {tottime:.2f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-n", type=int, default=500, help="requests (3 decisions each)")
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server to also measure")
    parser.add_argument("--profile", action="store_true", help="cProfile the SQLite runs")
    args = parser.parse_args()
    rows = []
    profile = cProfile.Profile() if args.profile else None
    with tempfile.TemporaryDirectory(prefix="bench-decisions-") as tmp:
        directory = Path(tmp)
        register = register_file(directory, args.n)
        rows.append(("SQLite (file, WAL)", *measure(
            lambda phase: sqlite_database(directory, phase), register, args.n, profile)))
        if args.postgres:
            name = f"bevilling_bench_{os.getpid()}"
            rows.append(("PostgreSQL", *measure(lambda phase: postgres_database(
                args.postgres, f"{name}_{phase}"), register, args.n, None)))
    print(f"\n{args.n} requests × 3 stages = {3 * args.n} decisions per run\n")
    print("| backend | decisions/s (`apply_decision`) | ms/decision | replies/s (`ingest_raw`) "
          "| ms/reply |")
    print("|---|---|---|---|---|")
    for backend, decisions, replies in rows:
        print(f"| {backend} | {decisions.rate:,.0f} | {1000 / decisions.rate:.2f} | "
              f"{replies.rate:,.0f} | {1000 / replies.rate:.2f} |")
    print(f"\nfloors: ≥ {TARGET_REPLIES} ingested replies/s on SQLite; decisions ≥ 1.2× "
          "SpiffWorkflow on the same chain (python -m bench.versus_spiff)")
    if profile is not None:
        print("\n| project function (SQLite, both phases) | calls | cum s | own s |")
        print("|---|---|---|---|")
        print("\n".join(top_costs(profile)))


if __name__ == "__main__":
    main()
