"""A real IMAP server for tests: pymap's in-memory backend in a subprocess on 127.0.0.1.

pymap (pure Python) advertises IMAP4rev1, UIDPLUS, MOVE and IDLE and reports UIDVALIDITY per
mailbox; its first UID in a mailbox is 101, not 1. Test mail goes in through IMAP APPEND with the
stdlib client, so the code under test sees it exactly as it would see delivered mail.
"""

import contextlib
import imaplib
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
USERNAME = "bevilling"
PASSWORD = "test-password"
START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 5.0
START_ATTEMPTS = 3  # a free port can be taken between our probe and pymap's bind

_APPENDUID = re.compile(rb"\[APPENDUID \d+ (\d+)\]")
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_LIST_NAME = re.compile(rb'"(?:[^"]*)" "?([^"]*)"?$')
_FETCH_FLAGS = re.compile(rb"UID (\d+)|FLAGS \(([^)]*)\)")


@dataclass(frozen=True)
class ImapServer:
    """Address and login of a running test server, plus helpers that talk IMAP to it."""

    host: str
    port: int
    username: str
    password: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        """Stop the server now (to test a server that goes away); stopping twice is harmless."""
        _stop(self.process)

    @contextlib.contextmanager
    def session(self) -> Iterator[imaplib.IMAP4]:
        """A logged-in stdlib IMAP client, logged out afterwards."""
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            client.login(self.username, self.password)
            yield client
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                client.logout()

    def append(self, raw: bytes, *, mailbox: str = "INBOX") -> int:
        """APPEND one message (no flags) and return the UID the server gave it."""
        return self.append_many([raw], mailbox=mailbox)[0]

    def append_many(self, raws: list[bytes], *, mailbox: str = "INBOX") -> list[int]:
        """APPEND messages in order over one connection; return their UIDs."""
        uids: list[int] = []
        with self.session() as client:
            for raw in raws:
                status, data = client.append(mailbox, "", None, raw)
                found = _APPENDUID.search(data[0] or b"") if status == "OK" else None
                if found is None:
                    raise RuntimeError(f"APPEND to {mailbox} failed: {status} {data!r}")
                uids.append(int(found[1]))
        return uids

    def uidvalidity(self, *, mailbox: str = "INBOX") -> int:
        """UIDVALIDITY of `mailbox` as STATUS reports it to another client."""
        with self.session() as client:
            status, data = client.status(mailbox, "(UIDVALIDITY)")
        found = _UIDVALIDITY.search(data[0] or b"") if status == "OK" else None
        if found is None:
            raise RuntimeError(f"STATUS {mailbox} failed: {status} {data!r}")
        return int(found[1])

    def flags(self, *, mailbox: str = "INBOX") -> dict[int, set[str]]:
        """UID → flags of every message in `mailbox`."""
        with self.session() as client:
            client.select(mailbox, readonly=True)
            status, data = client.uid("FETCH", "1:*", "(UID FLAGS)")
        if status != "OK":
            raise RuntimeError(f"FETCH FLAGS in {mailbox} failed: {data!r}")
        result: dict[int, set[str]] = {}
        for item in data:
            if not isinstance(item, bytes):
                continue
            uid, flags = None, set()
            for match in _FETCH_FLAGS.finditer(item):
                if match[1]:
                    uid = int(match[1])
                else:
                    flags = set(match[2].decode().split())
            if uid is not None:
                result[uid] = flags
        return result

    def uids(self, *, mailbox: str = "INBOX") -> list[int]:
        """UIDs of the messages in `mailbox`, ascending."""
        return sorted(self.flags(mailbox=mailbox))

    def reset(self) -> None:
        """Empty INBOX and delete every other mailbox, so one server can serve many tests."""
        with self.session() as client:
            _, listing = client.list()
            for line in listing:
                name = _LIST_NAME.search(line) if isinstance(line, bytes) else None
                if name and name[1].upper() != b"INBOX":
                    client.delete('"' + name[1].decode() + '"')
            client.select("INBOX")
            client.uid("STORE", "1:*", "+FLAGS.SILENT", r"(\Deleted)")
            client.expunge()

    def recreate(self, mailbox: str) -> None:
        """DELETE and CREATE `mailbox`, which gives it a new UIDVALIDITY."""
        with self.session() as client:
            client.delete(mailbox)
            status, data = client.create(mailbox)
        if status != "OK":
            raise RuntimeError(f"CREATE {mailbox} failed: {data!r}")


@contextlib.contextmanager
def running_imap_server(tmp_path: Path) -> Iterator[ImapServer]:
    """Start pymap on a free loopback port, wait for its greeting, and stop it afterwards."""
    log_path = tmp_path / "pymap.log"
    for attempt in range(1, START_ATTEMPTS + 1):
        port = free_port()
        with log_path.open("ab") as log:
            process = subprocess.Popen(_command(port), stdout=log, stderr=subprocess.STDOUT)
        try:
            if _wait_for_greeting(process, port):
                yield ImapServer(HOST, port, USERNAME, PASSWORD, log_path, process)
                return
        finally:
            _stop(process)
        if attempt == START_ATTEMPTS:
            log_text = log_path.read_text(errors="replace")
            raise RuntimeError(f"pymap did not start on {HOST}; its log:\n{log_text}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _command(port: int) -> list[str]:
    # pymap has no __main__ module; call its console entry point with this interpreter.
    return [
        sys.executable,
        "-c",
        "from pymap.main import main; main()",
        *("--no-service", "admin", "--no-service", "managesieve", "--no-service", "swim"),
        *("--host", HOST, "--port", str(port)),
        *("dict", "--demo-user", USERNAME, "--demo-password", PASSWORD),
    ]


def _wait_for_greeting(process: subprocess.Popen[bytes], port: int) -> bool:
    """True once the server says "* OK"; False if the process died (e.g. port taken)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection((HOST, port), timeout=1.0) as conn:
                if conn.recv(256).startswith(b"* OK"):
                    return True
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"pymap gave no IMAP greeting on port {port} in {START_TIMEOUT_SECONDS} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
