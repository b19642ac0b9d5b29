"""The work of each on-demand flow as a plain service, for the flow's task and the CLI alike.

With a Prefect server the CLI runs the flow (whose task calls these); without one it calls them
directly, so both paths do exactly the same work and return the same summary.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from config.settings import Settings
from db.engine import transaction
from workflow.context import make_context
from workflow.follow_up import follow_up
from workflow.routing import submit


def submit_request(request_key: str, *, settings: Settings, engine: Engine, now: datetime,
                   actor: str) -> dict[str, Any]:
    """Route a draft request: its steps and the first approval mails in one transaction."""
    ctx = make_context(settings, now=now)
    with transaction(engine) as session:
        result = submit(session, request_key, ctx=ctx, actor=actor)
    return {
        "request": result.request_key,
        "version": result.version,
        "steps": result.steps,
        "mailed_to": list(result.mailed_to),
        "skipped_stages": list(result.skipped_stages),
    }


def remind_and_escalate_now(*, settings: Settings, engine: Engine,
                            now: datetime) -> dict[str, Any]:
    """One transaction: digests for steps due tomorrow, escalation of overdue ones."""
    ctx = make_context(settings, now=now)
    with transaction(engine) as session:
        report = follow_up(session, ctx=ctx)
    return {
        "digests": report.digests,
        "reminded_steps": report.reminded_steps,
        "escalated": report.escalated,
        "not_escalated": report.not_escalated,
        "closed_day": report.closed_day,
        "moved": report.moved,
    }
