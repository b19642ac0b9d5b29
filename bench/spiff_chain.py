"""SpiffWorkflow steps per second through a three-step approval chain, persisted after every step.

The same chain as `bench.decisions` (three sequential approvers), as the BPMN process
`bench/approval_chain.bpmn` (three user tasks: department_head → finance → director) run by
SpiffWorkflow 3.2, handled the way a reply handler has to: per decision

    BEGIN IMMEDIATE → SELECT the instance's JSON → BpmnWorkflowSerializer.deserialize_json →
    complete the READY user task (`task.run()`) → `do_engine_steps()` → serialize_json →
    UPDATE → COMMIT

on a SQLite file (stdlib sqlite3, table `workflow(id, state)`, `journal_mode=WAL`,
`synchronous=NORMAL` like `db.engine`). Creating and saving the N instances is not timed.
At the end every instance must be completed, each after exactly its three steps in order.

    python -m bench.spiff_chain [-n 500] [--by-stage] [--profile]

Needs the `bench` extra: `pip install -e '.[bench]'`.
"""

import argparse
import cProfile
import pstats
import re
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser, BpmnValidator
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

BPMN_FILE = Path(__file__).with_name("approval_chain.bpmn")
PROCESS_ID = "approval_chain"
USER_TASKS = ("department_head", "finance", "director")


@dataclass(frozen=True)
class SpiffRun:
    """One timed run: steps completed and the wall time they took."""

    steps: int
    seconds: float
    cpu_seconds: float  # this process's CPU time (all threads) over the same steps
    state_bytes: int  # mean size of a stored instance after its last step

    @property
    def rate(self) -> float:
        return self.steps / self.seconds if self.seconds else 0.0


@cache
def process_spec() -> Any:
    """The parsed, schema-validated process spec (parsed once per process, as a server would)."""
    parser = BpmnParser(validator=BpmnValidator())
    parser.add_bpmn_file(str(BPMN_FILE))
    return parser.get_spec(PROCESS_ID)


def connect(path: Path) -> sqlite3.Connection:
    """Autocommit at the driver, transactions begun explicitly; the pragmas `db.engine` sets."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def create_instances(conn: sqlite3.Connection, serializer: Any, n: int) -> list[int]:
    """N started instances, each waiting on its first user task, saved in one transaction."""
    conn.execute("CREATE TABLE workflow (id INTEGER PRIMARY KEY, state TEXT NOT NULL)")
    spec = process_spec()
    states = []
    for _ in range(n):
        workflow = BpmnWorkflow(spec)
        workflow.do_engine_steps()
        states.append((serializer.serialize_json(workflow),))
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO workflow (state) VALUES (?)", states)
    conn.execute("COMMIT")
    return [row_id for (row_id,) in conn.execute("SELECT id FROM workflow ORDER BY id")]


def decide(conn: sqlite3.Connection, serializer: Any, instance_id: int) -> str:
    """One approval: load, complete the ready user task, run the engine, save, commit."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT state FROM workflow WHERE id = ?", (instance_id,)).fetchone()
        if row is None:
            raise LookupError(f"no workflow {instance_id}")
        workflow = serializer.deserialize_json(row[0])
        task = workflow.get_next_task(state=TaskState.READY, manual=True)
        if task is None:
            raise RuntimeError(f"workflow {instance_id} has no ready user task")
        task.data["verdict"] = "approve"
        task.run()
        workflow.do_engine_steps()
        conn.execute("UPDATE workflow SET state = ? WHERE id = ?",
                     (serializer.serialize_json(workflow), instance_id))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return str(task.task_spec.name)


def check_finished(conn: sqlite3.Connection, serializer: Any, completed: dict[int, list[str]],
                   n: int) -> int:
    """Every instance completed after its three user tasks in order; the mean state size."""
    if len(completed) != n:
        raise RuntimeError(f"expected {n} instances, decided {len(completed)}")
    wrong = {i: names for i, names in completed.items() if tuple(names) != USER_TASKS}
    if wrong:
        example = next(iter(wrong.items()))
        raise RuntimeError(f"{len(wrong)} instances ran other steps, e.g. {example}")
    sizes = 0
    for instance_id, state in conn.execute("SELECT id, state FROM workflow"):
        sizes += len(state)
        workflow = serializer.deserialize_json(state)
        if not workflow.is_completed():
            raise RuntimeError(f"workflow {instance_id} not completed")
        if workflow.get_tasks(state=TaskState.READY):
            raise RuntimeError(f"workflow {instance_id} still has ready tasks")
    return sizes // n if n else 0


def run(path: Path, n: int, *, by_stage: bool = False,
        profile: cProfile.Profile | None = None) -> SpiffRun:
    """Create N instances in a new SQLite file `path` (untimed), then time 3N decisions.

    Per instance its three steps one after the other, or with `by_stage` every instance's first
    step, then every second, then every third (the order `bench.decisions` decides in).
    """
    serializer = BpmnWorkflowSerializer()
    with closing(connect(path)) as conn:
        ids = create_instances(conn, serializer, n)
        if by_stage:
            order = [i for _ in USER_TASKS for i in ids]
        else:
            order = [i for i in ids for _ in USER_TASKS]
        completed: dict[int, list[str]] = {i: [] for i in ids}
        if profile is not None:
            profile.enable()
        started, cpu_started = time.perf_counter(), time.process_time()
        for instance_id in order:
            completed[instance_id].append(decide(conn, serializer, instance_id))
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        if profile is not None:
            profile.disable()
        mean_size = check_finished(conn, serializer, completed, n)
    return SpiffRun(steps=len(order), seconds=seconds, cpu_seconds=cpu_seconds,
                    state_bytes=mean_size)


@contextmanager
def scratch_file(name: str) -> Iterator[Path]:
    """A path in a fresh temp dir, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-spiff-") as tmp:
        yield Path(tmp) / name


def top_own_time(profile: cProfile.Profile, *, limit: int = 10) -> list[str]:
    """The functions with the most own time, as a Markdown table."""
    stats = pstats.Stats(profile)
    entries = [(tottime, cumtime, calls, filename, line, name) for (filename, line, name),
               (_, calls, tottime, cumtime, _) in stats.stats.items()]  # type: ignore[attr-defined]
    rows = ["| function (own time) | calls | own s | cum s |", "|---|---|---|---|"]
    for tottime, cumtime, calls, filename, line, name in sorted(entries, reverse=True)[:limit]:
        short = re.sub(r".*/(site-packages|lib/python3\.\d+)/", "", filename)
        rows.append(f"| `{short}:{line}` {name} | {calls} | {tottime:.2f} | {cumtime:.2f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-n", type=int, default=500, help="instances (3 steps each)")
    parser.add_argument("--by-stage", action="store_true",
                        help="all first steps, then all second, then all third")
    parser.add_argument("--profile", action="store_true", help="cProfile the timed steps")
    args = parser.parse_args()
    profile = cProfile.Profile() if args.profile else None
    with scratch_file("spiff.db") as path:
        result = run(path, args.n, by_stage=args.by_stage, profile=profile)
    print(f"\n{args.n} instances × 3 user tasks = {result.steps} steps, "
          f"{result.seconds:.2f} s: {result.rate:,.0f} steps/s, "
          f"{1000 / result.rate:.2f} ms/step "
          f"({1000 * result.cpu_seconds / result.steps:.2f} ms CPU); "
          f"stored state {result.state_bytes:,} bytes")
    if profile is not None:
        print()
        print("\n".join(top_own_time(profile)))


if __name__ == "__main__":
    main()
