"""One local link-signing key: `bevilling init` writes it once, every face reads it."""

import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from config.settings import Settings, get_settings
from workflow.context import TokenSecretMissing, make_context, token_secret

runner = CliRunner()


@pytest.fixture
def local_env(monkeypatch: pytest.MonkeyPatch, sqlite_url: str,
              tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "var" / "token-secret"
    monkeypatch.setenv("BEVILLING_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("BEVILLING_TOKEN_SECRET_FILE", str(path))
    monkeypatch.delenv("BEVILLING_TOKEN_SECRET", raising=False)
    monkeypatch.delenv("BEVILLING_TOKEN_SECRET_BLOCK", raising=False)
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def test_init_creates_the_local_secret_once_with_mode_600(local_env: Path) -> None:
    first = runner.invoke(app, ["init"])
    assert first.exit_code == 0, first.output
    assert "created, mode 600" in first.output
    assert stat.S_IMODE(local_env.stat().st_mode) == 0o600
    key = local_env.read_text(encoding="utf-8")
    assert len(key) >= 40
    second = runner.invoke(app, ["init"])
    assert second.exit_code == 0, second.output
    assert "kept" in second.output
    assert local_env.read_text(encoding="utf-8") == key


def test_every_face_reads_the_local_secret_through_settings(local_env: Path) -> None:
    assert runner.invoke(app, ["init"]).exit_code == 0
    key = local_env.read_text(encoding="utf-8")
    current = get_settings()
    assert token_secret(current) == key
    # The flows and the receiver build their context from settings; the page keeps the secret.
    assert make_context(current, now=datetime.now(UTC)).token_secret == key
    from web.app import ConfirmPages

    assert ConfirmPages(current).secret == key


def test_environment_wins_and_init_writes_nothing(local_env: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEVILLING_TOKEN_SECRET", "from-the-environment")
    get_settings.cache_clear()
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert not local_env.exists()
    assert token_secret(get_settings()) == "from-the-environment"


def test_production_refuses_the_local_file(local_env: Path) -> None:
    assert runner.invoke(app, ["init"]).exit_code == 0
    refusing = Settings(token_secret_file=local_env, token_secret_file_allowed=False)
    with pytest.raises(TokenSecretMissing, match="TOKEN_SECRET_FILE_ALLOWED=false"):
        token_secret(refusing)
