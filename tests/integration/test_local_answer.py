"""The local loop: `bevilling inbound answer` replies to an approval mail via the receiver."""

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from typer.testing import CliRunner

from cli.main import app
from config.settings import get_settings
from receiver.smtp_server import start_inbound_server
from tests.support.approvals import drain, load_seed, steps_of, submit_request
from tests.support.smtp_server import SmtpServer, free_port

runner = CliRunner()
KEY = "DOMEN-DRIFT"
FIRST = "karen.holm@kommune.example.org"


def test_answer_decides_the_newest_approval_mail_through_the_receiver(
        app_env: dict[str, str], engine: Engine, smtp_server: SmtpServer,
        tmp_path: Path) -> None:
    now = datetime.now(UTC)
    load_seed(engine)
    submit_request(engine, KEY, settings=get_settings(), now=now)
    drain(now)
    maildir = tmp_path / "mail"
    (maildir / "new").mkdir(parents=True)
    for number, received in enumerate(smtp_server.handler.received):
        (maildir / "new" / f"{number}.eml").write_bytes(received.raw)

    link = runner.invoke(app, ["inbound", "answer", "--link", "--maildir", str(maildir)])
    assert link.exit_code == 0, link.output
    assert "/confirm/" in link.output

    port = free_port()
    controller = start_inbound_server(engine, get_settings(), host="127.0.0.1", port=port)
    try:
        answered = runner.invoke(app, ["inbound", "answer", "GODKEND", "Fint", "--maildir",
                                       str(maildir), "--port", str(port)])
    finally:
        controller.stop()
    assert answered.exit_code == 0, answered.output
    first = next(step for step in steps_of(engine, KEY) if step.approver == FIRST)
    assert first.state == "approved"


def test_answer_without_an_approval_mail_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "new").mkdir()
    result = runner.invoke(app, ["inbound", "answer", "--maildir", str(tmp_path)])
    assert result.exit_code == 4
    assert "no approval mail" in result.output
