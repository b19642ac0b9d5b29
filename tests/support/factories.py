"""Typed helpers that put real rows in the test database through the production code paths."""

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine

from config.closed_days import working_calendar
from config.settings import Settings
from db.engine import transaction
from loading.register_file import read_register
from workflow.register_load import LoadReport, apply_register

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "data" / "aarhus-budget-2026-2029.yaml"
NOW = datetime(2025, 10, 1, 5, 0, tzinfo=UTC)


def load_file(engine: Engine, path: Path, *, now: datetime = NOW,
              settings: Settings | None = None) -> LoadReport:
    """Load a register file exactly as `bevilling load` does."""
    current = settings or Settings()
    register = read_register(path)
    calendar = working_calendar(current, around=date(2026, 1, 1), span_years=15)
    with transaction(engine) as session:
        return apply_register(session, register, default_offsets=current.reminder_offsets,
                              calendar=calendar, now=now)


def write_register(path: Path, *, grants: list[dict[str, Any]],
                   people: list[dict[str, Any]] | None = None) -> Path:
    """A YAML register with one department, the given people (default: one owner) and grants."""
    document = {
        "departments": [{"key": "ba", "name": "Borgmesterens Afdeling"}],
        "people": people if people is not None else [
            {"email": "owner@kommune.example.org", "name": "Ejer Ejersen", "role": "okonomi",
             "department": "ba"},
            {"email": "english@kommune.example.org", "name": "Eve English", "role": "okonomi",
             "department": "ba", "language": "en"},
        ],
        "grants": grants,
    }
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def make_grant(
    key: str = "G1", *, end: date = date(2025, 12, 31), **overrides: Any
) -> dict[str, Any]:
    """A grant entry for `write_register`."""
    grant: dict[str, Any] = {
        "key": key, "title": f"Bevilling {key}", "department": "ba",
        "owner": "owner@kommune.example.org", "end_date": end.isoformat(),
        "amounts": [{"kind": "need", "recurrence": "yearly", "amount": 500000,
                     "label": "Kontingent"}],
    }
    grant.update(overrides)
    return grant
