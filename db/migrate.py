"""Alembic, driven from code: `bevilling init` and the tests upgrade to head the same way."""

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our migrations and at `url`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_to_head(url: str) -> None:
    """Create or upgrade the schema at `url`."""
    command.upgrade(alembic_config(url), "head")


def make_revision(url: str, message: str) -> None:
    """Autogenerate a revision against `url` (developer tool)."""
    command.revision(alembic_config(url), message=message, autogenerate=True)
