"""Messages per second into an SMTP sink in its own process: raw aiosmtplib, the whole bevilling
pipeline (outbox → drain_outbox), and one Prefect task per e-mail for contrast.

    .venv/bin/python -m bench.delivery [--messages 2000] [--concurrency 4]
        [--task-per-mail-messages 200] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/<name>.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import (
    LOOPBACK,
    PROJECT_ROOT,
    maildir_files,
    markdown_table,
    message_ids,
    running_sink,
    sample_reminder_mails,
    stop_process,
)
from db.engine import close_engine

TARGET_RATIO = 0.7


@dataclass
class Row:
    """One measured approach."""

    approach: str
    messages: int
    seconds: float
    delivered: int
    duplicates: int
    missing: int
    note: str = ""

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def check_maildir(maildir: Path, before: set[str], expected: set[str]) -> tuple[int, int, int]:
    """(new files, duplicated Message-IDs, expected Message-IDs missing) since `before`."""
    new = maildir_files(maildir) - before
    counts = message_ids(maildir, new)
    duplicates = sum(count - 1 for count in counts.values() if count > 1)
    missing = len(expected - set(counts))
    return len(new), duplicates, missing


# --- a. raw aiosmtplib -------------------------------------------------------------------------

def raw_messages(count: int) -> list[EmailMessage]:
    """Already-built messages shaped like reminders (multipart/alternative + ICS)."""
    from bench.task_per_mail import build_messages

    messages = build_messages(count)
    for index, message in enumerate(messages):
        message.replace_header("Message-ID", f"<raw-{index}@bench.invalid>")
    return messages


async def send_raw(messages: list[EmailMessage], *, port: int, concurrency: int) -> None:
    """Send over `concurrency` reused connections, checking each result."""
    import aiosmtplib

    queue: asyncio.Queue[EmailMessage] = asyncio.Queue()
    for message in messages:
        queue.put_nowait(message)

    async def worker() -> None:
        client = aiosmtplib.SMTP(hostname=LOOPBACK, port=port, timeout=30)
        await client.connect()
        try:
            while not queue.empty():
                message = queue.get_nowait()
                refused, _ = await client.send_message(
                    message, sender="bounce@bevilling.example.org")
                if refused:
                    raise RuntimeError(f"refused: {refused}")
        finally:
            await client.quit()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def bench_raw(*, count: int, port: int, concurrency: int, maildir: Path) -> Row:
    """Approach a."""
    messages = raw_messages(count)
    before = maildir_files(maildir)
    started = time.perf_counter()
    asyncio.run(send_raw(messages, port=port, concurrency=concurrency))
    seconds = time.perf_counter() - started
    expected = {f"<raw-{index}@bench.invalid>" for index in range(count)}
    delivered, duplicates, missing = check_maildir(maildir, before, expected)
    return Row("raw aiosmtplib (pre-built messages)", count, seconds, delivered, duplicates,
               missing)


# --- b. the bevilling pipeline ------------------------------------------------------------------

def configure(url: str, *, port: int, concurrency: int, batch_size: int | None) -> None:
    """Point bevilling's settings at this database and sink (settings are cached per process)."""
    from config.settings import get_settings
    from db.engine import dispose_engines

    os.environ.update({"BEVILLING_DATABASE_URL": url, "BEVILLING_SMTP_HOST": LOOPBACK,
                       "BEVILLING_SMTP_PORT": str(port),
                       "BEVILLING_SEND_CONCURRENCY": str(concurrency)})
    if batch_size:
        os.environ["BEVILLING_DELIVERY_BATCH_SIZE"] = str(batch_size)
    get_settings.cache_clear()
    dispose_engines()


def enqueue_mails(url: str, count: int, *, now: datetime) -> None:
    """`count` outbox rows with real rendered reminder content, in one transaction."""
    from config.settings import get_settings
    from db.engine import make_engine, transaction
    from models.outbox import NewMail
    from workflow.outbox import enqueue

    samples = sample_reminder_mails(now=now)
    mails = []
    for index in range(count):
        sample = samples[index % len(samples)]
        local, _, domain = sample.recipient.partition("@")
        mails.append(NewMail(
            key=f"reminder:{index}:{local}{index % 97}@{domain}", kind=sample.kind,
            subject_ref=f"grant:BA-{index:06d}", recipient=f"{local}{index % 97}@{domain}",
            subject=sample.subject, body_text=sample.body_text, body_html=sample.body_html,
            attachments=sample.attachments))
    engine = make_engine(url)
    try:
        with transaction(engine) as session:
            enqueue(session, mails, now=now, domain=get_settings().mail_domain)
    finally:
        close_engine(engine)


def outbox_message_ids(url: str) -> tuple[set[str], dict[str, int]]:
    """Every Message-ID in the outbox, and rows per state."""
    from sqlalchemy import text

    from db.engine import make_engine
    from db.outbox import outbox_counts

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            ids = set(connection.execute(text("SELECT message_id FROM outbox")).scalars())
        return ids, outbox_counts(engine)
    finally:
        close_engine(engine)


def bench_pipeline(label: str, url: str, *, count: int, port: int, concurrency: int,
                   batch_size: int | None, maildir: Path, profile: Path | None) -> Row:
    """Approach b: enqueue (untimed), then time drain_outbox() until everything is sent."""
    from db.migrate import upgrade_to_head
    from workflow.delivery import drain_outbox

    configure(url, port=port, concurrency=concurrency, batch_size=batch_size)
    upgrade_to_head(url)
    now = datetime.now(UTC)
    enqueue_mails(url, count, now=now)
    before = maildir_files(maildir)
    started = time.perf_counter()
    if profile is None:
        summary = asyncio.run(drain_outbox(now=now + timedelta(seconds=1), worker="bench"))
    else:
        import cProfile

        profiler = cProfile.Profile()
        summary = profiler.runcall(asyncio.run,
                                   drain_outbox(now=now + timedelta(seconds=1), worker="bench"))
        profiler.dump_stats(str(profile))
    seconds = time.perf_counter() - started
    from db.engine import dispose_engines

    dispose_engines()
    expected, states = outbox_message_ids(url)
    delivered, duplicates, missing = check_maildir(maildir, before, expected)
    note = (f"outbox {states}; {summary['batches']} batches; "
            f"retry {summary['retry']}, failed {summary['failed']}")
    return Row(label, count, seconds, delivered, duplicates, missing, note)


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A database of our own, `bevilling_bench_<pid>`, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    name = f"bevilling_bench_{os.getpid()}"
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        from db.engine import dispose_engines

        dispose_engines()
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- c. one Prefect task per e-mail ---------------------------------------------------------------

def bench_task_per_mail(*, count: int, port: int, concurrency: int, maildir: Path,
                        prefect_home: Path, log: Path) -> Row:
    """Approach c, in a child process with an ephemeral Prefect server under a temp home."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("PREFECT_")}
    env.update({"PREFECT_HOME": str(prefect_home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_LOGGING_LEVEL": "WARNING"})
    before = maildir_files(maildir)
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.task_per_mail", "--port", str(port),
             "--messages", str(count), "--concurrency", str(concurrency)],
            cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=log_file,
            start_new_session=True)
        try:
            output, _ = process.communicate(timeout=600)
        finally:
            stop_process(process)
    lines = [line for line in output.decode().splitlines() if line.startswith("BENCH-RESULT ")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"task-per-mail run failed (exit {process.returncode}); see {log}")
    result = json.loads(lines[-1].removeprefix("BENCH-RESULT "))
    expected = {f"<task-{index}@bench.invalid>" for index in range(count)}
    delivered, duplicates, missing = check_maildir(maildir, before, expected)
    return Row("one Prefect task per e-mail", count, float(result["seconds"]), delivered,
               duplicates, missing,
               f"{result['sent']} task runs completed; ephemeral server start "
               f"{result['startup_seconds']:.1f} s not counted")


# --- where the pipeline's time goes ------------------------------------------------------------

def per_message_costs(workdir: Path, *, count: int) -> dict[str, float]:
    """CPU ms per message of each step, measured alone: what moved to enqueue, what is left on
    the delivery loop, and the old one-commit-per-message recording for comparison."""
    from aiosmtplib.email import flatten_message

    from db.engine import make_engine
    from db.migrate import upgrade_to_head
    from db.outbox import SendOutcome, claim_batch, record_outcomes
    from mail.mime import build_message
    from workflow.delivery import FLUSH_EVERY

    url = f"sqlite:///{workdir / 'costs.db'}"
    upgrade_to_head(url)
    now = datetime.now(UTC)
    started = time.perf_counter()
    enqueue_mails(url, count, now=now)
    enqueued = time.perf_counter()
    engine = make_engine(url)
    try:
        claimed = claim_batch(engine, worker="costs", now=now + timedelta(seconds=1),
                              lease_seconds=300, limit=count)
        claimed_at = time.perf_counter()
        half = len(claimed) // 2
        grouped, single = claimed[:half], claimed[half:]
        for start in range(0, len(grouped), FLUSH_EVERY):
            record_outcomes(engine, [SendOutcome(mail, "sent")
                                     for mail in grouped[start:start + FLUSH_EVERY]],
                            worker="costs", now=now)
        recorded = time.perf_counter()
        for mail in single:
            record_outcomes(engine, [SendOutcome(mail, "sent")], worker="costs", now=now)
        recorded_single = time.perf_counter()
        rebuilt = time.perf_counter()
        messages = [build_message(mail, sender="bevilling@bevilling.example.org",
                                  sender_name="Bevilling", now=now) for mail in claimed]
        built = time.perf_counter()
        for message in messages:
            flatten_message(message)
        flattened = time.perf_counter()
    finally:
        close_engine(engine)
    per = 1000 / len(claimed)
    return {
        "enqueue, incl. build + flatten into raw_message (at enqueue, not at delivery)":
            (enqueued - started) * per,
        "delivery: claim_batch (its share of one claim)": (claimed_at - enqueued) * per,
        f"delivery: record_outcomes, groups of {FLUSH_EVERY} (1 commit + audit append each)":
            (recorded - claimed_at) * 1000 / max(1, len(grouped)),
        "before: build_message at send time": (built - rebuilt) * per,
        "before: aiosmtplib flatten at send time": (flattened - built) * per,
        "before: record_outcomes, 1 commit per message":
            (recorded_single - recorded) * 1000 / max(1, len(single)),
    }


# --- main -----------------------------------------------------------------------------------------

def report(rows: list[Row]) -> str:
    """The markdown table."""
    raw = rows[0].rate
    return markdown_table(
        ["approach", "messages", "seconds", "msg/s", "ratio to raw", "delivered", "duplicates",
         "missing"],
        [[row.approach, row.messages, f"{row.seconds:.2f}", f"{row.rate:.0f}",
          f"{row.rate / raw:.2f}×", row.delivered, row.duplicates, row.missing]
         for row in rows])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.delivery", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000,
                        help="messages for raw and pipeline (default 2000)")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="SMTP connections / task-runner workers (default 4)")
    parser.add_argument("--task-per-mail-messages", type=int, default=200,
                        help="messages for the one-task-per-mail run; 0 skips it (default 200)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="BEVILLING_DELIVERY_BATCH_SIZE for the pipeline (default: settings)")
    parser.add_argument("--postgres", metavar="URL", default=None,
                        help="also run the pipeline on PostgreSQL; a database "
                             "bevilling_bench_<pid> is created on that server and dropped")
    parser.add_argument("--profile", type=Path, default=None, metavar="FILE",
                        help="cProfile the SQLite pipeline run into FILE (pstats format)")
    parser.add_argument("--cost-messages", type=int, default=500,
                        help="messages for the per-step cost breakdown; 0 skips it (default 500)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (Maildir, logs)")
    args = parser.parse_args(argv)
    if not 1 <= args.messages <= 100_000 or not 1 <= args.concurrency <= 64:
        parser.error("--messages must be 1..100000 and --concurrency 1..64")
    if not 0 <= args.task_per_mail_messages <= 10_000:
        parser.error("--task-per-mail-messages must be 0..10000")
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the three approaches against one sink and print the table."""
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bevilling-bench-delivery-"))
    # Before anything imports prefect: never touch the user's ~/.prefect.
    os.environ["PREFECT_HOME"] = str(workdir / "prefect-parent")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    maildir = workdir / "maildir"
    rows: list[Row] = []
    try:
        with running_sink(maildir, log=workdir / "sink.log") as port:
            print(f"sink: python -m mail.sink on {LOOPBACK}:{port} → {maildir}", flush=True)
            rows.append(bench_raw(count=args.messages, port=port,
                                  concurrency=args.concurrency, maildir=maildir))
            print(f"raw done: {rows[-1].rate:.0f} msg/s", flush=True)
            rows.append(bench_pipeline(
                "bevilling pipeline, SQLite (drain_outbox)", f"sqlite:///{workdir / 'bench.db'}",
                count=args.messages, port=port, concurrency=args.concurrency,
                batch_size=args.batch_size, maildir=maildir, profile=args.profile))
            print(f"pipeline done: {rows[-1].rate:.0f} msg/s", flush=True)
            if args.postgres:
                with postgres_database(args.postgres) as url:
                    rows.append(bench_pipeline(
                        "bevilling pipeline, PostgreSQL (drain_outbox)", url,
                        count=args.messages, port=port, concurrency=args.concurrency,
                        batch_size=args.batch_size, maildir=maildir, profile=None))
                print(f"pipeline (PostgreSQL) done: {rows[-1].rate:.0f} msg/s", flush=True)
            if args.task_per_mail_messages:
                rows.append(bench_task_per_mail(
                    count=args.task_per_mail_messages, port=port, concurrency=args.concurrency,
                    maildir=maildir, prefect_home=workdir / "prefect",
                    log=workdir / "task-per-mail.log"))
        costs = (per_message_costs(workdir, count=args.cost_messages)
                 if args.cost_messages else {})
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(report(rows))
    print()
    for row in rows:
        if row.note:
            print(f"- {row.approach}: {row.note}")
    pipeline = rows[1]
    ratio = pipeline.rate / rows[0].rate
    verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
    print(f"- pipeline/raw = {ratio:.2f} ({verdict} the ≥ {TARGET_RATIO}× target); "
          f"concurrency {args.concurrency}; {os.cpu_count()} CPUs")
    if costs:
        loop = sum(ms for name, ms in costs.items() if name.startswith("delivery:"))
        before = sum(ms for name, ms in costs.items() if name.startswith("before:"))
        print(f"\nCPU ms per message of each step measured alone ({args.cost_messages} "
              f"messages, SQLite). Only the `delivery:` steps run on drain_outbox's event loop "
              f"besides the SMTP protocol itself:\n")
        print(markdown_table(["step", "ms/message"],
                             [[name, f"{ms:.2f}"] for name, ms in costs.items()]
                             + [["sum on the delivery loop now (without SMTP)", f"{loop:.2f}"],
                                ["sum on the delivery loop before (without SMTP)",
                                 f"{before:.2f}"]]))
    problems = [row for row in rows if row.duplicates or row.missing
                or row.delivered != row.messages]
    if problems:
        print("- DELIVERY PROBLEM: " + "; ".join(
            f"{row.approach}: {row.delivered} delivered, {row.duplicates} duplicates, "
            f"{row.missing} missing" for row in problems))
        sys.exit(1)


if __name__ == "__main__":
    main()
