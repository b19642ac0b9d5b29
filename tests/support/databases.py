"""Real databases for tests: a SQLite file per test and, when configured, PostgreSQL."""

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from db.migrate import upgrade_to_head

POSTGRES_ENV = "BEVILLING_TEST_POSTGRES_URL"
TABLES_IN_TRUNCATE_ORDER: tuple[str, ...] = ()


def postgres_admin_url() -> str | None:
    """The PostgreSQL URL to create test databases with, if one is configured."""
    return os.environ.get(POSTGRES_ENV) or None


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database (migrated) for the session; dropped afterwards."""
    admin = postgres_admin_url()
    if admin is None:
        raise RuntimeError(f"{POSTGRES_ENV} is not set")
    name = f"bevilling_test_{uuid.uuid4().hex[:10]}"
    admin_engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade_to_head(url)
        yield url
    finally:
        from db.engine import dispose_engines

        dispose_engines()
        with admin_engine.connect() as conn:
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
            ), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin_engine.dispose()


def reset_postgres(url: str) -> None:
    """Empty every application table and reset the audit head."""
    engine = create_engine(url)
    with engine.begin() as conn:
        names = [row[0] for row in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"))]
        conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in names)
                          + " RESTART IDENTITY CASCADE"))
        conn.execute(text("INSERT INTO audithead (id, last_seq, last_hash) "
                          "VALUES (1, 0, :h)"), {"h": "0" * 64})
    engine.dispose()


def sqlite_template(directory: Path) -> Path:
    """A migrated SQLite file to copy for each test (migrating every time is slow)."""
    path = directory / "template.db"
    if not path.exists():
        upgrade_to_head(f"sqlite:///{path}")
    return path


def sqlite_copy(template: Path, target: Path) -> str:
    """Copy the template database to `target` and return its URL."""
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"
