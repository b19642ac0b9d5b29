"""The Prefect flows run for real under prefect_test_harness, artifacts included."""

from datetime import date
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from sqlalchemy import Engine

from flows.deadlines import check_grant_deadlines
from flows.delivery import deliver_outbox
from tests.support.factories import SEED, load_file
from tests.support.smtp_server import SmtpServer

pytestmark = pytest.mark.usefixtures("prefect_harness")


async def latest_artifact(key: str) -> Any:
    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert artifacts, f"no artifact {key!r}"
    return max(artifacts, key=lambda a: str(a.created))


async def test_check_then_deliver_flows(app_env: dict[str, str], engine: Engine,
                                        smtp_server: SmtpServer) -> None:
    load_file(engine, SEED)
    summary = check_grant_deadlines(as_of=date(2025, 10, 1))
    assert summary["reminders"] == 2
    table = await latest_artifact("upcoming-deadlines")
    assert "DOMEN" in str(table.data)
    assert "WVDK" in str(table.data)
    delivered = await deliver_outbox()
    assert delivered["sent"] == 4
    assert len(smtp_server.handler.received) == 4
    report = await latest_artifact("delivery-report")
    assert "| 4 | 0 | 0 |" in str(report.data)
    assert check_grant_deadlines(as_of=date(2025, 10, 1))["reminders"] == 0


async def test_flow_run_name_tells_the_day(app_env: dict[str, str], engine: Engine) -> None:
    load_file(engine, SEED)
    state = check_grant_deadlines(as_of=date(2025, 10, 1), return_state=True)
    async with get_client() as client:
        run_id = state.state_details.flow_run_id
        assert run_id is not None
        run = await client.read_flow_run(run_id)
    assert run.name == "deadlines-2025-10-01"


async def test_failed_delivery_is_an_artifact(app_env: dict[str, str], engine: Engine,
                                             smtp_server: SmtpServer) -> None:
    load_file(engine, SEED)
    check_grant_deadlines(as_of=date(2025, 10, 1))
    smtp_server.handler.refuse_addresses["erhverv@kommune.example.org"] = "550 5.1.1 unknown"
    await deliver_outbox()
    failures = await latest_artifact("delivery-failures")
    assert "erhverv@kommune.example.org" in str(failures.data)


async def test_an_idle_delivery_publishes_no_new_report(app_env: dict[str, str], engine: Engine,
                                                        smtp_server: SmtpServer) -> None:
    load_file(engine, SEED)
    check_grant_deadlines(as_of=date(2025, 10, 1))
    await deliver_outbox()
    before = await latest_artifact("delivery-report")
    assert (await deliver_outbox())["sent"] == 0
    after = await latest_artifact("delivery-report")
    assert after.id == before.id
