"""The anti-pattern, for contrast: one Prefect task run per e-mail, each opening its own connection.

Run by `bench.delivery` in a child process (so the ephemeral Prefect server it starts dies with
it); prints one JSON line with its timings. PREFECT_HOME must already point at a temp dir.
"""

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from bench.support import LOOPBACK, sample_reminder_mails


def build_messages(count: int) -> list[EmailMessage]:
    """`count` reminder-shaped messages with Message-IDs `<task-N@bench.invalid>`."""
    from mail.mime import build_message
    from models.outbox import ClaimedMail

    now = datetime.now(UTC)
    samples = sample_reminder_mails(now=now)
    messages = []
    for index in range(count):
        mail = samples[index % len(samples)]
        claimed = ClaimedMail(index, f"task:{index}", mail.kind, mail.subject_ref,
                              [mail.recipient], mail.subject, mail.body_text, mail.body_html,
                              mail.attachments, {}, f"<task-{index}@bench.invalid>", 1)
        messages.append(build_message(claimed, sender="bevilling@bevilling.example.org",
                                      sender_name="Bevilling", now=now))
    return messages


def run(*, port: int, count: int, concurrency: int) -> dict[str, float | int]:
    """Start the ephemeral server with a trivial flow, then time the one-task-per-mail flow."""
    import aiosmtplib
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.futures import wait
    from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

    messages = build_messages(count)

    # Kind to the anti-pattern: no cache-key hashing, no result persistence.
    @task(name="send-one-mail", cache_policy=NO_CACHE, persist_result=False)
    async def send_one_mail(index: int) -> int:
        client = aiosmtplib.SMTP(hostname=LOOPBACK, port=port, timeout=30)
        await client.connect()
        try:
            refused, _ = await client.send_message(messages[index])
        finally:
            await client.quit()
        if refused:
            raise RuntimeError(f"refused: {refused}")
        return index

    @flow(name="bench-warm-up", persist_result=False)
    async def warm_up() -> int:
        return 0

    runner: TaskRunner[Any] = ThreadPoolTaskRunner(max_workers=concurrency)

    @flow(name="bench-one-task-per-mail", persist_result=False, task_runner=runner)
    async def one_task_per_mail(total: int) -> int:
        futures = [send_one_mail.submit(index) for index in range(total)]
        wait(futures)
        return sum(1 for future in futures if future.state.is_completed())

    started = time.perf_counter()
    asyncio.run(warm_up())
    warmed = time.perf_counter()
    sent = asyncio.run(one_task_per_mail(count))
    finished = time.perf_counter()
    return {"messages": count, "sent": sent, "startup_seconds": warmed - started,
            "seconds": finished - warmed}


def main() -> None:
    """Parse arguments, run, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    result = run(port=args.port, count=args.messages, concurrency=args.concurrency)
    sys.stdout.write("BENCH-RESULT " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
