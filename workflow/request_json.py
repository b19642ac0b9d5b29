"""The stable JSON shape of `requests show --json` and `requests list --json` (scripts use it)."""

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from db.requests import request_lines, totals
from models import BudgetRequest, Person
from workflow.views import RequestView, load_request_view


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def request_document(view: RequestView) -> dict[str, Any]:
    """One request with its lines and every step (all versions, oldest first)."""
    total_high = totals(view.lines)[0]
    return {
        "key": view.key,
        "title": view.title,
        "state": view.state,
        "version": view.version,
        "category": view.category,
        "requester": view.requester.email,
        "grant": view.grant_key,
        "amounts_note": view.amounts_note,
        "amounts": [
            {
                "year": line.year,
                "label": line.label,
                "amount": _money(line.amount),
                "amount_max": _money(line.amount_max),
                "recurring": line.recurring,
            }
            for line in view.lines
        ],
        "total": _money(sum((line.amount for line in view.lines), Decimal(0))),
        "total_max": _money(total_high),
        "steps": [
            {
                "id": step.id,
                "version": step.version,
                "stage": step.stage_key,
                "approver_email": step.approver.email,
                "on_behalf_of": step.on_behalf_of.email if step.on_behalf_of else None,
                "state": step.state,
                "decision": step.decision,
                "comment": step.comment,
                "channel": step.channel,
                "due_date": step.due_date.isoformat() if step.due_date else None,
                "decided_at": step.decided_at.isoformat() if step.decided_at else None,
                "note": step.note,
            }
            for step in view.steps
        ],
    }


def request_by_key(session: Session, key: str) -> dict[str, Any] | None:
    """The document for one request, or None."""
    request = session.execute(
        select(BudgetRequest).where(col(BudgetRequest.key) == key)
    ).scalar_one_or_none()
    return None if request is None else request_document(load_request_view(session, request))


def request_list(session: Session) -> list[dict[str, Any]]:
    """Every request: key, title, state, version, category, requester and yearly amounts."""
    rows = session.execute(
        select(BudgetRequest, col(Person.email))
        .join(Person, col(Person.id) == col(BudgetRequest.requester_id))
        .order_by(col(BudgetRequest.key))
    ).all()
    result = []
    for request, email in rows:
        lines = request_lines(session, request.id or 0)
        yearly: dict[str, dict[str, str | None]] = {}
        for line in lines:
            entry = yearly.setdefault(str(line.year), {"amount": "0", "amount_max": "0"})
            entry["amount"] = str(Decimal(entry["amount"] or "0") + line.amount)
            entry["amount_max"] = str(Decimal(entry["amount_max"] or "0") + line.high)
        result.append(
            {
                "key": request.key,
                "title": request.title,
                "state": request.state,
                "version": request.version,
                "category": request.category,
                "requester": email,
                "yearly_amounts": yearly,
                "amounts_note": request.amounts_note,
            }
        )
    return result
