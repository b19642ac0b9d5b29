"""Load the `requests:` section of a register file: versions, snapshots, revised requests."""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlmodel import Session, col

from db.audit import NewEvent, append_events
from domain.approval_state import TERMINAL_REQUEST_STATES, RequestState
from loading.register_file import Located, RegisterFile
from loading.request_schema import RequestSpec
from loading.yaml_lines import DataFileError, DataFileProblem
from models import BudgetRequest, Department, Grant, Person, RequestLine


def content_of(spec: RequestSpec) -> dict[str, Any]:
    """What defines a version: amounts and texts (not who asked or which policy)."""
    return {
        "title": spec.title,
        "justification": spec.justification,
        "amounts_note": spec.amounts_note,
        "lines": [{"year": line.year, "label": line.label, "amount": str(line.amount),
                   "amount_max": None if line.amount_max is None else str(line.amount_max),
                   "recurring": line.recurring} for line in spec.lines],
    }


def version_of(content: dict[str, Any]) -> str:
    """Short hash of a version's content."""
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def fingerprint(spec: RequestSpec) -> str:
    """Hash of the whole spec: unchanged fingerprint, nothing to do on reload."""
    return hashlib.sha256(spec.model_dump_json().encode("utf-8")).hexdigest()


@dataclass
class RequestLoadReport:
    """What loading the `requests:` section changed."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    revised_pending_ids: tuple[int, ...] = ()


def _refs(session: Session, register: RegisterFile) -> tuple[dict[str, int], dict[str, int],
                                                            dict[str, int]]:
    departments = {k: i for i, k in session.execute(
        select(col(Department.id), col(Department.key))).all()}
    people = {e: i for i, e in session.execute(select(col(Person.id), col(Person.email))).all()}
    grants = {k: i for i, k in session.execute(select(col(Grant.id), col(Grant.key))).all()}
    return departments, people, grants


def apply_requests(session: Session, register: RegisterFile, *, now: datetime) -> RequestLoadReport:
    """Upsert requests (after departments, people and grants); returns the revised pending ones."""
    report = RequestLoadReport()
    if not register.requests:
        return report
    departments, people, grants = _refs(session, register)
    problems: list[DataFileProblem] = []
    for located in register.requests:
        spec = located.item
        where = f"requests[{spec.key}]"
        if spec.department not in departments:
            problems.append(DataFileProblem(register.file, located.line, f"{where}.department",
                                            f"unknown department {spec.department!r}"))
        if spec.requester not in people:
            problems.append(DataFileProblem(register.file, located.line, f"{where}.requester",
                                            f"unknown person {spec.requester!r}"))
        if spec.grant and spec.grant not in grants:
            problems.append(DataFileProblem(register.file, located.line, f"{where}.grant",
                                            f"unknown grant {spec.grant!r}"))
    if problems:
        raise DataFileError(problems)
    revised: list[int] = []
    events: list[NewEvent] = []
    for located in register.requests:
        outcome = _apply_one(session, located, departments=departments, people=people,
                             grants=grants, now=now, events=events, problems=problems,
                             file=register.file)
        if outcome == "created":
            report.created += 1
        elif outcome == "unchanged":
            report.unchanged += 1
        elif outcome is not None:
            report.updated += 1
            if outcome.startswith("revised:"):
                revised.append(int(outcome.split(":")[1]))
    if problems:
        raise DataFileError(problems)
    append_events(session, events, now=now)
    report.revised_pending_ids = tuple(revised)
    return report


def _apply_one(
    session: Session, located: Located[RequestSpec], *, departments: dict[str, int],
    people: dict[str, int], grants: dict[str, int], now: datetime, events: list[NewEvent],
    problems: list[DataFileProblem], file: str,
) -> str | None:
    spec = located.item
    content = content_of(spec)
    version = version_of(content)
    recurring = any(line.recurring for line in spec.lines) or bool(spec.recurring)
    values: dict[str, Any] = {
        "title": spec.title, "category": spec.category, "justification": spec.justification,
        "new_theme": spec.new_theme, "recurring": recurring, "amounts_note": spec.amounts_note,
        "department_id": departments[spec.department], "requester_id": people[spec.requester],
        "grant_id": grants.get(spec.grant) if spec.grant else None,
        "policy_name": spec.policy or "", "content_hash": fingerprint(spec),
        "content_snapshot": content, "updated_at": now,
    }
    existing = session.execute(
        select(BudgetRequest).where(col(BudgetRequest.key) == spec.key)).scalar_one_or_none()
    if existing is None:
        request = BudgetRequest(key=spec.key, version=version, state=RequestState.DRAFT,
                                created_at=now,
                                **values)
        session.add(request)
        session.flush()
        _write_lines(session, request.id or 0, spec)
        events.append(NewEvent("request.created", f"request:{spec.key}",
                               details={"version": version}))
        return "created"
    if existing.content_hash == values["content_hash"]:
        return "unchanged"
    new_version = version != existing.version
    if new_version and existing.state in TERMINAL_REQUEST_STATES:
        problems.append(DataFileProblem(
            file, located.line, f"requests[{spec.key}]",
            f"request is already {existing.state}; its amounts and text cannot change "
            "(file a new request with a new key)"))
        return None
    previous = existing.content_snapshot
    for name, value in values.items():
        setattr(existing, name, value)
    if new_version:
        existing.previous_snapshot = previous
        existing.version = version
        existing.version_number += 1
        session.execute(delete(RequestLine).where(col(RequestLine.request_id) == existing.id))
        _write_lines(session, existing.id or 0, spec)
    events.append(NewEvent("request.updated", f"request:{spec.key}",
                           details={"version": existing.version, "new_version": new_version}))
    if new_version and existing.state is RequestState.PENDING:
        return f"revised:{existing.id}"
    return "updated"


def _write_lines(session: Session, request_id: int, spec: RequestSpec) -> None:
    if spec.lines:
        session.execute(insert(RequestLine), [
            {"request_id": request_id, "position": i, "label": line.label, "year": line.year,
             "amount": line.amount, "amount_max": line.amount_max, "recurring": line.recurring}
            for i, line in enumerate(spec.lines)])
