"""`bevilling inbound serve` in a process of its own, its memory, and hostile SMTP clients.

Used by the receiver memory test and `bench.hostile_receiver`. The attacks speak SMTP over plain
sockets: they must go on sending where a polite client would stop.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.support.smtp_server import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVE = ("import typer; from cli.inbound_cli import inbound_app; app = typer.Typer(); "
         "app.add_typer(inbound_app, name='inbound'); app()")


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def rss_mb(pid: int) -> float:
    """The process's resident set now (VmRSS), in MB."""
    return _status_kb(pid, "VmRSS") / 1024


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set so far (VmHWM), in MB."""
    return _status_kb(pid, "VmHWM") / 1024


@contextlib.contextmanager
def serving(env: dict[str, str], *, log: Path, tree: Path = ROOT,
            ) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`inbound serve` on a free loopback port with `env` (database, secret); stopped after.

    `tree`: the source tree the server runs from (another commit's, for a before/after).
    """
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE, "inbound", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--timeout", "30"],
            cwd=tree, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"inbound serve exited: {log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as probe:
                    probe.recv(512)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield process, port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _command(sock: socket.socket, line: bytes) -> bytes:
    sock.sendall(line + b"\r\n")
    return _reply(sock)


def _reply(sock: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
        lines = data.split(b"\r\n")
        if len(lines) > 1 and len(lines[-2]) >= 4 and lines[-2][3:4] == b" ":
            return data


def _open(port: int, rcpt: str) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    _reply(sock)
    _command(sock, b"EHLO attacker.example.org")
    _command(sock, b"MAIL FROM:<attacker@x.example.org>")
    return sock, _command(sock, f"RCPT TO:<{rcpt}>".encode())


def long_line(port: int, rcpt: str, *, megabytes: int) -> str:
    """DATA with `megabytes` MB and no line break; the server's answer (or how it hung up)."""
    sock, answer = _open(port, rcpt)
    with sock:
        if not answer.startswith(b"250"):
            return f"RCPT {answer.decode(errors='replace').strip()}"
        if not _command(sock, b"DATA").startswith(b"354"):
            return "DATA refused"
        chunk = b"x" * 65536
        sent = 0
        try:
            while sent < megabytes * 1024 * 1024:
                sock.sendall(chunk)
                sent += len(chunk)
            sock.sendall(b"\r\n.\r\n")
            reply = _reply(sock).decode(errors="replace").strip()
        except OSError as exc:
            return f"closed after {sent // (1024 * 1024)} MB ({type(exc).__name__})"
        return reply or f"closed after {sent // (1024 * 1024)} MB"


def many_parts_message(parts: int, *, to: str) -> bytes:
    """A multipart/mixed message with `parts` small text parts (36 bytes each)."""
    boundary = b"b"
    body = b"".join(b"--" + boundary + b"\r\n\r\n" + b"x" * 25 + b"\r\n" for _ in range(parts))
    head = (f"From: karen.holm@kommune.example.org\r\nTo: {to}\r\nSubject: SV: x\r\n"
            f"Message-ID: <parts-{parts}-{time.time_ns()}@x.example.org>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\nGODKEND\r\n").encode()
    return head + body + b"--" + boundary + b"--\r\n"


def send_raw(port: int, rcpt: str, raw: bytes) -> str:
    """One message over DATA (dot-stuffed); the server's final answer."""
    sock, answer = _open(port, rcpt)
    with sock:
        if not answer.startswith(b"250"):
            return f"RCPT {answer.decode(errors='replace').strip()}"
        _command(sock, b"DATA")
        stuffed = b"\r\n".join((b"." + line if line.startswith(b".") else line)
                               for line in raw.split(b"\r\n"))
        sock.sendall(stuffed + b"\r\n.\r\n")
        return _reply(sock).decode(errors="replace").strip()


def in_parallel(count: int, attack: Callable[[], str]) -> list[str]:
    """Run `attack` on `count` threads at once; their answers."""
    answers: list[str] = [""] * count

    def run(index: int) -> None:
        answers[index] = attack()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers
