"""The receiver's memory and time under hostile SMTP: long lines and many MIME parts.

`inbound serve` runs in its own process on a SQLite file with STS-2027 submitted (Karen's token
live). Each attack gets a fresh server process; the table gives its resident set before the attack
and its peak (VmHWM) after, and what the attacker was answered:

- long line: 3 connections at once, each DATA of N MB without a line break (default 50);
- many parts: one message of 200,000 tiny MIME parts to Karen's live token.

    python -m bench.hostile_receiver [--megabytes 50] [--parts 200000] [--before TREE]

`--before TREE` runs the same attacks, in the same run, against a server started from another
source tree (e.g. `git archive <commit> | tar -x -C TREE`), on the same database.
"""

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from db.engine import close_engine, make_engine
from db.migrate import upgrade_to_head
from tests.support.approvals import SECRET, load_seed, make_settings, outbox, submit_request
from tests.support.receiver_process import (
    ROOT,
    in_parallel,
    long_line,
    many_parts_message,
    peak_rss_mb,
    rss_mb,
    send_raw,
    serving,
)


def prepare(workdir: Path) -> tuple[dict[str, str], str]:
    """A migrated SQLite file with STS-2027 submitted now; (env for the server, Reply-To)."""
    url = f"sqlite:///{workdir / 'bevilling.db'}"
    upgrade_to_head(url)
    engine = make_engine(url)
    load_seed(engine)
    submit_request(engine, "STS-2027", settings=make_settings(url), now=datetime.now(UTC))
    reply_to = outbox(engine, kind="approval_request")[0].headers["Reply-To"]
    close_engine(engine)
    return {"BEVILLING_DATABASE_URL": url, "BEVILLING_TOKEN_SECRET": SECRET}, reply_to


def main(argv: list[str] | None = None) -> None:
    """Run both attacks and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--parts", type=int, default=200_000)
    parser.add_argument("--before", type=Path, default=None)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bevilling-bench-hostile-"))
    env, reply_to = prepare(workdir)
    raw = many_parts_message(args.parts, to=reply_to)
    trees = ([("before", args.before)] if args.before else []) + [("this tree", ROOT)]
    rows: list[tuple[str, str, float, float, float, str]] = []
    for name, tree in trees:
        with serving(env, log=workdir / f"serve-lines-{len(rows)}.log", tree=tree) as (
                process, port):
            before = rss_mb(process.pid)
            started = time.monotonic()
            answers = in_parallel(3, lambda port=port: long_line(  # type: ignore[misc]
                port, reply_to, megabytes=args.megabytes))
            rows.append((name, f"3 × {args.megabytes} MB without a line break", before,
                         peak_rss_mb(process.pid), time.monotonic() - started, answers[0]))
        with serving(env, log=workdir / f"serve-parts-{len(rows)}.log", tree=tree) as (
                process, port):
            before = rss_mb(process.pid)
            started = time.monotonic()
            answer = send_raw(port, reply_to, raw)
            rows.append((name, f"{args.parts:,} MIME parts ({len(raw) / 1e6:.1f} MB)", before,
                         peak_rss_mb(process.pid), time.monotonic() - started, answer))
    print("| tree | attack | RSS before | peak RSS | + | seconds | answer |")
    print("|---|---|---|---|---|---|---|")
    for name, label, start, peak, seconds, said in rows:
        print(f"| {name} | {label} | {start:.0f} MB | {peak:.0f} MB | {peak - start:+.0f} MB | "
              f"{seconds:.1f} | {said[:60]} |")


if __name__ == "__main__":
    main()
