"""`bevilling requests follow-up --as-of DATE` runs the escalate-approvals flow for that day, and
`requests show` says where escalation ended."""

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from cli.main import app
from config.settings import get_settings
from tests.support.approvals import load_seed, steps_of, submit_request
from tests.support.smtp_server import SmtpServer

runner = CliRunner()
KEY = "DOMEN-DRIFT"


@pytest.mark.usefixtures("prefect_harness")
def test_follow_up_as_of_escalates_day_by_day_until_nobody_is_left(
    app_env: dict[str, str], engine: Engine, smtp_server: SmtpServer,
) -> None:
    load_seed(engine)
    submit_request(engine, KEY, settings=get_settings())  # Wednesday 1 October 2025
    for day, escalated in [("2025-10-09", 1), ("2025-10-17", 1), ("2025-10-27", 1),
                           ("2025-11-04", 0)]:
        result = runner.invoke(app, ["requests", "follow-up", "--as-of", day])
        assert result.exit_code == 0, result.output
        assert f"escalated {escalated}" in result.output
    holders = [s.approver.split("@")[0] for s in steps_of(engine, KEY)
               if s.stage == "afdelingschef"]
    assert holders == ["karen.holm", "vicedirektoer", "stadsdirektoer", "borgmester"]
    shown = runner.invoke(app, ["requests", "show", KEY])
    assert "escalation exhausted" in shown.output
    assert "admins told" in shown.output
    saturday = runner.invoke(app, ["requests", "follow-up", "--as-of", "2025-11-08"])
    assert "not a working day" in saturday.output
