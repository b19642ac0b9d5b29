"""Approval and digest flows under prefect_test_harness: artifacts and the admin digest."""

from datetime import UTC, datetime
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from db.engine import transaction
from flows.approvals import route_budget_request
from flows.digest import send_digest
from loading.register_file import read_register
from models import Outbox
from tests.support.factories import SEED, load_file
from workflow.request_load import apply_requests

pytestmark = pytest.mark.usefixtures("prefect_harness")


async def latest(key: str) -> Any:
    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert found, key
    return max(found, key=lambda a: str(a.created))


def seed(engine: Engine) -> None:
    load_file(engine, SEED)
    with transaction(engine) as session:
        apply_requests(session, read_register(SEED), now=datetime(2026, 11, 30, tzinfo=UTC))


async def test_route_flow_publishes_pending_approvals(app_env: dict[str, str],
                                                      engine: Engine) -> None:
    seed(engine)
    summary = route_budget_request(request_key="TEMA-CYBER")
    assert summary["mailed_to"] == ["karen.holm@kommune.example.org",
                                    "it-sikkerhed.a@kommune.example.org",
                                    "it-sikkerhed.b@kommune.example.org"]
    table = await latest("pending-approvals")
    assert "TEMA-CYBER" in str(table.data)
    assert "it-sikkerhed" in str(table.data)


async def test_weekly_digest_reaches_the_admin(app_env: dict[str, str], engine: Engine) -> None:
    seed(engine)
    route_budget_request(request_key="STS-2027")
    result = await send_digest()
    assert result["admins"] == 1
    assert result["runs"] >= 1
    with Session(engine) as session:
        digest = session.execute(select(Outbox).where(
            col(Outbox.kind) == "admin_digest")).scalar_one()
    assert digest.recipients == ["bevilling-admin@kommune.example.org"]
    assert "route-STS-2027" in digest.body_text
    assert "Bevillinger der udløber inden for 90 dage" in digest.body_text
