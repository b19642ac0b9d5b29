"""Admins are told, not only shown: a failed flow run mails them once, through the outbox."""

import asyncio
import time
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from flows.alerts import alert_admins_of_failure
from flows.serve import deployments
from models import Outbox
from tests.support.approvals import load_seed

ADMIN = "bevilling-admin@kommune.example.org"


@flow(name="broken-on-purpose", retries=1, retry_delay_seconds=0)
def broken_on_purpose() -> None:
    """Fails every time (and once more on its retry)."""
    raise RuntimeError("the SMTP relay said no")


async def _runs_of(deployment_id: Any) -> list[Any]:
    async with get_client() as client:
        return await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))


def _alerts(engine: Engine) -> list[Outbox]:
    with Session(engine) as session:
        return list(session.execute(
            select(Outbox).where(col(Outbox.kind) == "admin_alert")).scalars())


@pytest.mark.usefixtures("prefect_harness")
async def test_a_failed_run_mails_the_admin_once(app_env: dict[str, str],
                                                 engine: Engine) -> None:
    load_seed(engine)
    state = await asyncio.to_thread(broken_on_purpose, return_state=True)
    assert state.is_failed()
    run_id = state.state_details.flow_run_id
    assert await alert_admins_of_failure(flow_run_id=f"prefect.flow-run.{run_id}") == 1
    assert await alert_admins_of_failure(flow_run_id=f"prefect.flow-run.{run_id}") == 0
    (alert,) = _alerts(engine)
    assert alert.recipients == [ADMIN]
    assert "broken-on-purpose" in alert.subject
    assert "Failed" in alert.subject
    assert "the SMTP relay said no" in alert.body_text
    assert alert.body_text.startswith("Til Systemadministratoren")


@pytest.mark.usefixtures("prefect_harness")
async def test_the_failure_event_starts_the_alert_deployment(app_env: dict[str, str]) -> None:
    built: dict[str, Any] = {d.name: d for d in await asyncio.to_thread(deployments)}
    deployment_id = await built["alert-admins"].aapply()
    # The session's one Prefect server keeps earlier tests' deployments, runs and automations.
    earlier = {run.id for run in await _runs_of(deployment_id)}
    await asyncio.sleep(1)
    started = time.monotonic()
    await asyncio.to_thread(broken_on_purpose, return_state=True)
    runs: list[Any] = []
    while not runs and time.monotonic() - started < 30:
        await asyncio.sleep(0.25)
        runs = [run for run in await _runs_of(deployment_id) if run.id not in earlier]
    await asyncio.sleep(2)  # and no second one for the same incident
    runs = [run for run in await _runs_of(deployment_id) if run.id not in earlier]
    assert len(runs) == 1, "a failed run must start exactly one alert-admins run"
    assert str(runs[0].parameters["flow_run_id"]).startswith("prefect.flow-run.")
