"""prefect.yaml: every deployment imports, validates and explains itself; served, it runs."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.deployments.flow_runs import arun_deployment
from prefect.settings import PREFECT_API_URL
from sqlalchemy import Engine

from flows.serve import deployments, load_flow, schedules_of
from tests.support.factories import ROOT, SEED, load_file

SPEC = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
ENTRIES: list[dict[str, Any]] = SPEC["deployments"]
EXPECTED = {"check-grant-deadlines", "deliver-outbox", "route-budget-request",
            "escalate-approvals", "send-digest", "process-inbox"}
# On-demand deployments get their required parameters when triggered.
RUN_TIME_PARAMETERS = {"route-budget-request": {"request_key": "STS-2027"},
                       "alert-admins": {"flow_run_id": "prefect.flow-run.00000000-0000-0000-"
                                                       "0000-000000000000"}}


def test_expected_deployments_are_declared() -> None:
    assert {entry["name"] for entry in ENTRIES} >= EXPECTED


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["name"])
def test_entrypoint_imports_and_parameters_validate(entry: dict[str, Any]) -> None:
    flow = load_flow(entry["entrypoint"])
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", entry["name"])
    assert flow.name == entry["name"], "the flow name is what admins see in the UI"
    assert len(entry["description"]) > 40
    assert "bevilling" in entry["tags"]
    flow.validate_parameters({**(entry.get("parameters") or {}),
                              **RUN_TIME_PARAMETERS.get(entry["name"], {})})
    for schedule in entry.get("schedules") or []:
        assert schedule["timezone"] == "Europe/Copenhagen"
    assert entry["work_pool"]["name"] == "bevilling"


def test_deadline_schedule_is_working_day_mornings() -> None:
    entry = next(e for e in ENTRIES if e["name"] == "check-grant-deadlines")
    (schedule,) = schedules_of(entry)
    assert schedule.cron == "0 7 * * 1-5"
    assert str(schedule.timezone) == "Europe/Copenhagen"


def test_serve_builds_every_deployment() -> None:
    assert {d.name for d in deployments()} == {e["name"] for e in ENTRIES}


@pytest.mark.usefixtures("prefect_harness")
async def test_served_deployment_runs_to_completion(app_env: dict[str, str], engine: Engine,
                                                    tmp_path: Path) -> None:
    load_file(engine, SEED)
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()),
           "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "flows.serve"], cwd=ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        run = None
        while time.monotonic() < deadline:
            try:
                run = await arun_deployment("check-grant-deadlines/check-grant-deadlines",
                                            parameters={"as_of": "2025-10-01"}, timeout=90)
                break
            except Exception:  # the deployment is not registered until serve has started
                if server.poll() is not None:
                    raise
                time.sleep(1)
        assert run is not None, (tmp_path / "serve.log").read_text()
        assert run.state is not None
        assert run.state.is_completed(), (tmp_path / "serve.log").read_text()[-3000:]
        assert run.name == "deadlines-2025-10-01"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()
