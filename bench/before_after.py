"""This tree against an earlier one, side by side in one run: the figures issue #8 asks for.

Each round runs, in both trees (order alternating per round, so drift in the machine's load hits
both), `python -m bench.decisions` (decisions/s and replies/s on SQLite, and on PostgreSQL with
`--postgres`) and, in this tree, `python -m bench.spiff_chain` (SpiffWorkflow's steps/s on the
same three-step chain) — so "× Spiff" compares rates measured minutes apart, not a day apart.
`--latency` adds `python -m bench.reply_latency` (100 replies/s for 20 s) once per tree. It also
counts the production lines of each tree (the application's packages, without tests, bench and
migration scripts). Medians over the rounds are printed as one markdown table.

The earlier tree is a `git worktree` (made here from `--before-ref`, and removed at the end, or
given as `--before PATH`); it runs on this tree's virtualenv, its own code first on the path.

    python -m bench.before_after --before-ref 57029d7 [-n 300] [--rounds 3] [--postgres URL]
"""

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
PACKAGES = ("domain", "models", "config", "db", "mail", "loading", "workflow", "flows", "cli",
            "web", "receiver", "migrations")
_ROW = re.compile(r"^\|\s*(SQLite[^|]*|PostgreSQL)\s*\|(.*)\|\s*$")
_SPIFF = re.compile(r"([\d,]+) steps/s")
_P99 = re.compile(r"^\|\s*reply due → next approver's mail in the sink\s*\|\s*\d+\s*\|"
                  r"\s*[\d.]+\s*\|\s*([\d.]+)\s*\|", re.M)


@dataclass
class Figures:
    """Every measurement of one tree, round by round."""

    decisions: dict[str, list[float]] = field(default_factory=dict)
    replies: dict[str, list[float]] = field(default_factory=dict)
    p99: float | None = None


def production_lines(tree: Path) -> int:
    """Lines of the application's own Python (not tests, bench or migration scripts)."""
    total = 0
    for package in PACKAGES:
        for path in (tree / package).rglob("*.py"):
            if "versions" not in path.parts:
                total += len(path.read_text(encoding="utf-8").splitlines())
    return total


def run_module(tree: Path, module: str, *args: str, timeout: float = 1800,
               missed_target_ok: bool = False) -> str:
    """`python -m module args` with `tree` first on the path; its stdout (raises on failure).

    `missed_target_ok`: exit 1 (a script saying its target was missed) still returns the output.
    """
    done = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=tree, capture_output=True, text=True,
        timeout=timeout, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin",
                              "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}, check=False)
    if done.returncode != 0 and not (missed_target_ok and done.returncode == 1):
        tail = done.stdout[-2000:] + done.stderr[-2000:]
        raise RuntimeError(f"{module} in {tree} failed:\n{tail}")
    return done.stdout


def decision_rates(output: str) -> dict[str, tuple[float, float]]:
    """backend → (decisions/s, replies/s) from bench.decisions' table (old or new columns)."""
    header = next(line for line in output.splitlines() if line.startswith("| backend"))
    names = [cell.strip() for cell in header.strip("|").split("|")]
    decisions_at = next(i for i, n in enumerate(names) if n.startswith("decisions/s (`apply"))
    replies_at = next(i for i, n in enumerate(names) if n.startswith("replies/s"))
    rates = {}
    for line in output.splitlines():
        match = _ROW.match(line)
        if match:
            cells = [match.group(1).strip(), *(c.strip() for c in match.group(2).split("|"))]
            backend = "SQLite" if cells[0].startswith("SQLite") else "PostgreSQL"
            rates[backend] = (float(cells[decisions_at].replace(",", "")),
                              float(cells[replies_at].replace(",", "")))
    return rates


def measure_round(tree: Path, figures: Figures, *, n: int, postgres: str | None) -> None:
    """One bench.decisions run in `tree`, added to its figures."""
    args = ["-n", str(n)] + (["--postgres", postgres] if postgres else [])
    for backend, (decisions, replies) in decision_rates(
            run_module(tree, "bench.decisions", *args)).items():
        figures.decisions.setdefault(backend, []).append(decisions)
        figures.replies.setdefault(backend, []).append(replies)


def spiff_rate(n: int) -> float:
    """SpiffWorkflow's steps/s on the three-step chain (needs the bench extra)."""
    match = _SPIFF.search(run_module(HERE, "bench.spiff_chain", "-n", str(n)))
    if match is None:
        raise RuntimeError("bench.spiff_chain printed no rate")
    return float(match.group(1).replace(",", ""))


def latency_p99(tree: Path) -> float:
    """p99 seconds from a reply at `inbound serve` to the next mail in the sink, 100/s for 20 s."""
    match = _P99.search(run_module(tree, "bench.reply_latency", missed_target_ok=True))
    if match is None:
        raise RuntimeError(f"bench.reply_latency in {tree} printed no p99")
    return float(match.group(1))


def table(before: Figures, after: Figures, spiff: list[float], lines: tuple[int, int]) -> str:
    """The markdown table of medians, before and after."""
    def med(values: list[float]) -> str:
        return f"{statistics.median(values):,.0f}" if values else "–"

    spiff_median = statistics.median(spiff)
    rows = [("lines of production code", f"{lines[0]:,}", f"{lines[1]:,}")]
    for backend in after.decisions:
        rows.append((f"decisions/s, {backend}", med(before.decisions.get(backend, [])),
                     med(after.decisions[backend])))
        rows.append((f"replies ingested/s, {backend}", med(before.replies.get(backend, [])),
                     med(after.replies[backend])))
    sqlite_before = statistics.median(before.decisions["SQLite"])
    sqlite_after = statistics.median(after.decisions["SQLite"])
    rows.append((f"decisions ÷ SpiffWorkflow {spiff_median:,.0f} steps/s (SQLite)",
                 f"{sqlite_before / spiff_median:.2f}×", f"{sqlite_after / spiff_median:.2f}×"))
    if before.p99 is not None and after.p99 is not None:
        rows.append(("reply → next mail delivered, p99 s at 100/s",
                     f"{before.p99:.3f}", f"{after.p99:.3f}"))
    out = ["| what | before | after |", "|---|---|---|"]
    out += [f"| {what} | {old} | {new} |" for what, old, new in rows]
    return "\n".join(out)


def main() -> None:
    """Parse arguments, run the rounds, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--before", type=Path, help="a checkout of the earlier code")
    source.add_argument("--before-ref", help="a git revision to check out as the earlier code")
    parser.add_argument("-n", type=int, default=300, help="requests per run (3 decisions each)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per tree")
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server to measure too")
    parser.add_argument("--latency", action="store_true", help="add bench.reply_latency")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-before-") as tmp:
        before_tree = args.before
        if before_tree is None:
            before_tree = Path(tmp) / "before"
            subprocess.run(["git", "-C", str(HERE), "worktree", "add", "--detach",  # noqa: S607
                            str(before_tree), args.before_ref], check=True, capture_output=True)
        try:
            before, after, spiff = Figures(), Figures(), []
            for round_no in range(args.rounds):
                order = [(before_tree, before), (HERE, after)]
                for tree, figures in order if round_no % 2 == 0 else reversed(order):
                    measure_round(tree, figures, n=args.n, postgres=args.postgres)
                spiff.append(spiff_rate(args.n))
                print(f"round {round_no + 1}: before {before.decisions['SQLite'][-1]:,.0f}, "
                      f"after {after.decisions['SQLite'][-1]:,.0f} decisions/s; "
                      f"spiff {spiff[-1]:,.0f} steps/s", flush=True)
            if args.latency:
                before.p99, after.p99 = latency_p99(before_tree), latency_p99(HERE)
            lines = (production_lines(before_tree), production_lines(HERE))
        finally:
            if args.before is None:
                subprocess.run(["git", "-C", str(HERE), "worktree", "remove", "--force",  # noqa: S607
                                str(before_tree)], check=False, capture_output=True)
    print(f"\n{args.n} requests × 3 stages per run, {args.rounds} rounds, medians\n")
    print(table(before, after, spiff, lines))


if __name__ == "__main__":
    main()
