"""A real aiosmtpd server on 127.0.0.1 that records what it receives and can be told to fail."""

import email
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    """An unused TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Received:
    """One accepted message: envelope and parsed content."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class RecordingHandler:
    """Stores accepted messages; `rcpt_faults`/`data_faults` are replies to give instead of 250."""

    received: list[Received] = field(default_factory=list)
    rcpt_faults: list[str] = field(default_factory=list)
    data_faults: list[str] = field(default_factory=list)
    refuse_addresses: dict[str, str] = field(default_factory=dict)
    # Every DATA attempt's bytes, refused ones included (retries must send the same bytes).
    attempts: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        with self.lock:
            if address in self.refuse_addresses:
                return self.refuse_addresses[address]
            if self.rcpt_faults:
                return self.rcpt_faults.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.attempts.append(bytes(envelope.original_content or envelope.content))
            if self.data_faults:
                return self.data_faults.pop(0)
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          bytes(envelope.original_content or envelope.content)))
        return "250 Message accepted for delivery"

    def message_ids(self) -> list[str]:
        """Message-IDs of everything received, in order."""
        return [str(r.message["Message-ID"]).strip() for r in self.received]


@dataclass
class SmtpServer:
    """A running recording server."""

    host: str
    port: int
    handler: RecordingHandler


@contextmanager
def running_smtp_server() -> Iterator[SmtpServer]:
    """Start a recording aiosmtpd Controller on a free loopback port; always stopped after."""
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        controller.stop()
