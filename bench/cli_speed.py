"""How long the CLI takes, as a person types it: medians of N runs of each command, wall clock.

Each command is a fresh `bevilling` process on a seeded SQLite copy in a temp dir (the copy is
restored before every run of a writing command, untimed). Without `--stack` no Prefect server is
reachable (a missing stack file, no PREFECT_API_URL): flow commands call the service directly.
With `--stack` the CLI finds the `make run` server through var/prefect-api-url and runs each flow
command as a run of its deployment; `make run` must be up.

    .venv/bin/python -m bench.cli_speed [-n 10] [--stack]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "data" / "aarhus-budget-2026-2029.yaml"
BEVILLING = str(Path(sys.executable).parent / "bevilling")
COMMANDS: list[tuple[str, list[str], bool]] = [  # label, arguments, writes to the database
    ("--help", ["--help"], False),
    ("grants list", ["grants", "list"], False),
    ("requests show DOMEN-DRIFT", ["requests", "show", "DOMEN-DRIFT"], False),
    ("requests submit DOMEN-DRIFT", ["requests", "submit", "DOMEN-DRIFT"], True),
    ("deadlines --as-of 2025-10-01", ["deadlines", "--as-of", "2025-10-01"], True),
]


def run(args: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one CLI process; it must succeed."""
    started = time.perf_counter()
    done = subprocess.run([BEVILLING, *args], env=env, capture_output=True, text=True,
                          check=False, cwd=ROOT)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"bevilling {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return elapsed


def main() -> None:
    """Print a table of medians (and min/max) per command."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=10, help="runs per command (default 10)")
    parser.add_argument("--stack", action="store_true",
                        help="use the running `make run` stack (var/prefect-api-url)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bevilling-cli-speed-") as temp:
        work = Path(temp)
        template, database = work / "template.db", work / "bevilling.db"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("BEVILLING_", "PREFECT_"))}
        env |= {"BEVILLING_DATABASE_URL": f"sqlite:///{database}",
                "BEVILLING_TOKEN_SECRET_FILE": str(work / "token-secret"),
                "BEVILLING_SMTP_PORT": "9",  # nothing is delivered: the outbox only fills
                "HOME": str(work / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        if not options.stack:
            env["BEVILLING_LOCAL_STACK_FILE"] = str(work / "no-stack")
        run(["init"], env)
        run(["load", str(SEED)], env)
        shutil.copyfile(database, template)
        print(f"bevilling CLI, wall seconds over {options.n} runs "
              f"({'with the make run stack' if options.stack else 'no Prefect server'})")
        print("| command | median | min | max |\n|---|---|---|---|")
        for label, args, writes in COMMANDS:
            times = []
            for _ in range(options.n):
                if writes:
                    shutil.copyfile(template, database)
                    for suffix in ("-wal", "-shm"):
                        Path(f"{database}{suffix}").unlink(missing_ok=True)
                times.append(run(args, env))
            print(f"| `bevilling {label}` | {statistics.median(times):.2f} | "
                  f"{min(times):.2f} | {max(times):.2f} |", flush=True)
        leftover = work / "home" / ".prefect"
        print(f"~/.prefect left behind: {'yes' if leftover.exists() else 'no'}")


if __name__ == "__main__":
    main()
