"""Write a validated register file to the database and keep each grant's reminder plan current."""

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlmodel import Session, col

from config.closed_days import closed_days
from config.settings import Settings
from db.audit import NewEvent, append_events
from db.engine import transaction
from domain.reminders import (
    LedgerRow,
    PlanKind,
    PlannedReminder,
    ReminderState,
    plan_reminders,
    replan,
)
from domain.working_days import WorkingCalendar
from loading.register_file import Located, RegisterFile
from loading.register_schema import GrantSpec
from loading.yaml_lines import DataFileError, DataFileProblem
from models.register import Department, Grant, GrantAmount, GrantRecipient, GrantStatus, Person
from models.reminders import Reminder, ReminderKind
from workflow.context import make_context
from workflow.request_load import RequestLoadReport, apply_requests
from workflow.routing import resubmit_revised

CHUNK = 500


@dataclass
class LoadReport:
    """What a load changed."""

    departments: int = 0
    people: int = 0
    grants_created: int = 0
    grants_updated: int = 0
    grants_unchanged: int = 0
    reminders_planned: int = 0
    reminders_cancelled: int = 0
    changed_keys: list[str] = field(default_factory=list)


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def grant_fingerprint(spec: GrantSpec, offsets: Sequence[int]) -> str:
    """Hash of everything that defines a grant and its plan: same hash, nothing to do."""
    payload = {"spec": spec.model_dump(mode="json"), "offsets": list(offsets)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _upsert_departments(session: Session, register: RegisterFile) -> dict[str, int]:
    for located in register.departments:
        spec = located.item
        existing = session.execute(
            select(Department).where(col(Department.key) == spec.key)).scalar()
        if existing is None:
            session.add(Department(key=spec.key, name=spec.name))
        elif existing.name != spec.name:
            existing.name = spec.name
    session.flush()
    return {key: id_ for id_, key in session.execute(
        select(col(Department.id), col(Department.key))).all()}


def _upsert_people(
    session: Session, register: RegisterFile, departments: dict[str, int]
) -> dict[str, int]:
    for located in register.people:
        spec = located.item
        person = session.execute(select(Person).where(col(Person.email) == spec.email)).scalar()
        values: dict[str, Any] = {"name": spec.name, "role": spec.role, "title": spec.title,
                  "language": spec.language,
                  "department_id": departments.get(spec.department) if spec.department else None}
        if person is None:
            session.add(Person(email=spec.email, **values))
        else:
            for name, value in values.items():
                setattr(person, name, value)
    session.flush()
    people = {email: id_ for id_, email in session.execute(
        select(col(Person.id), col(Person.email))).all()}
    for located in register.people:
        if located.item.manager:
            session.execute(update(Person).where(col(Person.email) == located.item.email)
                            .values(manager_id=people[located.item.manager]))
    return people


def check_references(
    session: Session, register: RegisterFile
) -> None:
    """Every department, owner, recipient and manager must exist in the file or the database."""
    departments = {d.item.key for d in register.departments}
    departments |= set(session.execute(select(col(Department.key))).scalars())
    people = {p.item.email for p in register.people}
    wanted = {g.item.owner for g in register.grants} | {
        r for g in register.grants for r in g.item.recipients
    } | {p.item.manager for p in register.people if p.item.manager}
    missing = wanted - people
    for chunk in _chunks(sorted(missing)):
        people |= set(session.execute(
            select(col(Person.email)).where(col(Person.email).in_(chunk))).scalars())
    problems: list[DataFileProblem] = []
    file = register.file
    for located in register.people:
        spec = located.item
        if spec.department and spec.department not in departments:
            problems.append(DataFileProblem(file, located.line, "department",
                                            f"unknown department {spec.department!r}"))
        if spec.manager and spec.manager not in people:
            problems.append(DataFileProblem(file, located.line, "manager",
                                            f"unknown person {spec.manager!r}"))
    for grant in register.grants:
        grant_spec = grant.item
        if grant_spec.department not in departments:
            problems.append(DataFileProblem(file, grant.line,
                                            f"grants[{grant_spec.key}].department",
                                            f"unknown department {grant_spec.department!r}"))
        for email in (grant_spec.owner, *grant_spec.recipients):
            if email not in people:
                problems.append(DataFileProblem(file, grant.line, f"grants[{grant_spec.key}]",
                                                f"unknown person {email!r}"))
    if problems:
        raise DataFileError(problems)


def _ledger_rows(session: Session, grant_id: int) -> list[LedgerRow]:
    rows = session.execute(select(Reminder).where(col(Reminder.grant_id) == grant_id)).scalars()
    return [LedgerRow(r.id or 0, PlanKind(r.kind.value), r.offset_days, r.end_date, r.due_date,
                      r.state == ReminderState.PLANNED, r.state == ReminderState.CANCELLED)
            for r in rows]


def desired_plan(
    spec: GrantSpec, *, offsets: Sequence[int], calendar: WorkingCalendar
) -> list[PlannedReminder]:
    """The reminders a grant should have: none once a continuation or a lapse was decided."""
    if spec.status != GrantStatus.ACTIVE.value:
        return []
    return plan_reminders(spec.end_date, offsets=offsets, calendar=calendar)


def apply_plan(
    session: Session, grant_id: int, desired: list[PlannedReminder], *, now: datetime,
    is_new: bool,
) -> tuple[int, int]:
    """Insert, reactivate and cancel ledger rows; returns (planned, cancelled)."""
    existing = [] if is_new else _ledger_rows(session, grant_id)
    change = replan(existing, desired)
    if change.insert:
        session.execute(insert(Reminder), [
            {"grant_id": grant_id, "kind": ReminderKind(p.kind.value), "offset_days": p.offset_days,
             "end_date": p.end_date, "due_date": p.due_date, "state": ReminderState.PLANNED,
             "created_at": now, "note": ""} for p in change.insert])
    for reminder_id, plan in change.reactivate:
        session.execute(update(Reminder).where(col(Reminder.id) == reminder_id).values(
            state=ReminderState.PLANNED, due_date=plan.due_date, note="replanned"))
    if change.cancel:
        session.execute(update(Reminder).where(col(Reminder.id).in_(change.cancel))
                        .values(state=ReminderState.CANCELLED, note="plan changed"))
    return len(change.insert) + len(change.reactivate), len(change.cancel)


def apply_register(
    session: Session,
    register: RegisterFile,
    *,
    default_offsets: Sequence[int],
    calendar: WorkingCalendar,
    now: datetime,
    progress: Callable[[int], None] | None = None,
) -> LoadReport:
    """Upsert everything in `register` in the caller's transaction (all or nothing)."""
    check_references(session, register)
    report = LoadReport(departments=len(register.departments), people=len(register.people))
    departments = _upsert_departments(session, register)
    people = _upsert_people(session, register, departments)
    events: list[NewEvent] = []
    for chunk in _chunks(register.grants):
        keys = [g.item.key for g in chunk]
        existing = {g.key: g for g in session.execute(
            select(Grant).where(col(Grant.key).in_(keys))).scalars()}
        for located in chunk:
            _apply_grant(session, located, existing.get(located.item.key), people=people,
                         departments=departments, default_offsets=default_offsets,
                         calendar=calendar, now=now, report=report, events=events)
        if progress:
            progress(len(chunk))
    append_events(session, events, now=now)
    return report


def _apply_grant(
    session: Session, located: Located[GrantSpec], grant: Grant | None, *,
    people: dict[str, int], departments: dict[str, int], default_offsets: Sequence[int],
    calendar: WorkingCalendar, now: datetime, report: LoadReport, events: list[NewEvent],
) -> None:
    spec = located.item
    offsets = spec.reminder_offsets or tuple(default_offsets)
    fingerprint = grant_fingerprint(spec, offsets)
    if grant is not None and grant.content_hash == fingerprint:
        report.grants_unchanged += 1
        return
    values: dict[str, Any] = {
        "title": spec.title, "funding_source": spec.funding_source, "start_date": spec.start_date,
        "end_date": spec.end_date, "notes": spec.notes, "status": GrantStatus(spec.status),
        "department_id": departments[spec.department], "owner_id": people[spec.owner],
        "reminder_offsets": list(spec.reminder_offsets) if spec.reminder_offsets else None,
        "content_hash": fingerprint, "updated_at": now,
    }
    is_new = grant is None
    if grant is None:
        grant = Grant(key=spec.key, created_at=now, **values)
        session.add(grant)
        report.grants_created += 1
        old_end = None
    else:
        old_end = grant.end_date
        for name, value in values.items():
            setattr(grant, name, value)
        report.grants_updated += 1
        session.execute(delete(GrantAmount).where(col(GrantAmount.grant_id) == grant.id))
        session.execute(delete(GrantRecipient).where(col(GrantRecipient.grant_id) == grant.id))
    session.flush()
    grant_id = grant.id or 0
    if spec.amounts:
        session.execute(insert(GrantAmount), [
            {"grant_id": grant_id, "position": index, **line.model_dump()}
            for index, line in enumerate(spec.amounts)])
    recipients = [people[email] for email in spec.recipients if email != spec.owner]
    if recipients:
        session.execute(insert(GrantRecipient),
                        [{"grant_id": grant_id, "person_id": pid} for pid in recipients])
    planned, cancelled = apply_plan(session, grant_id, desired_plan(
        spec, offsets=offsets, calendar=calendar), now=now, is_new=is_new)
    report.reminders_planned += planned
    report.reminders_cancelled += cancelled
    report.changed_keys.append(spec.key)
    details: dict[str, object] = {"end_date": spec.end_date.isoformat(), "status": spec.status,
                                  "reminders_planned": planned, "reminders_cancelled": cancelled}
    if old_end is not None and old_end != spec.end_date:
        details["previous_end_date"] = old_end.isoformat()
    events.append(NewEvent("grant.created" if is_new else "grant.updated", f"grant:{spec.key}",
                           details=details))


@dataclass(frozen=True)
class RegisterLoad:
    """What `load_register` did: the register part, the requests part, the re-routed requests."""

    register: LoadReport
    requests: RequestLoadReport
    rerouted: list[str]


def load_register(engine: Engine, register: RegisterFile, *, settings: Settings, now: datetime,
                  progress: Callable[[int], None] | None = None) -> RegisterLoad:
    """Load a register file in one transaction (all or nothing); revised requests go out again."""
    ends = [g.item.end_date for g in register.grants] or [date(2025, 1, 1)]
    # Reminders reach up to ten years back; the expiry notice a few weeks past the end date.
    years = range(min(ends).year - 11, max(ends).year + 2)
    calendar = WorkingCalendar.of(closed_days(settings, years=years))
    with transaction(engine) as session:
        report = apply_register(session, register, default_offsets=settings.reminder_offsets,
                                calendar=calendar, now=now, progress=progress)
        requests = apply_requests(session, register, now=now)
        rerouted = reroute_revised(session, requests.revised_pending_ids, settings=settings,
                                   now=now)
    return RegisterLoad(report, requests, rerouted)


def reroute_revised(session: Session, request_ids: tuple[int, ...], *, settings: Settings,
                    now: datetime) -> list[str]:
    """Pending requests whose amounts or text changed are voided and routed again."""
    if not request_ids:
        return []
    ctx = make_context(settings, now=now)
    lines = []
    for request_id in request_ids:
        result = resubmit_revised(session, request_id, ctx=ctx)
        lines.append(f"{result.request_key}: new version {result.version}, earlier decisions "
                     f"voided, routed again to {', '.join(result.mailed_to)}")
    return lines
