"""Reproduction 1 of issue 10 through the SMTP receiver (`bevilling inbound serve`): the requester,
substitute of the substitute, replies GODKEND over real SMTP and is refused."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import aiosmtplib
import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from models import Outbox
from receiver.smtp_server import start_inbound_server
from tests.integration.test_inbound_server import (
    ApprovalMail,
    Receiver,
    inbound_outcomes,
    reply,
    settings_for,
    step_states,
    submitted_request,
)
from tests.support.smtp_server import free_port
from workflow.delegations import add_delegation

KAREN = "karen.holm@kommune.example.org"
OKONOMI = "okonomi@kommune.example.org"
REQUESTER = "medborgerskab@kommune.example.org"  # DOMEN-DRIFT's requester


@pytest.fixture
def inbound(engine: Engine, database_url: str) -> Iterator[Receiver]:
    settings = settings_for(database_url)
    port = free_port()
    controller = start_inbound_server(engine, settings, host="127.0.0.1", port=port,
                                      timeout_seconds=10)
    try:
        yield Receiver("127.0.0.1", port, settings)
    finally:
        controller.stop()


async def test_the_requester_as_substitutes_substitute_is_refused_over_smtp(
    inbound: Receiver, engine: Engine,
) -> None:
    submitted_request(engine, inbound.settings)
    today = datetime.now(UTC).date()
    for person, substitute in ((KAREN, OKONOMI), (OKONOMI, REQUESTER)):
        add_delegation(engine, person=person, substitute=substitute, starts=today,
                       ends=today + timedelta(days=5), now=datetime.now(UTC),
                       settings=inbound.settings)
    with Session(engine) as session:
        row = session.execute(select(Outbox).where(col(Outbox.kind) == "approval_request")
                              .order_by(col(Outbox.id).desc())).scalars().first()
    assert row is not None
    assert row.recipients == [OKONOMI]  # Karen is away: her step moved to her substitute
    mail = ApprovalMail(row.headers["Reply-To"], row.message_id, row.subject)
    message = reply(mail, sender=REQUESTER)
    await aiosmtplib.send(message, hostname=inbound.host, port=inbound.port,
                          sender=REQUESTER, recipients=[mail.reply_to], timeout=10)
    assert inbound_outcomes(engine) == ["refused-requester"]
    assert step_states(engine)[0] == ("afdelingschef", "pending")
    message = reply(mail, sender=OKONOMI)
    await aiosmtplib.send(message, hostname=inbound.host, port=inbound.port,
                          sender=OKONOMI, recipients=[mail.reply_to], timeout=10)
    assert inbound_outcomes(engine)[-1] == "decision"
