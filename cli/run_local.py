"""`make run`: the whole product on one machine — SQLite, Prefect server + UI, SMTP sink,
every deployment served, the confirm page and the SMTP receiver for replies.

Ctrl-C (or SIGTERM) stops every process this started; a second signal during the shutdown is
acknowledged and changes nothing.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from config.settings import PROJECT_ROOT, get_settings
from migrations.database import ensure_postgres_database

VAR = PROJECT_ROOT / "var"
SEED = PROJECT_ROOT / "data" / "aarhus-budget-2026-2029.yaml"
UI_PORT = int(os.environ.get("BEVILLING_UI_PORT", "4200"))
SMTP_PORT = int(os.environ.get("BEVILLING_SMTP_PORT", "8025"))
WEB_PORT = int(os.environ.get("BEVILLING_WEB_PORT", "8000"))
INBOUND_PORT = int(os.environ.get("BEVILLING_INBOUND_PORT", "2525"))
API_URL = f"http://127.0.0.1:{UI_PORT}/api"
PREFECT_DB = os.environ.get("PREFECT_DB", "sqlite")
PREFECT_PG_URL = os.environ.get(
    "PREFECT_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/bevilling_prefect")
BIN = Path(sys.executable).parent


class _Stop(Exception):  # a control-flow signal, not an error of the tree
    """The first Ctrl-C or SIGTERM: leave the main loop and shut down."""


def say(message: str) -> None:
    print(f"[bevilling] {message}", flush=True)


def wait_for_http(url: str, *, timeout: float, process: subprocess.Popen[bytes]) -> None:
    """Poll `url` until it answers 200, the process dies, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            # S310: the URL is the loopback address we built ourselves.
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def wait_for_port(port: int, *, timeout: float, process: subprocess.Popen[bytes]) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def stack_environment() -> dict[str, str]:
    """The environment every process of the stack shares."""
    env = {**os.environ, "PREFECT_HOME": str(VAR / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_API_URL": API_URL,
           # The served deployments look for triggered runs every second, not every ten.
           "PREFECT_RUNNER_POLL_FREQUENCY": "1",
           "BEVILLING_SMTP_HOST": "127.0.0.1", "BEVILLING_SMTP_PORT": str(SMTP_PORT),
           "BEVILLING_WEB_BASE_URL": f"http://127.0.0.1:{WEB_PORT}",
           "BEVILLING_HOME": str(PROJECT_ROOT)}
    env.pop("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", None)
    if PREFECT_DB == "postgres":
        ensure_postgres_database(PREFECT_PG_URL)
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = PREFECT_PG_URL
        say(f"Prefect server database: {PREFECT_PG_URL}")
    elif PREFECT_DB != "sqlite":
        raise SystemExit(f"PREFECT_DB must be sqlite or postgres, not {PREFECT_DB!r}")
    return env


class LocalStack:
    """The child processes, each in its own session (a Ctrl-C reaches only us), and their stop."""

    def __init__(self, env: dict[str, str], *, var: Path = VAR) -> None:
        self.env = env
        self.var = var
        self.children: list[subprocess.Popen[bytes]] = []
        self.stack_file = get_settings().local_stack_file

    def run(self, args: list[str], *, timeout: float = 300) -> None:
        """A short step (init, load, the first runs); a signal meanwhile stops it too."""
        with subprocess.Popen(args, env=self.env, cwd=PROJECT_ROOT,
                              start_new_session=True) as step:
            try:
                code = step.wait(timeout=timeout)
            except BaseException:
                step.kill()
                raise
        if code != 0:
            raise RuntimeError(f"{' '.join(args)} failed with exit code {code}")

    def start(self, args: list[str], log: str) -> subprocess.Popen[bytes]:
        """A long-running process with its output in var/<log>."""
        with (self.var / log).open("ab") as handle:
            child = subprocess.Popen(args, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
                                     cwd=PROJECT_ROOT, start_new_session=True)
        self.children.append(child)
        return child

    def publish(self) -> None:
        """Tell the CLI where the server is (`bevilling` reads this file, cli/stack.py)."""
        self.stack_file.write_text(json.dumps({
            "api_url": API_URL, "prefect_home": self.env["PREFECT_HOME"],
            "web_base_url": self.env["BEVILLING_WEB_BASE_URL"]}), encoding="utf-8")

    def stop(self) -> None:
        """SIGTERM to every child's group, SIGKILL after 15 s; ignores further signals."""
        def again(*_: Any) -> None:
            say("already stopping, one moment")

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, again)
        self.stack_file.unlink(missing_ok=True)
        for child in reversed(self.children):
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        say("stopped everything")


def supervise(stack: LocalStack, body: Callable[[], None]) -> bool:
    """Run `body` until it returns or the first SIGINT/SIGTERM; always stop the stack after.

    False when the stack could not start. Later signals only print that it is stopping: a
    terminal's Ctrl-C reaches the whole process group, and impatient people press it twice.
    """
    def on_signal(*_: Any) -> None:
        raise _Stop

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        body()
    except _Stop:
        say("stopping")
    except (RuntimeError, TimeoutError) as exc:
        say(f"cannot start: {exc}")
        return False
    finally:
        stack.stop()
    return True


def main() -> None:
    """Start everything, trigger one deadline check and delivery, then wait for Ctrl-C."""
    started = time.monotonic()
    VAR.mkdir(exist_ok=True)
    stack = LocalStack(stack_environment())
    bevilling = str(BIN / "bevilling")

    def body() -> None:
        stack.run([bevilling, "init"])  # also writes var/token-secret (mode 600) the first time
        stack.run([bevilling, "load", str(SEED)])
        say(f"starting Prefect server on 127.0.0.1:{UI_PORT} (log: var/prefect-server.log)")
        server = stack.start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                              "--port", str(UI_PORT)], "prefect-server.log")
        sink = stack.start([sys.executable, "-m", "mail.sink", "--maildir", str(VAR / "mail"),
                            "--port", str(SMTP_PORT)], "smtp-sink.log")
        web = stack.start([bevilling, "web", "--port", str(WEB_PORT)], "web.log")
        inbound = stack.start([bevilling, "inbound", "serve", "--port", str(INBOUND_PORT)],
                              "inbound.log")
        wait_for_http(f"{API_URL}/health", timeout=120, process=server)
        stack.publish()
        wait_for_port(SMTP_PORT, timeout=30, process=sink)
        wait_for_http(f"http://127.0.0.1:{WEB_PORT}/healthz", timeout=60, process=web)
        wait_for_port(INBOUND_PORT, timeout=60, process=inbound)
        say("serving every deployment of prefect.yaml (log: var/serve.log)")
        serve = stack.start([sys.executable, "-m", "flows.serve"], "serve.log")
        time.sleep(3)
        if serve.poll() is not None:
            raise RuntimeError("flows.serve exited, see var/serve.log")
        say("running one deadline check now, then delivering")
        stack.run([sys.executable, "-m", "cli.trigger_first_run"])
        mail_dir = VAR / "mail" / "new"
        count = len(list(mail_dir.iterdir())) if mail_dir.exists() else 0
        say(f"ready after {time.monotonic() - started:.0f} s")
        print(f"""
  Prefect UI      http://127.0.0.1:{UI_PORT}  (deployments, schedules, runs, artifacts)
  Confirm page    http://127.0.0.1:{WEB_PORT}  (the links in approval mails)
  Replies (SMTP)  127.0.0.1:{INBOUND_PORT}  (approvals+<token>@ and bounce+<id>@)
  Mail (Maildir)  {mail_dir}  ({count} messages so far; SMTP sink on 127.0.0.1:{SMTP_PORT})
  Database        {VAR / 'bevilling.db'}
  Logs            var/prefect-server.log, var/serve.log, var/web.log, var/inbound.log,
                  var/smtp-sink.log
  Try, in another terminal:
    .venv/bin/bevilling requests submit DOMEN-DRIFT
    .venv/bin/bevilling inbound answer GODKEND      (or open the link it prints)
    .venv/bin/bevilling requests show DOMEN-DRIFT

  Ctrl-C stops everything.
""", flush=True)
        while all(child.poll() is None for child in stack.children):
            time.sleep(1)
        say("a process stopped unexpectedly; see the logs in var/")

    if not supervise(stack, body):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
