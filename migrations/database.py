"""Creating a PostgreSQL database itself: DDL outside any schema, so SQL text lives here."""

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def ensure_postgres_database(url: str) -> None:
    """Create the database named in `url` when it does not exist yet (needs CREATEDB)."""
    target = make_url(url)
    admin = target.set(drivername="postgresql+psycopg", database="postgres")
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                  {"n": target.database}).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        engine.dispose()
