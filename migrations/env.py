"""Alembic environment: the URL comes from the caller's config (db.migrate) or settings."""

from alembic import context
from sqlmodel import SQLModel

import models  # noqa: F401  (registers every table on the metadata)
from config.settings import get_settings
from db.engine import close_engine, make_engine

config = context.config
target_metadata = SQLModel.metadata


def run_migrations() -> None:
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    close_engine(engine)


run_migrations()
