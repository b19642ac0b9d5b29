"""Mail leaves in seconds: committed work emits an event, and deliver-outbox is triggered by it."""

import asyncio
import time
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.events.clients import AssertingEventsClient
from prefect.events.worker import EventsWorker
from sqlalchemy import Engine

from flows.approvals import route_budget_request
from flows.serve import deployments
from tests.support.approvals import load_seed
from workflow.events import APPROVAL_DECIDED, OUTBOX_ENQUEUED, announce


async def _runs_of(deployment_id: Any) -> list[Any]:
    async with get_client() as client:
        return await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))


def _by_name() -> dict[str, Any]:
    return {d.name: d for d in deployments()}


def test_delivery_is_triggered_with_a_slow_safety_net_and_inbox_idle_without_imap(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BEVILLING_IMAP_HOST", raising=False)
    built = _by_name()
    deliver = built["deliver-outbox"]
    (trigger,) = deliver.triggers
    assert trigger.expect == {OUTBOX_ENQUEUED}
    assert [s.schedule.interval.total_seconds() for s in deliver.schedules] == [600]
    (refresh,) = built["refresh-pending-approvals"].triggers
    assert refresh.expect == {APPROVAL_DECIDED}
    assert built["process-inbox"].schedules == []
    monkeypatch.setenv("BEVILLING_IMAP_HOST", "imap.example.org")
    assert len(_by_name()["process-inbox"].schedules) == 1


@pytest.mark.usefixtures("prefect_harness")
def test_submit_emits_the_enqueued_event_after_its_commit(
        app_env: dict[str, str], engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    load_seed(engine)
    worker = EventsWorker.instance(AssertingEventsClient)
    monkeypatch.setattr(EventsWorker, "instance", lambda *_: worker)
    route_budget_request(request_key="STS-2027")
    worker.drain()
    assert AssertingEventsClient.last is not None
    ours = [e for e in AssertingEventsClient.last.events if e.event == OUTBOX_ENQUEUED]
    assert [(e.resource.id, e.payload["request"]) for e in ours] == [
        ("bevilling.outbox", "STS-2027")]


@pytest.mark.usefixtures("prefect_harness")
async def test_the_event_starts_a_deliver_outbox_run_within_seconds(
        app_env: dict[str, str]) -> None:
    deliver = (await asyncio.to_thread(_by_name))["deliver-outbox"]
    deployment_id = await deliver.aapply()
    # The session's one Prefect server keeps earlier tests' deployments, runs and automations.
    earlier = {run.id for run in await _runs_of(deployment_id)}
    await asyncio.sleep(1)  # the automation is loaded by the triggers service
    started = time.monotonic()
    await asyncio.to_thread(announce, OUTBOX_ENQUEUED, source="test")
    runs: list[Any] = []
    while not runs and time.monotonic() - started < 30:
        await asyncio.sleep(0.25)
        runs = [run for run in await _runs_of(deployment_id)
                if run.id not in earlier and not run.auto_scheduled]  # the safety net's own
    assert len(runs) == 1, "no deliver-outbox run was created for the event"
    assert time.monotonic() - started < 10
