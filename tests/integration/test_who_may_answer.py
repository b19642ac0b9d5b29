"""Who may answer, end to end: real replies through `ingest_raw` and the confirm page.

The two reproductions of issue 10 (a requester approving their own request by reply) and the
cascade through a substitute's substitute, on SQLite and PostgreSQL.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlmodel import Session, col

from config.settings import get_settings
from db.engine import transaction
from models import ApprovalStep, Person
from tests.support.approvals import Flow as BaseFlow
from tests.support.approvals import (
    approval_mail_for,
    load_requests,
    load_seed,
    pending_step,
    request_state,
    steps_of,
    submit_request,
)
from tests.support.factories import SEED
from tests.support.smtp_server import SmtpServer
from web.app import create_app
from workflow.delegations import add_delegation

KAREN = "karen.holm@kommune.example.org"
OKONOMI = "okonomi@kommune.example.org"
ERHVERV = "erhverv@kommune.example.org"
DIRECTOR = "stadsdirektoer@kommune.example.org"
VICE = "vicedirektoer@kommune.example.org"
LINK = re.compile(r"/confirm/([A-Za-z0-9._-]+)")


@dataclass
class Flow(BaseFlow):
    """The shared test system, plus a delegation starting today."""

    def delegate(self, person: str, substitute: str, *, days: int = 10) -> None:
        today = self.now.date()
        add_delegation(self.engine, person=person, substitute=substitute, starts=today,
                       ends=today + timedelta(days=days), now=self.tick())


@pytest.fixture
def flow(app_env: dict[str, str], engine: Engine, smtp_server: SmtpServer) -> Flow:
    load_seed(engine)
    return Flow(engine, get_settings(), smtp_server)


def vice_asks_for(flow: Flow, tmp_path: Path, key: str = "VICE-1500") -> str:
    """A 1.5 mio. one-off request from the vice director (head of department, then director)."""
    document = yaml.safe_load(SEED.read_text(encoding="utf-8"))
    base = next(r for r in document["requests"] if r["key"] == "STS-2027")
    document["requests"] = [{**base, "key": key, "requester": VICE, "lines": [
        {"year": 2027, "amount": 1500000, "recurring": False, "label": "Anlæg"}]}]
    path = tmp_path / "vice.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    load_requests(flow.engine, path=path, now=flow.now)
    return key


def test_reproduction_requester_as_substitutes_substitute_is_refused(flow: Flow) -> None:
    """karen→okonomi and okonomi→erhverv today; erhverv's own request; erhverv replies GODKEND."""
    flow.delegate(KAREN, OKONOMI)
    flow.delegate(OKONOMI, ERHVERV)
    submit_request(flow.engine, "WVDK-KONTINGENT", settings=flow.settings, now=flow.tick())
    step = pending_step(flow.engine, "WVDK-KONTINGENT", OKONOMI)
    assert step.on_behalf_of == KAREN
    flow.deliver()
    mail = flow.inbox(OKONOMI)[-1]
    assert flow.reply(mail, sender=ERHVERV, text="GODKEND") == "refused-requester"
    assert request_state(flow.engine, "WVDK-KONTINGENT") == "pending"
    assert pending_step(flow.engine, "WVDK-KONTINGENT", OKONOMI).id == step.id
    # the substitute herself still decides
    assert flow.reply(mail, sender=OKONOMI, text="GODKEND") == "decision"


def test_a_substitutes_substitute_who_is_not_the_requester_is_refused(flow: Flow) -> None:
    flow.delegate(KAREN, OKONOMI)
    flow.delegate(OKONOMI, ERHVERV)
    submit_request(flow.engine, "DOMEN-DRIFT", settings=flow.settings, now=flow.tick())
    flow.deliver()
    mail = flow.inbox(OKONOMI)[-1]
    assert flow.reply(mail, sender=ERHVERV, text="GODKEND") == "refused-sender"
    assert next(s.state for s in steps_of(flow.engine, "DOMEN-DRIFT")) == "pending"
    # Karen, whose step it is, may still answer on her own behalf
    assert flow.reply(mail, sender=KAREN, text="GODKEND") == "decision"


def test_reproduction_requester_named_substitute_of_the_director_is_refused(
    flow: Flow, tmp_path: Path,
) -> None:
    key = vice_asks_for(flow, tmp_path)
    submit_request(flow.engine, key, settings=flow.settings, now=flow.tick())
    flow.deliver()
    assert flow.reply(flow.inbox(KAREN)[-1], sender=KAREN, text="GODKEND") == "decision"
    flow.deliver()
    director_mail = flow.inbox(DIRECTOR)[-1]
    flow.delegate(DIRECTOR, VICE)
    assert flow.reply(director_mail, sender=VICE, text="GODKEND") == "refused-requester"
    assert request_state(flow.engine, key) == "pending"
    step = next(s for s in steps_of(flow.engine, key) if s.stage == "stadsdirektoer"
                and s.version == steps_of(flow.engine, key)[-1].version)
    assert step.state == "pending"
    assert VICE not in {step.approver, step.on_behalf_of}


def test_the_link_of_a_step_held_by_the_requester_is_refused(flow: Flow, tmp_path: Path) -> None:
    """A step that names the requester (a row from before the rule): the page says no, 403."""
    flow.now = datetime.now(UTC) - timedelta(minutes=30)  # the page reads the real clock
    key = vice_asks_for(flow, tmp_path)
    submit_request(flow.engine, key, settings=flow.settings, now=flow.tick())
    step = pending_step(flow.engine, key, KAREN)
    with transaction(flow.engine) as session:
        vice = session.execute(select(col(Person.id)).where(col(Person.email) == VICE)).scalar_one()
        session.execute(update(ApprovalStep).where(col(ApprovalStep.id) == step.id)
                        .values(approver_id=vice))
    mail = approval_mail_for(flow.engine, step.id)
    found = LINK.search(mail.body_text)
    assert found is not None
    client = TestClient(create_app(), follow_redirects=False)
    page = client.get(f"/confirm/{found.group(1)}")
    assert page.status_code == 403
    assert "egen ansøgning" in page.text
    with Session(flow.engine) as session:
        row = session.get(ApprovalStep, step.id)
        assert row is not None
        assert row.state == "pending"
    assert request_state(flow.engine, key) == "pending"

