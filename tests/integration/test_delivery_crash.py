"""A delivery process killed with SIGKILL mid-batch loses nothing and resends only messages in
the documented crash window (`workflow.delivery` docstring: at most k + c − 1), each at most once.

The child commits outcomes only when `FLUSH_EVERY` results are pending (the timed flush is pushed
out of reach), so the window is really populated when the kill lands."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from config.settings import get_settings
from models import Outbox, OutboxState
from tests.support.factories import ROOT, load_file, make_grant, write_register
from tests.support.smtp_server import RecordingHandler, free_port
from workflow.deadlines import enqueue_due
from workflow.delivery import drain_outbox, resend_bound

MAILS = 40
CONCURRENCY = 4
FLUSH_EVERY = 5


class SlowHandler(RecordingHandler):
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


async def test_sigkill_mid_batch_then_rerun(app_env: dict[str, str], engine: Engine,
                                            tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    handler = SlowHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        monkeypatch.setenv("BEVILLING_SMTP_PORT", str(port))
        monkeypatch.setenv("BEVILLING_DELIVERY_LEASE_SECONDS", "5")
        monkeypatch.setenv("BEVILLING_SEND_CONCURRENCY", str(CONCURRENCY))
        get_settings.cache_clear()
        path = write_register(tmp_path / "r.yaml", grants=[
            make_grant(f"G{i}", end=date(2025, 10, 8)) for i in range(MAILS)])
        load_file(engine, path)
        assert enqueue_due(date(2025, 10, 1))["mails"] == MAILS

        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        child = subprocess.Popen(
            [sys.executable, "-c",
             "import asyncio; from workflow.delivery import drain_outbox; "
             f"asyncio.run(drain_outbox(worker='doomed', flush_every={FLUSH_EVERY}, "
             "flush_after=600))"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while len(handler.received) < MAILS // 3 and time.monotonic() < deadline:
                if child.poll() is not None:
                    stderr = child.stderr.read() if child.stderr else b""
                    raise AssertionError(f"child exited early: {stderr!r}")
                await asyncio.sleep(0.01)
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)
        await asyncio.sleep(0.3)  # a DATA the child finished just before dying still lands
        delivered_before = len(handler.received)
        assert 0 < delivered_before < MAILS, "the kill must land mid-batch"
        with Session(engine) as session:
            stuck = session.execute(select(Outbox).where(
                col(Outbox.state) == OutboxState.SENDING)).scalars().all()
            committed = set(session.execute(select(col(Outbox.message_id)).where(
                col(Outbox.state) == OutboxState.SENT)).scalars())
        assert stuck, "the killed worker's claimed rows are still leased"
        accepted_uncommitted = set(handler.message_ids()) - committed

        # Before the lease ends nobody may take them over (the child claimed the whole batch)...
        early = await drain_outbox(now=datetime.now(UTC), worker="early")
        assert early["sent"] == 0
        assert len(handler.received) == delivered_before
        # ...after it, the rerun delivers the rest.
        await drain_outbox(now=datetime.now(UTC) + timedelta(seconds=30), worker="rescuer")
    finally:
        controller.stop()

    counts = Counter(handler.message_ids())
    with Session(engine) as session:
        rows = session.execute(select(Outbox)).scalars().all()
    assert {row.message_id for row in rows} == set(counts), "no message lost"
    assert all(row.state == OutboxState.SENT for row in rows)
    duplicates = {mid: n for mid, n in counts.items() if n > 1}
    assert all(n == 2 for n in duplicates.values()), "a message is resent at most once"
    # Exactly the messages the server accepted but the child had not committed were resent...
    assert set(duplicates) == accepted_uncommitted
    # ...and there are no more of them than the module docstring promises.
    bound = resend_bound(concurrency=CONCURRENCY, flush_every=FLUSH_EVERY)
    assert len(duplicates) <= bound, f"resends beyond the documented window: {duplicates}"
