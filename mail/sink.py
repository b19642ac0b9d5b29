"""A local SMTP sink for `make run` and benchmarks: every message lands in a Maildir."""

import argparse
import mailbox
import signal
import threading
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP, Envelope, Session


class MaildirHandler(Mailbox):
    """aiosmtpd's Mailbox handler, counting what it stored."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Maildir only creates cur/new/tmp when it creates the folder itself.
        for sub in ("cur", "new", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        super().__init__(path)
        self.stored = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        result = await super().handle_DATA(server, session, envelope)
        self.stored += 1
        return result


def start_sink(path: Path, *, host: str = "127.0.0.1", port: int = 8025) -> Controller:
    """Start a sink thread; the caller stops it with `.stop()`."""
    controller = Controller(MaildirHandler(path), hostname=host, port=port,
                            data_size_limit=25 * 1024 * 1024)
    controller.start()
    return controller


def count_messages(path: Path) -> int:
    """Messages stored in the Maildir at `path`."""
    return len(mailbox.Maildir(str(path), create=False)) if path.exists() else 0


def main() -> None:
    """`python -m mail.sink --maildir var/mail --port 8025`: run until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(description="Local SMTP sink that writes a Maildir.")
    parser.add_argument("--maildir", type=Path, default=Path("var/mail"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args()
    controller = start_sink(args.maildir, host=args.host, port=args.port)
    print(f"SMTP sink on {args.host}:{args.port} → {args.maildir}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
