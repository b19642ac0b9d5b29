"""Two processes answer the same step at the same instant: one decision, one refusal, one advance.

Two spawned worker processes stay up for all rounds; each round they get a different valid reply
(GODKEND vs AFVIS, different Message-IDs) to the same pending step, wait at a shared barrier and
ingest at once. Runs on a SQLite file and on PostgreSQL.
"""

import multiprocessing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import col

from db.engine import close_engine, make_engine, transaction
from models import Delegation, Person
from tests.support.approvals import (
    SUBMITTED,
    approval_mail_for,
    build_reply,
    ingest,
    load_seed,
    make_settings,
    outbox,
    pending_step,
    request_state,
    steps_of,
    submit_request,
)

KAREN = "karen.holm@kommune.example.org"
# Requests whose first stage is Karen's and that have a later stage to advance to.
ROUNDS = ("DOMEN-DRIFT", "WVDK-KONTINGENT", "TEMA-AI", "TEMA-BEREDSKAB")
Job = tuple[bytes, datetime] | None
Outcome = tuple[str, str, str]


def _worker(url: str, jobs: "Queue[Job]", results: "Queue[Outcome]", barrier: Barrier) -> None:
    """Ingest whatever arrives, each time released together with the other worker."""
    settings = make_settings(url)
    engine = make_engine(url)
    try:
        while (job := jobs.get(timeout=120)) is not None:
            raw, now = job
            barrier.wait(timeout=60)
            try:
                result = ingest(engine, raw, settings=settings, now=now)
                results.put(("ok", result.outcome, result.detail))
            except Exception as exc:  # reported to the test, which fails on it
                results.put(("error", type(exc).__name__, str(exc)))
    finally:
        close_engine(engine)


@dataclass
class Workers:
    jobs: "list[Queue[Job]]"
    results: "Queue[Outcome]"
    processes: list[SpawnProcess]

    def race(self, raws: tuple[bytes, bytes], *, now: datetime) -> list[Outcome]:
        for queue, raw in zip(self.jobs, raws, strict=True):
            queue.put((raw, now))
        return sorted(self.results.get(timeout=90) for _ in raws)


@pytest.fixture
def workers(database_url: str) -> Iterator[Workers]:
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(2)
    results: Queue[Outcome] = spawn.Queue()
    jobs: list[Queue[Job]] = [spawn.Queue(), spawn.Queue()]
    processes = [spawn.Process(target=_worker, args=(database_url, queue, results, barrier),
                               daemon=True) for queue in jobs]
    for process in processes:
        process.start()
    yield Workers(jobs, results, processes)
    for queue in jobs:
        queue.put(None)
    for process in processes:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()


def next_stage_mails(engine: Engine, key: str) -> list[Any]:
    later = {s.id for s in steps_of(engine, key) if s.stage != "afdelingschef"}
    return [m for m in outbox(engine, kind="approval_request")
            if int(m.subject_ref.split(":")[1]) in later]


def test_simultaneous_replies_decide_once(database_url: str, workers: Workers) -> None:
    engine = make_engine(database_url)
    settings = make_settings(database_url)
    try:
        load_seed(engine)
        now = SUBMITTED
        for index, key in enumerate(ROUNDS):
            submit_request(engine, key, settings=settings, now=now)
            step = pending_step(engine, key, KAREN)
            original = approval_mail_for(engine, step.id).message
            raws = (build_reply(original, sender=KAREN, text="GODKEND",
                                message_id=f"<race-{index}-a@kommune.example.org>"),
                    build_reply(original, sender=KAREN, text="AFVIS",
                                message_id=f"<race-{index}-b@kommune.example.org>"))
            now += timedelta(minutes=10)
            outcomes = workers.race(raws, now=now)
            assert [o[0] for o in outcomes] == ["ok", "ok"], outcomes
            assert [o[1] for o in outcomes] == ["decision", "refused-decided"], outcomes
            winner = outcomes[0][2]

            steps = steps_of(engine, key)
            decided = [s for s in steps if s.state in ("approved", "rejected")]
            assert [s.id for s in decided] == [step.id]
            advanced = next_stage_mails(engine, key)
            outcome_mails = [m for m in outbox(engine, kind="approval_outcome")
                             if m.subject_ref == f"request:{key}"]
            if winner == "approve":
                assert decided[0].state == "approved"
                assert len(advanced) == 1
                assert outcome_mails == []
                assert request_state(engine, key) == "pending"
            else:
                assert decided[0].state == "rejected"
                assert advanced == []
                assert len(outcome_mails) == 1
                assert request_state(engine, key) == "rejected"
            notices = [m for m in outbox(engine, kind="notice_") if m.recipient == KAREN
                       and m.subject_ref == f"request:{key}"]
            assert len(notices) == 1  # the loser is told the step was already decided
    finally:
        close_engine(engine)


VICE = "vicedirektoer@kommune.example.org"


def test_approver_and_substitute_answering_at_once_decide_once(
    database_url: str, workers: Workers,
) -> None:
    """A delegation starting after the mails went out: Karen and her substitute both answer."""
    engine = make_engine(database_url)
    settings = make_settings(database_url)
    try:
        load_seed(engine)
        now = SUBMITTED
        for key in ROUNDS:
            submit_request(engine, key, settings=settings, now=now)
        with transaction(engine) as session:
            ids: dict[str, int] = dict(session.execute(select(col(Person.email), col(Person.id))
                                                       .where(col(Person.id).is_not(None))).all())
            session.add(Delegation(person_id=ids[KAREN], substitute_id=ids[VICE],
                                   starts=now.date(), ends=now.date() + timedelta(days=30),
                                   created_at=now))
        for index, key in enumerate(ROUNDS):
            step = pending_step(engine, key, KAREN)
            original = approval_mail_for(engine, step.id).message
            raws = (build_reply(original, sender=KAREN, text="GODKEND",
                                message_id=f"<both-{index}-karen@kommune.example.org>"),
                    build_reply(original, sender=VICE, text="GODKEND",
                                message_id=f"<both-{index}-vice@kommune.example.org>"))
            now += timedelta(minutes=10)
            outcomes = workers.race(raws, now=now)
            assert [o[0] for o in outcomes] == ["ok", "ok"], outcomes
            assert [o[1] for o in outcomes] == ["decision", "refused-decided"], outcomes
            decided = [s for s in steps_of(engine, key) if s.state == "approved"]
            assert len(decided) == 1
            assert len(next_stage_mails(engine, key)) == 1
    finally:
        close_engine(engine)
