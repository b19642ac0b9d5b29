"""Versions read truthfully: a replaced version's steps read `superseded`, and everyone whose
decision or open step it replaced is told at once, with what changed. Real replies."""

from datetime import timedelta
from pathlib import Path

import yaml
from sqlalchemy import Engine

from config.settings import get_settings
from db.engine import transaction
from tests.support.approvals import (
    SUBMITTED,
    approval_mail_for,
    build_reply,
    ingest,
    load_requests,
    load_seed,
    outbox,
    parse_message,
    pending_step,
    steps_of,
    submit_request,
)
from tests.support.factories import SEED
from tests.support.smtp_server import SmtpServer
from workflow.context import make_context
from workflow.request_json import request_by_key
from workflow.routing import resubmit_revised

KEY = "DOMEN-DRIFT"
KAREN = "karen.holm@kommune.example.org"
DIRECTOR = "stadsdirektoer@kommune.example.org"
MAYOR = "borgmester@kommune.example.org"


def approve(engine: Engine, approver: str, minutes: int) -> None:
    step = pending_step(engine, KEY, approver)
    mail = parse_message(approval_mail_for(engine, step.id).raw)
    now = SUBMITTED + timedelta(minutes=minutes)
    raw = build_reply(mail, sender=approver, text="GODKEND", date=now)
    assert ingest(engine, raw, settings=get_settings(), now=now).outcome == "decision"


def test_a_new_version_supersedes_old_steps_and_tells_who_lost_a_decision_or_a_step(
    app_env: dict[str, str], engine: Engine, smtp_server: SmtpServer, tmp_path: Path,
) -> None:
    load_seed(engine)
    submit_request(engine, KEY, settings=get_settings())
    approve(engine, KAREN, 5)
    approve(engine, DIRECTOR, 10)  # the mayor's step is now pending
    old = steps_of(engine, KEY)
    document = yaml.safe_load(SEED.read_text(encoding="utf-8"))
    request = next(r for r in document["requests"] if r["key"] == KEY)
    request["lines"][0]["amount"] = 1_500_000
    path = tmp_path / "revised.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    now = SUBMITTED + timedelta(minutes=20)
    report = load_requests(engine, path=path, now=now)
    with transaction(engine) as session:
        resubmit_revised(session, report.revised_pending_ids[0],
                         ctx=make_context(get_settings(), now=now))
    steps = steps_of(engine, KEY)
    assert {s.state for s in steps if s.version == old[0].version} == {"superseded"}
    with transaction(engine) as session:
        shown = request_by_key(session, KEY)
    assert shown is not None
    assert [s["state"] for s in shown["steps"] if s["version"] == old[0].version] == [
        "superseded"] * 3
    # Karen is asked again at once (her new approval mail lists the change): no extra notice.
    assert outbox(engine, kind="step_voided", recipient=KAREN) == []
    director = outbox(engine, kind="step_voided", recipient=DIRECTOR)
    assert len(director) == 1
    assert "Din beslutning (godkendt)" in director[0].body_text
    assert "1.300.000–2.000.000 → 1.500.000–2.000.000" in director[0].body_text.replace(
        "\u00a0", " ")
    mayor = outbox(engine, kind="step_voided", recipient=MAYOR)
    assert len(mayor) == 1
    assert "Dit åbne trin »Borgmester«" in mayor[0].body_text
