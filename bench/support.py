"""Shared benchmark plumbing: a sink in its own process, realistic reminder content, tables."""

import email.parser
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from models.outbox import NewMail

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, timeout: float, process: subprocess.Popen[bytes]) -> None:
    """Poll until something accepts on `port`, failing early if `process` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sink exited early with code {process.returncode}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {LOOPBACK}:{port} after {timeout:.0f} s")


def stop_process(process: subprocess.Popen[bytes], *, grace: float = 10.0) -> None:
    """SIGTERM the process group we started, then SIGKILL it if it does not go."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)


@contextmanager
def running_sink(maildir: Path, *, log: Path) -> Iterator[int]:
    """`python -m mail.sink` in a separate process on a free loopback port; yields the port."""
    port = free_port()
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "mail.sink", "--maildir", str(maildir), "--host", LOOPBACK,
             "--port", str(port)],
            cwd=PROJECT_ROOT, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_port(port, timeout=30, process=process)
            yield port
        finally:
            stop_process(process)


def maildir_files(maildir: Path) -> set[str]:
    """Names of the messages in the Maildir's new/ folder."""
    new = maildir / "new"
    return set(os.listdir(new)) if new.exists() else set()


def message_ids(maildir: Path, names: Sequence[str] | set[str]) -> Counter[str]:
    """How often each Message-ID occurs among the given Maildir files."""
    parser = email.parser.BytesHeaderParser()
    counts: Counter[str] = Counter()
    for name in names:
        with (maildir / "new" / name).open("rb") as handle:
            counts[str(parser.parse(handle).get("Message-ID", "")).strip()] += 1
    return counts


def sample_reminder_mails(*, now: datetime) -> list["NewMail"]:
    """Real reminder mails (Danish and English, with the ICS attachment), rendered once."""
    from config.closed_days import working_calendar
    from config.settings import Settings
    from domain.reminders import DueReminder, PlanKind, SendDecision
    from mail.formatting import MoneyLine
    from mail.reminder_mail import GrantFacts, Recipient, reminder_mails

    settings = Settings()
    as_of = date(2026, 12, 1)
    end = as_of + timedelta(days=90)
    grant = GrantFacts(
        id=1, key="BA-2026-017", title="Ungeindsats i Gellerup og Toveshøj",
        end_date=end, funding_source="Byrådets budgetforlig 2026–2029",
        notes="Forlængelse drøftes i budgetforhandlingerne.",
        lines=(MoneyLine("Drift", "appropriated", "yearly", Decimal("1300000"), Decimal("2000000"),
                         2026, 2029),
               MoneyLine("Behov efter udløb", "need", "yearly", Decimal("1500000"), None, 2030,
                         None)),
        recipients=(Recipient("Mette Sørensen", "mette.sorensen@aarhus.example", "da"),
                    Recipient("John Smith", "john.smith@aarhus.example", "en")))
    reminder = DueReminder(1, 1, PlanKind.REMINDER, 90, end, as_of)
    return reminder_mails(SendDecision(reminder, late=False), grant, as_of=as_of,
                          calendar=working_calendar(settings, around=as_of),
                          templates_dir=settings.templates_dir, domain=settings.mail_domain,
                          now=now)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
