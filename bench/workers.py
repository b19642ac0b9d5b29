"""Outbox drain with 1, 2 and 3 delivery processes on PostgreSQL: messages/s and duplicates.

Each round: a fresh outbox of N rows (enqueued untimed), a fresh Maildir sink in its own
process, then W `drain_outbox` processes started together and timed until all have exited.
The Maildir is then checked for every Message-ID exactly once.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from bench.support import PROJECT_ROOT, maildir_files, markdown_table, message_ids, running_sink
from db.engine import close_engine

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def enqueue_rows(url: str, count: int, *, round_name: str) -> None:
    """N small rendered mails through the production enqueue (MIME built there)."""
    from db.engine import make_engine
    from models.outbox import NewMail
    from workflow.outbox import enqueue

    engine = make_engine(url)
    mails = [NewMail(key=f"{round_name}:{i}", kind="bench", subject_ref=f"bench:{i}",
                     recipient=f"person{i % 97}@kommune.example.org",
                     subject=f"Påmindelse {i}: bevilling udløber", body_text=f"Tekst {i}\n" * 20,
                     body_html=f"<p>Tekst {i}</p>" * 20) for i in range(count)]
    with Session(engine) as session:
        session.execute(text("TRUNCATE outbox RESTART IDENTITY CASCADE"))
        enqueue(session, mails, now=datetime.now(UTC) - timedelta(seconds=1),
                domain="bevilling.example.org", sender="bevilling@bevilling.example.org",
                sender_name="Bevilling")
        session.commit()
    close_engine(engine)


def run_round(url: str, workers: int, count: int, work: Path) -> list[object]:
    """Time W processes draining N rows; returns a table row."""
    round_name = f"w{workers}-{uuid.uuid4().hex[:6]}"
    enqueue_rows(url, count, round_name=round_name)
    maildir = work / round_name
    with running_sink(maildir, log=work / f"{round_name}-sink.log") as port:
        env = {**os.environ, "BEVILLING_DATABASE_URL": url, "BEVILLING_SMTP_HOST": "127.0.0.1",
               "BEVILLING_SMTP_PORT": str(port), "BEVILLING_DELIVERY_BATCH_SIZE": "100",
               "BEVILLING_SEND_CONCURRENCY": "4", "PYTHONPATH": str(PROJECT_ROOT)}
        code = ("import asyncio, sys; from workflow.delivery import drain_outbox; "
                "asyncio.run(drain_outbox(worker=sys.argv[1]))")
        started = time.monotonic()
        processes = [subprocess.Popen([sys.executable, "-c", code, f"{round_name}-{i}"],
                                      cwd=PROJECT_ROOT, env=env) for i in range(workers)]
        for process in processes:
            process.wait(timeout=600)
        seconds = time.monotonic() - started
        time.sleep(0.5)  # the sink writes the last files after its 250
        names = maildir_files(maildir)
        counts = message_ids(maildir, names)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    missing = count - len(counts)
    return [workers, count, f"{seconds:.2f}", f"{count / seconds:.0f}", len(names),
            duplicates, missing]


def main() -> None:
    """Create a scratch database, run the rounds, print the table, drop the database."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default=DEFAULT_ADMIN_URL, help="admin URL")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--workers", default="1,2,3")
    args = parser.parse_args()
    from db.migrate import upgrade_to_head

    name = f"bevilling_bench_{os.getpid()}"
    admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
    rows = []
    try:
        upgrade_to_head(url)
        with tempfile.TemporaryDirectory(prefix="bevilling-workers-") as tmp:
            for workers in (int(w) for w in args.workers.split(",")):
                rows.append(run_round(url, workers, args.messages, Path(tmp)))
    finally:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :n"), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
    print(markdown_table(["worker processes", "messages", "seconds", "msg/s", "delivered",
                          "duplicates", "missing"], rows))
    if any(row[5] or row[6] for row in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
