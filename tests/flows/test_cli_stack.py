"""The CLI finds the stack: flow commands run on the Prefect server when it is up, else directly."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.settings import PREFECT_API_URL

from flows.serve import load_flow
from tests.support.factories import ROOT, SEED

NO_SERVER = "no Prefect server running"


def _cli(args: list[str], env: dict[str, str]) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True,
                          text=True, env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                          timeout=180, check=False)


def _clean_env(app_env: dict[str, str], home: Path, stack_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return {**env, **app_env, "HOME": str(home), "BEVILLING_LOCAL_STACK_FILE": str(stack_file)}


def test_without_a_server_flow_commands_run_directly_and_leave_no_prefect_home(
        app_env: dict[str, str], tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = _clean_env(app_env, home, tmp_path / "no-stack")
    assert _cli(["load", str(SEED)], env).returncode == 0
    for args, expected in [(["requests", "submit", "STS-2027"], "approval mail to"),
                           (["deadlines", "--as-of", "2025-10-01"], "2 reminders"),
                           (["requests", "follow-up"], ""),
                           (["outbox", "deliver"], "sent ")]:
        done = _cli(args, env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert expected in done.stdout
        assert done.stderr.count("\n") == 1, done.stderr  # one line, no tracebacks
        assert NO_SERVER in done.stderr
    assert not (home / ".prefect").exists()


@pytest.mark.usefixtures("prefect_harness")
async def test_with_the_stack_a_flow_command_is_a_run_of_its_deployment(
        app_env: dict[str, str], tmp_path: Path) -> None:
    route = await load_flow("flows/approvals.py:route_budget_request").ato_deployment(
        name="route-budget-request")
    deployment_id = await route.aapply()
    async with get_client() as client:  # the session's one server keeps earlier tests' runs
        earlier = {run.id for run in await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))}
    stack_file = tmp_path / "prefect-api-url"
    stack_file.write_text(json.dumps({"api_url": str(PREFECT_API_URL.value()),
                                      "prefect_home": str(tmp_path / "prefect")}),
                          encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    env = _clean_env(app_env, home, stack_file)
    assert _cli(["load", str(SEED)], env).returncode == 0
    done = _cli(["requests", "submit", "STS-2027"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "approval mail to" in done.stdout
    assert "ran as a flow run on the Prefect server" in done.stderr
    async with get_client() as client:
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
    assert [(run.name, run.state_name) for run in runs
            if run.id not in earlier] == [("route-STS-2027", "Completed")]
    assert not (home / ".prefect").exists()
