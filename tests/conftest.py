"""Test environment: real SQLite/PostgreSQL, real SMTP, an isolated Prefect home."""

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Prefect reads its settings at import: isolate it before anything imports prefect.
_PREFECT_HOME = tempfile.mkdtemp(prefix="bevilling-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_API_URL"] = ""
os.environ.pop("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", None)
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "90"
for _name in [n for n in os.environ
              if n.startswith("BEVILLING_") and n != "BEVILLING_TEST_POSTGRES_URL"]:
    del os.environ[_name]
# Never the checkout's own var/: the local token secret and the stack's address live in the tests'.
_VAR = Path(tempfile.mkdtemp(prefix="bevilling-var-"))
os.environ["BEVILLING_TOKEN_SECRET_FILE"] = str(_VAR / "token-secret")
os.environ["BEVILLING_LOCAL_STACK_FILE"] = str(_VAR / "prefect-api-url")

# The imports below must follow the environment set-up above, hence E402.
import pytest  # noqa: E402

from config.settings import get_settings  # noqa: E402
from db.engine import dispose_engines, get_engine  # noqa: E402
from tests.support.databases import (  # noqa: E402
    postgres_admin_url,
    postgres_database,
    reset_postgres,
    sqlite_copy,
    sqlite_template,
)
from tests.support.smtp_server import SmtpServer, running_smtp_server  # noqa: E402

BACKENDS = ["sqlite", "postgres"]


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI") and not postgres_admin_url():
        raise pytest.UsageError("CI must run the PostgreSQL tests: set BEVILLING_TEST_POSTGRES_URL")


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sqlite_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def _postgres_url() -> Iterator[str | None]:
    if not postgres_admin_url():
        yield None
        return
    with postgres_database() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, _sqlite_template: Path,
    _postgres_url: str | None,
) -> Iterator[str]:
    """A clean, migrated database: a SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        url = sqlite_copy(_sqlite_template, tmp_path / "bevilling.db")
    else:
        if _postgres_url is None:
            pytest.skip("PostgreSQL not configured: set BEVILLING_TEST_POSTGRES_URL "
                        "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
        reset_postgres(_postgres_url)
        url = _postgres_url
    yield url
    dispose_engines()


@pytest.fixture
def postgres_url(_postgres_url: str | None) -> Iterator[str]:
    """A clean PostgreSQL database only (for what SQLite cannot show, like SKIP LOCKED)."""
    if _postgres_url is None:
        pytest.skip("PostgreSQL not configured: set BEVILLING_TEST_POSTGRES_URL "
                    "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    reset_postgres(_postgres_url)
    yield _postgres_url
    dispose_engines()


@pytest.fixture
def sqlite_url(tmp_path: Path, _sqlite_template: Path) -> Iterator[str]:
    """A clean SQLite database only (for tests about SQLite specifics or speed)."""
    yield sqlite_copy(_sqlite_template, tmp_path / "bevilling.db")
    dispose_engines()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A recording aiosmtpd on 127.0.0.1, stopped after the test."""
    with running_smtp_server() as server:
        yield server


@pytest.fixture
def app_env(
    monkeypatch: pytest.MonkeyPatch, database_url: str, smtp_server: SmtpServer, tmp_path: Path,
) -> Iterator[dict[str, str]]:
    """BEVILLING_* settings pointing at the test database and SMTP server."""
    values = {
        "BEVILLING_DATABASE_URL": database_url,
        "BEVILLING_SMTP_HOST": smtp_server.host,
        "BEVILLING_SMTP_PORT": str(smtp_server.port),
        "BEVILLING_DELIVERY_BACKOFF_SECONDS": "60",
        "BEVILLING_TOKEN_SECRET": "test-secret-not-for-production",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield values
    get_settings.cache_clear()
    dispose_engines()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test server for the whole session (it takes ~10 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def engine(database_url: str) -> object:
    """The engine for the test database."""
    return get_engine(database_url)
