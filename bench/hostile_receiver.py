"""The receiver's memory and time under hostile SMTP: long lines and many MIME parts.

`inbound serve` runs in its own process on a SQLite file with STS-2027 submitted (Karen's token
live). Each attack gets a fresh server process; the table gives its resident set before the attack
and its peak (VmHWM) after, and what the attacker was answered:

- long line: 3 connections at once, each DATA of N MB without a line break (default 50);
- many parts: one message of 200,000 tiny MIME parts to Karen's live token.

    python -m bench.hostile_receiver [--megabytes 50] [--parts 200000] [--before TREE]
    python -m bench.hostile_receiver --flood SECONDS

`--flood`: 4 connections send hostile mail for SECONDS (never-issued tokens, "yes, but" replies
and borrowed From to the live token, forged bounces, long lines, round robin); after a second, a
genuine GODKEND from Karen; prints hostile messages refused or quarantined per second and the
genuine reply's time to its 250 (the decision is committed before the 250).

`--before TREE` runs the same attacks, in the same run, against a server started from another
source tree (e.g. `git archive <commit> | tar -x -C TREE`), on the same database.
"""

import argparse
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from db.engine import close_engine, make_engine
from db.migrate import upgrade_to_head
from tests.support.approvals import (
    SECRET,
    load_seed,
    make_settings,
    outbox,
    steps_of,
    submit_request,
)
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

KAREN = "karen.holm@kommune.example.org"


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


def _reply(reply_to: str, text: str, *, sender: str, n: int) -> bytes:
    return (f"From: {sender}\r\nTo: {reply_to}\r\nSubject: SV: x\r\n"
            f"Message-ID: <flood-{n}-{time.time_ns()}@x.example.org>\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n").encode()


def flood(env: dict[str, str], reply_to: str, *, seconds: float, workdir: Path) -> None:
    """Hostile mail from 4 connections, one genuine reply in the middle; print the figures."""
    kinds = ["unknown token", "yes, but", "borrowed From", "long line"]
    counts = dict.fromkeys(kinds, 0)
    lock = threading.Lock()
    stop = float("inf")
    domain = reply_to.rsplit("@", 1)[1]

    def attacker(index: int) -> None:
        n = 0
        while time.monotonic() < stop:
            kind = kinds[(index + n) % len(kinds)]
            n += 1
            if kind == "unknown token":
                answer = send_raw(port, f"approvals+{'a' * 26}@{domain}",
                                  _reply(reply_to, "GODKEND", sender=KAREN, n=n))
                refused = answer.startswith("RCPT 550")
            elif kind == "yes, but":
                answer = send_raw(port, reply_to, _reply(reply_to, "GODKEND, men ikke endnu",
                                                         sender=KAREN, n=index * 10**6 + n))
                refused = answer.startswith("250")  # accepted, quarantined as ambiguous
            elif kind == "borrowed From":
                answer = send_raw(port, reply_to, _reply(
                    reply_to, "GODKEND", sender=f'"{KAREN}" <forger@x.example.org>',
                    n=index * 10**6 + n))
                refused = answer.startswith("250")  # accepted, quarantined (no From)
            else:
                answer = long_line(port, reply_to, megabytes=1)
                refused = not answer.startswith("250")
            if refused:
                with lock:
                    counts[kind] += 1

    with serving(env, log=workdir / "serve-flood.log") as (process, port):
        threads = [threading.Thread(target=attacker, args=(i,)) for i in range(4)]
        started = time.monotonic()
        stop = started + seconds
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        sent = time.monotonic()
        genuine = send_raw(port, reply_to, _reply(reply_to, "GODKEND\r\nMvh Karen",
                                                  sender=KAREN, n=-1))
        latency = time.monotonic() - sent
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        peak = peak_rss_mb(process.pid)
    engine = make_engine(env["BEVILLING_DATABASE_URL"])
    decided = steps_of(engine, "STS-2027")[0].state
    close_engine(engine)
    total = sum(counts.values())
    print(f"| hostile mail refused or quarantined | {total / elapsed:.0f}/s over {elapsed:.1f} s "
          f"({', '.join(f'{k} {v}' for k, v in counts.items())}) |")
    print(f"| genuine GODKEND during the flood | {genuine[:40]} after {latency:.3f} s; "
          f"Karen's step {decided} |")
    print(f"| serving process peak RSS | {peak:.0f} MB |")


def main(argv: list[str] | None = None) -> None:
    """Run both attacks and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--parts", type=int, default=200_000)
    parser.add_argument("--before", type=Path, default=None)
    parser.add_argument("--flood", type=float, default=None, metavar="SECONDS")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bevilling-bench-hostile-"))
    env, reply_to = prepare(workdir)
    if args.flood:
        flood(env, reply_to, seconds=args.flood, workdir=workdir)
        return
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
