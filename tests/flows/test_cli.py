"""The `bevilling` CLI end to end: the 'done when' sequence of the deadline issue."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.support.factories import ROOT, SEED
from tests.support.smtp_server import SmtpServer

runner = CliRunner()

COMMANDS = [[], ["init"], ["load"], ["deadlines"], ["outbox", "deliver"], ["outbox", "list"],
            ["grants", "list"], ["reminders", "list"], ["audit", "verify"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


@pytest.mark.usefixtures("prefect_harness")
def test_init_load_deadlines_deliver_exactly_once(app_env: dict[str, str],
                                                  smtp_server: SmtpServer) -> None:
    assert runner.invoke(app, ["init"]).exit_code == 0
    loaded = runner.invoke(app, ["load", str(SEED)])
    assert loaded.exit_code == 0, loaded.output
    assert "5 grants created" in loaded.output
    checked = runner.invoke(app, ["deadlines", "--as-of", "2025-10-01"])
    assert checked.exit_code == 0, checked.output
    assert "2 reminders" in checked.output
    delivered = runner.invoke(app, ["outbox", "deliver"])
    assert delivered.exit_code == 0, delivered.output
    assert "sent 4" in delivered.output
    assert len(smtp_server.handler.received) == 4
    # The same again delivers nothing.
    assert runner.invoke(app, ["load", str(SEED)]).exit_code == 0
    assert "0 reminders" in runner.invoke(app, ["deadlines", "--as-of", "2025-10-01"]).output
    assert "sent 0" in runner.invoke(app, ["outbox", "deliver"]).output
    assert len(smtp_server.handler.received) == 4

    grants = json.loads(runner.invoke(app, ["grants", "list", "--json"]).output)
    assert {g["key"] for g in grants} >= {"DOMEN", "WVDK", "STS-BASIS", "CSR-LOENKONTROL"}
    reminders = json.loads(runner.invoke(app, ["reminders", "list", "--json"]).output)
    late = [r for r in reminders if r["state"] == "late-sent"]
    assert {(r["grant"], r["offset_days"], r["delivery"]) for r in late} == {
        ("DOMEN", 180, "sent"), ("WVDK", 180, "sent")}
    verified = runner.invoke(app, ["audit", "verify"])
    assert verified.exit_code == 0
    assert "intact" in verified.output


def test_load_reports_problems_and_exits_2(app_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("grants:\n  - key: X\n    title: T\n", encoding="utf-8")
    result = runner.invoke(app, ["load", str(bad)])
    assert result.exit_code == 2
    assert "nothing was loaded" in result.output
    assert "bad.yaml:2: grants.0.department" in result.output


def test_missing_file_and_bad_date(app_env: dict[str, str], tmp_path: Path) -> None:
    assert runner.invoke(app, ["load", str(tmp_path / "none.yaml")]).exit_code == 2
    result = runner.invoke(app, ["deadlines", "--as-of", "1. oktober"])
    assert result.exit_code == 2
    assert "YYYY-MM-DD" in result.output


def test_audit_verify_detects_tampering(app_env: dict[str, str], database_url: str) -> None:
    from sqlalchemy import create_engine, text

    runner.invoke(app, ["load", str(SEED)])
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE auditevent SET actor = 'mallory' WHERE seq = 2"))
    engine.dispose()
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert "content altered" in result.output


def _cli(args: list[str], env: dict[str, str]) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True,
                          text=True, env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                          cwd=ROOT, timeout=120, check=False)


def test_uninitialised_database_gets_a_hint_not_a_traceback(tmp_path: Path) -> None:
    result = _cli(["grants", "list"],
                  {"BEVILLING_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"})
    assert result.returncode == 1
    assert "run `bevilling init`" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_token_secret_is_a_configuration_error(tmp_path: Path) -> None:
    # Production refuses the local file: `init` writes none and nothing finds one.
    env = {"BEVILLING_DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}",
           "BEVILLING_TOKEN_SECRET_FILE": str(tmp_path / "token-secret"),
           "BEVILLING_TOKEN_SECRET_FILE_ALLOWED": "false"}
    assert _cli(["init"], env).returncode == 0
    assert not (tmp_path / "token-secret").exists()
    result = _cli(["replies", "ingest", str(ROOT / "tests/fixtures/eml/gmail-da-approve.eml")],
                  {**env, "BEVILLING_TOKEN_SECRET": ""})
    assert result.returncode == 1
    assert "configuration error: no token secret" in result.stderr
