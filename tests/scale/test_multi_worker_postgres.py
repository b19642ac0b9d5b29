"""Three delivery processes on PostgreSQL drain one outbox: every message exactly once, and a
killed worker's claimed rows are delivered by the others once its lease has ended."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from config.settings import get_settings
from db.engine import get_engine
from models import Outbox, OutboxState
from models.outbox import NewMail
from tests.support.factories import ROOT
from tests.support.smtp_server import RecordingHandler, free_port
from workflow.delivery import drain_outbox
from workflow.outbox import enqueue

MESSAGES = 2000
WORKERS = 3
LEASE_SECONDS = 6


def fill_outbox(engine: Engine, count: int, *, prefix: str) -> None:
    """`count` small rendered mails, enqueued the production way."""
    mails = [NewMail(key=f"{prefix}:{i}", kind="load-test", subject_ref=f"load:{i}",
                     recipient=f"person{i % 50}@kommune.example.org",
                     subject=f"Besked {i}", body_text=f"Tekst {i}\n",
                     body_html=f"<p>Tekst {i}</p>") for i in range(count)]
    with Session(engine) as session:
        enqueue(session, mails, now=datetime.now(UTC) - timedelta(seconds=1),
                domain="bevilling.example.org")
        session.commit()


def start_workers(
    env: dict[str, str], names: list[str], log_dir: Path
) -> list[subprocess.Popen[bytes]]:
    """Delivery processes started at once, each running drain_outbox until nothing is due."""
    code = ("import asyncio, sys; from workflow.delivery import drain_outbox; "
            "print(asyncio.run(drain_outbox(worker=sys.argv[1]))['sent'])")
    return [subprocess.Popen([sys.executable, "-c", code, name], cwd=ROOT, env=env,
                             stdout=(log_dir / f"{name}.out").open("wb"),
                             stderr=subprocess.STDOUT) for name in names]


def wait_all(processes: list[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            raise


def state_counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.execute(select(col(Outbox.state), func.count()).group_by(
            col(Outbox.state))).all()
    return {OutboxState(state).value: int(n) for state, n in rows}


@pytest.fixture
def smtp_recorder() -> Iterator[tuple[RecordingHandler, int]]:
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def worker_env(database_url: str, port: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"BEVILLING_DATABASE_URL": database_url, "BEVILLING_SMTP_HOST": "127.0.0.1",
              "BEVILLING_SMTP_PORT": str(port), "BEVILLING_DELIVERY_BATCH_SIZE": "50",
              "BEVILLING_DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS),
              "BEVILLING_SEND_CONCURRENCY": "4"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return {**os.environ, **values, "PYTHONPATH": str(ROOT)}


def test_three_workers_deliver_2000_exactly_once(
    postgres_url: str, smtp_recorder: tuple[RecordingHandler, int],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    handler, port = smtp_recorder
    env = worker_env(postgres_url, port, monkeypatch)
    engine = get_engine(postgres_url)
    fill_outbox(engine, MESSAGES, prefix="all")
    names = [f"worker-{i}" for i in range(WORKERS)]
    wait_all(start_workers(env, names, tmp_path), timeout=300)
    counts = Counter(handler.message_ids())
    assert len(counts) == MESSAGES
    assert max(counts.values()) == 1, "a message was delivered twice"
    assert state_counts(engine) == {"sent": MESSAGES}
    sent_by = [int((tmp_path / f"{name}.out").read_text().split()[-1]) for name in names]
    assert sum(sent_by) == MESSAGES
    assert all(n > 0 for n in sent_by), f"work was not shared: {sent_by}"


def test_killed_worker_claims_are_taken_over_after_the_lease(
    postgres_url: str, smtp_recorder: tuple[RecordingHandler, int],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    handler, port = smtp_recorder
    env = worker_env(postgres_url, port, monkeypatch)
    engine = get_engine(postgres_url)
    fill_outbox(engine, MESSAGES, prefix="kill")
    processes = start_workers(env, ["victim", "survivor-1", "survivor-2"], tmp_path)
    deadline = time.monotonic() + 120
    while len(handler.received) < MESSAGES // 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    processes[0].send_signal(signal.SIGKILL)
    processes[0].wait(timeout=10)
    wait_all(processes[1:], timeout=300)
    with Session(engine) as session:
        orphaned = session.execute(select(func.count()).where(
            col(Outbox.state) == OutboxState.SENDING, col(Outbox.claimed_by) == "victim")
        ).scalar_one()
    # The survivors cannot take the victim's rows while its lease runs...
    assert state_counts(engine).get("sent", 0) + orphaned == MESSAGES
    # ...and after it, a worker delivers them.
    time.sleep(LEASE_SECONDS + 1)
    asyncio.run(drain_outbox(worker="rescuer"))
    counts = Counter(handler.message_ids())
    assert state_counts(engine) == {"sent": MESSAGES}
    assert len(counts) == MESSAGES, "a message was lost"
    duplicates = {mid: n for mid, n in counts.items() if n > 1}
    assert all(n == 2 for n in duplicates.values())
    # Only the victim's in-flight window can be resent (batch of 50 at most).
    assert len(duplicates) <= 50, duplicates
