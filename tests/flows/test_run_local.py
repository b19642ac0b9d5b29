"""`make run`'s shutdown: Ctrl-C, then another during the shutdown: every child ends cleanly."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.factories import ROOT

# A child that takes 3 s to honour SIGTERM, so the second signal arrives during the shutdown.
SLOW_CHILD = ("import signal, sys, time\n"
              "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(3), sys.exit(0)))\n"
              "print('ready', flush=True)\n"
              "time.sleep(120)\n")
SUPERVISOR = f"""
import sys, time
from pathlib import Path
from cli.run_local import LocalStack, supervise

stack = LocalStack({{}}, var=Path(sys.argv[1]))
stack.stack_file.write_text("{{}}", encoding="utf-8")

def body():
    child = stack.start([sys.executable, "-c", {SLOW_CHILD!r}], "child.log")
    print("child", child.pid, flush=True)
    while True:
        time.sleep(0.1)

sys.exit(0 if supervise(stack, body) else 1)
"""


def test_two_interrupts_stop_everything_cleanly(tmp_path: Path) -> None:
    stack_file = tmp_path / "prefect-api-url"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BEVILLING_LOCAL_STACK_FILE": str(stack_file)}
    supervisor = subprocess.Popen([sys.executable, "-c", SUPERVISOR, str(tmp_path)], cwd=ROOT,
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, start_new_session=True)
    assert supervisor.stdout is not None
    line = supervisor.stdout.readline()
    assert line.startswith("child "), line + (supervisor.stderr.read() if supervisor.stderr
                                              else "")
    child = int(line.split()[1])
    deadline = time.monotonic() + 30
    while "ready" not in (tmp_path / "child.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(supervisor.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group
    time.sleep(1.0)
    os.killpg(supervisor.pid, signal.SIGINT)  # impatient: a second one during the shutdown
    out, err = supervisor.communicate(timeout=60)
    assert supervisor.returncode == 0, err
    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err
    assert "already stopping" in out
    assert "stopped everything" in out
    assert not stack_file.exists(), "the CLI must not find a stack that is gone"
    try:
        os.kill(child, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError(f"child {child} still runs")
