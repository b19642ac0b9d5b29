"""`make run`: the whole stack on one machine — SQLite, Prefect server + UI, SMTP sink, serving.

Ctrl-C stops every process this started.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from config.settings import PROJECT_ROOT
from migrations.database import ensure_postgres_database

VAR = PROJECT_ROOT / "var"
SEED = PROJECT_ROOT / "data" / "aarhus-budget-2026-2029.yaml"
UI_PORT = int(os.environ.get("BEVILLING_UI_PORT", "4200"))
SMTP_PORT = int(os.environ.get("BEVILLING_SMTP_PORT", "8025"))
API_URL = f"http://127.0.0.1:{UI_PORT}/api"
PREFECT_DB = os.environ.get("PREFECT_DB", "sqlite")
PREFECT_PG_URL = os.environ.get(
    "PREFECT_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/bevilling_prefect")
BIN = Path(sys.executable).parent


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


def main() -> None:
    """Start everything, trigger one deadline check and delivery, then wait for Ctrl-C."""
    started = time.monotonic()
    VAR.mkdir(exist_ok=True)

    def on_terminate(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_terminate)
    env = {**os.environ, "PREFECT_HOME": str(VAR / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_API_URL": API_URL,
           "BEVILLING_SMTP_HOST": "127.0.0.1", "BEVILLING_SMTP_PORT": str(SMTP_PORT),
           "BEVILLING_HOME": str(PROJECT_ROOT)}
    env.pop("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", None)
    if PREFECT_DB == "postgres":
        ensure_postgres_database(PREFECT_PG_URL)
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = PREFECT_PG_URL
        say(f"Prefect server database: {PREFECT_PG_URL}")
    elif PREFECT_DB != "sqlite":
        raise SystemExit(f"PREFECT_DB must be sqlite or postgres, not {PREFECT_DB!r}")
    bevilling = str(BIN / "bevilling")
    subprocess.run([bevilling, "init"], check=True, env=env)
    subprocess.run([bevilling, "load", str(SEED)], check=True, env=env)

    children: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], log: str) -> subprocess.Popen[bytes]:
        handle = (VAR / log).open("ab")
        child = subprocess.Popen(args, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                 cwd=PROJECT_ROOT, start_new_session=True)
        children.append(child)
        return child

    def stop_all(*_: object) -> None:
        for child in reversed(children):
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
        say("stopped everything")

    try:
        say(f"starting Prefect server on 127.0.0.1:{UI_PORT} (log: var/prefect-server.log)")
        server = start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                        "--port", str(UI_PORT)], "prefect-server.log")
        sink = start([sys.executable, "-m", "mail.sink", "--maildir", str(VAR / "mail"),
                      "--port", str(SMTP_PORT)], "smtp-sink.log")
        wait_for_http(f"{API_URL}/health", timeout=120, process=server)
        if sink.poll() is not None:
            raise RuntimeError(
                f"SMTP sink failed to start, see var/smtp-sink.log (port {SMTP_PORT})")
        say("serving every deployment of prefect.yaml (log: var/serve.log)")
        serve = start([sys.executable, "-m", "flows.serve"], "serve.log")
        time.sleep(3)
        if serve.poll() is not None:
            raise RuntimeError("flows.serve exited, see var/serve.log")
        say("running one deadline check now, then delivering")
        subprocess.run([sys.executable, "-m", "cli.trigger_first_run"], check=True, env=env,
                       cwd=PROJECT_ROOT, timeout=300)
        mail_dir = VAR / "mail" / "new"
        count = len(list(mail_dir.iterdir())) if mail_dir.exists() else 0
        say(f"ready after {time.monotonic() - started:.0f} s")
        print(f"""
  Prefect UI      http://127.0.0.1:{UI_PORT}  (deployments, schedules, runs, artifacts)
  Mail (Maildir)  {mail_dir}  ({count} messages so far)
  Database        {VAR / 'bevilling.db'}
  Logs            var/prefect-server.log, var/serve.log, var/smtp-sink.log
  Try             .venv/bin/bevilling reminders list

  Ctrl-C stops everything.
""", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(1)
        say("a process stopped unexpectedly; see the logs in var/")
    except KeyboardInterrupt:
        pass
    finally:
        stop_all()


if __name__ == "__main__":
    main()
