"""Seconds from `make run` (after the install step) until the first reminder is in var/mail/.

Clones the committed tree into a temp dir, runs `make venv` there (the install, not timed),
then times `make run` until var/mail/new holds a message, and stops it with SIGINT.
Ports are taken from free loopback ports so a running `make run` does not interfere.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tool(name: str) -> str:
    """Absolute path of a command on PATH."""
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} is not installed")
    return found


def free_port() -> int:
    """An unused loopback TCP port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    """Clone, install, time `make run`, print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--keep", action="store_true", help="Keep the temp clone.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bevilling-clone-"))
    clone = work / "bevilling"
    subprocess.run([tool("git"), "clone", "--quiet", str(ROOT), str(clone)], check=True)
    started = time.monotonic()
    subprocess.run([tool("make"), "venv"], cwd=clone, check=True, stdout=subprocess.DEVNULL)
    install = time.monotonic() - started
    env = {**os.environ, "BEVILLING_UI_PORT": str(free_port()),
           "BEVILLING_SMTP_PORT": str(free_port())}
    for name in ("PREFECT_API_URL", "PREFECT_HOME", "BEVILLING_DATABASE_URL"):
        env.pop(name, None)
    log = (work / "make-run.log").open("wb")
    started = time.monotonic()
    run = subprocess.Popen([tool("make"), "run"], cwd=clone, env=env, stdout=log,
                           stderr=subprocess.STDOUT, start_new_session=True)
    mail_dir = clone / "var" / "mail" / "new"
    first_mail = None
    try:
        while time.monotonic() - started < args.timeout:
            if mail_dir.exists() and any(mail_dir.iterdir()):
                first_mail = time.monotonic() - started
                break
            if run.poll() is not None:
                break
            time.sleep(0.2)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGINT)
            try:
                run.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait(timeout=10)
        log.close()
    print("| step | seconds |\n|---|---|")
    print(f"| install (`make venv` in a fresh clone) | {install:.0f} |")
    shown = f"{first_mail:.1f}" if first_mail is not None else f"none within {args.timeout:.0f}"
    print(f"| `make run` → first reminder in var/mail/new | {shown} |")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"clone kept in {clone}", file=sys.stderr)
    if first_mail is None or first_mail >= 60:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
