"""Our decisions/s against SpiffWorkflow's steps/s on the same three-step chain, one process.

Each round runs both, on fresh SQLite files in one temp dir, with the same N:

- **ours**: `bench.decisions`' SQLite decisions phase (`measure_phase` with `run_decisions`):
  N copies of DOMEN-DRIFT submitted (untimed), then 3N `apply_decision` calls, one committed
  SQLModel session and transaction each, and all N requests checked approved;
- **spiff**: `bench.spiff_chain.run`: N instances of `bench/approval_chain.bpmn` saved (untimed),
  then 3N steps of load → deserialize → complete the user task → engine steps → serialize →
  UPDATE → COMMIT, and all N instances checked completed.

Rounds alternate which one goes first, so drift in the machine's load hits both. Prints one row
per round — wall-clock rates, and the same steps per second of this process's CPU time, which
other load on a shared machine disturbs much less — and the median ratios ours/spiff. The floor
is ≥ 1.2× (wall clock).

    python -m bench.versus_spiff [-n 500] [--rounds 3]

Needs the `bench` extra (SpiffWorkflow): `pip install -e '.[bench]'`.
"""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sqlalchemy import Engine

from bench import spiff_chain
from bench.decisions import Timing, measure_phase, register_file, run_decisions, sqlite_database
from config.settings import Settings

FLOOR = 1.2


@dataclass(frozen=True)
class Rates:
    """Steps per wall-clock second and per CPU second of this process (all its threads)."""

    wall: float
    cpu: float


def ours(directory: Path, register: Path, n: int, label: str) -> Rates:
    """`apply_decision` through the three stages on a fresh SQLite file."""
    cpu: list[float] = []

    def timed(engine: Engine, settings: Settings) -> Timing:
        started = time.process_time()
        timing = run_decisions(engine, settings)
        cpu.append(time.process_time() - started)
        return timing

    timing = measure_phase(lambda phase: sqlite_database(directory, phase), f"ours-{label}",
                           timed, register, n)
    if timing.count != 3 * n:
        raise RuntimeError(f"expected {3 * n} decisions, got {timing.count}")
    return Rates(wall=timing.rate, cpu=timing.count / cpu[0])


def spiff(directory: Path, n: int, label: str) -> Rates:
    """SpiffWorkflow through the three user tasks on a fresh SQLite file."""
    result = spiff_chain.run(directory / f"spiff-{label}.db", n)
    if result.steps != 3 * n:
        raise RuntimeError(f"expected {3 * n} steps, got {result.steps}")
    return Rates(wall=result.rate, cpu=result.steps / result.cpu_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-n", type=int, default=500, help="requests / instances (3 steps each)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of ours + spiff")
    args = parser.parse_args()
    if args.n < 1 or args.rounds < 1:
        parser.error("-n and --rounds must be at least 1")
    rows: list[tuple[int, Rates, Rates]] = []
    with tempfile.TemporaryDirectory(prefix="bench-versus-spiff-") as tmp:
        directory = Path(tmp)
        register = register_file(directory, args.n)
        for round_no in range(1, args.rounds + 1):
            label = str(round_no)
            rates: dict[str, Rates] = {}
            runs: list[tuple[str, Callable[[], Rates]]] = [
                ("ours", partial(ours, directory, register, args.n, label)),
                ("spiff", partial(spiff, directory, args.n, label)),
            ]
            if round_no % 2 == 0:
                runs.reverse()
            for name, runner in runs:
                rates[name] = runner()
                print(f"round {round_no}: {name} {rates[name].wall:,.0f}/s "
                      f"({rates[name].cpu:,.0f} per CPU s)", flush=True)
            rows.append((round_no, rates["ours"], rates["spiff"]))
            for stale in directory.glob(f"*-{label}.db*"):
                stale.unlink()
    print(f"\n{args.n} requests × 3 stages = {3 * args.n} decisions / steps per run, SQLite "
          "(file, WAL, synchronous=NORMAL), a commit per step\n")
    print("| round | ours decisions/s | spiff steps/s | ratio ours/spiff | ours per CPU s | "
          "spiff per CPU s | CPU ratio |")
    print("|---|---|---|---|---|---|---|")
    for round_no, our, their in rows:
        print(f"| {round_no} | {our.wall:,.0f} | {their.wall:,.0f} | {our.wall / their.wall:.2f}× "
              f"| {our.cpu:,.0f} | {their.cpu:,.0f} | {our.cpu / their.cpu:.2f}× |")
    median = statistics.median(our.wall / their.wall for _, our, their in rows)
    median_cpu = statistics.median(our.cpu / their.cpu for _, our, their in rows)
    verdict = "met" if median >= FLOOR else "NOT met"
    print(f"\nmedian ratio {median:.2f}× (floor ≥ {FLOOR}×: {verdict}); "
          f"median CPU ratio {median_cpu:.2f}×")


if __name__ == "__main__":
    main()
