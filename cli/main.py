"""The `bevilling` command line."""

import asyncio
from contextlib import nullcontext
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select
from sqlmodel import Session, col

from cli import web_cli
from cli.common import engine, fail, parse_day, print_json, settings
from cli.inbound_cli import inbound_app
from cli.requests_cli import delegations_app, replies_app, requests_app
from config.closed_days import closed_days
from db.audit import verify_chain
from db.engine import transaction
from db.migrate import upgrade_to_head
from domain.approval_routing import RoutingError
from domain.approval_state import IllegalTransition
from domain.working_days import WorkingCalendar
from loading.register_file import read_register
from loading.yaml_lines import DataFileError
from models import Grant, Outbox, Person, Reminder
from workflow.register_load import apply_register
from workflow.request_load import apply_requests

app = typer.Typer(help="bevilling – grant deadlines and budget approvals by e-mail "
                       "(Aarhus Kommune, Borgmesterens Afdeling).", no_args_is_help=True)
grants_app = typer.Typer(help="The grant register.", no_args_is_help=True)
reminders_app = typer.Typer(help="The reminder ledger.", no_args_is_help=True)
outbox_app = typer.Typer(help="Outgoing mail.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(grants_app, name="grants")
app.add_typer(reminders_app, name="reminders")
app.add_typer(outbox_app, name="outbox")
app.add_typer(audit_app, name="audit")
app.add_typer(requests_app, name="requests")
app.add_typer(replies_app, name="replies")
app.add_typer(delegations_app, name="delegations")
app.command("web")(web_cli.web)
app.add_typer(inbound_app, name="inbound")


@app.command()
def init() -> None:
    """Create or upgrade the database schema (Alembic migrations to head)."""
    url = settings().database_url
    try:
        upgrade_to_head(url)
    except Exception as exc:  # report any driver/migration failure as a clear CLI error
        fail(f"cannot initialise the database at {url}: {exc}")
    typer.echo(f"database ready: {url}")


@app.command()
def load(
    file: Annotated[Path, typer.Argument(help="YAML (.yaml/.yml) or CSV register file.")],
) -> None:
    """Load departments, people and grants; all or nothing, and loading twice changes nothing."""
    if not file.exists():
        fail(f"{file}: no such file", code=2)
    try:
        register = read_register(file)
    except DataFileError as exc:
        fail(f"{len(exc.problems)} problem(s), nothing was loaded:\n{exc}", code=2)
    current = settings()
    ends = [g.item.end_date for g in register.grants] or [date(2025, 1, 1)]
    # Reminders reach up to ten years back; the expiry notice a few weeks past the end date.
    years = range(min(ends).year - 11, max(ends).year + 2)
    calendar = WorkingCalendar.of(closed_days(current, years=years))
    from flows.runtime import utc_now

    now = utc_now()
    total = len(register.grants)
    try:
        with transaction(engine()) as session:
            with (typer.progressbar(length=total, label="loading grants") if total > 1000
                  else nullcontext()) as bar:
                report = apply_register(session, register,
                                        default_offsets=current.reminder_offsets,
                                        calendar=calendar, now=now,
                                        progress=bar.update if bar is not None else None)
            requests = apply_requests(session, register, now=now)
            rerouted = reroute_revised(session, requests.revised_pending_ids)
    except DataFileError as exc:
        fail(f"{len(exc.problems)} problem(s), nothing was loaded:\n{exc}", code=2)
    except (RoutingError, IllegalTransition) as exc:
        fail(f"a revised request cannot be routed again, nothing was loaded: {exc}")
    typer.echo(
        f"{file}: {report.grants_created} grants created, {report.grants_updated} updated, "
        f"{report.grants_unchanged} unchanged; {report.people} people, "
        f"{report.departments} departments; reminders planned {report.reminders_planned}, "
        f"cancelled {report.reminders_cancelled}; requests {requests.created} created, "
        f"{requests.updated} updated, {requests.unchanged} unchanged")
    for line in rerouted:
        typer.echo(line)


def reroute_revised(session: Session, request_ids: tuple[int, ...]) -> list[str]:
    """Pending requests whose amounts or text changed are voided and routed again."""
    if not request_ids:
        return []
    from flows.runtime import utc_now
    from workflow.context import make_context
    from workflow.routing import resubmit_revised

    ctx = make_context(settings(), now=utc_now())
    lines = []
    for request_id in request_ids:
        result = resubmit_revised(session, request_id, ctx=ctx)
        lines.append(f"{result.request_key}: new version {result.version}, earlier decisions "
                     f"voided, routed again to {', '.join(result.mailed_to)}")
    return lines


@app.command()
def deadlines(
    as_of: Annotated[str | None, typer.Option(help="Check as of this day (YYYY-MM-DD); "
                                                   "default today in Copenhagen.")] = None,
) -> None:
    """Run the check-grant-deadlines flow: enqueue every reminder due (catching up missed days)."""
    day = parse_day(as_of, option="--as-of")
    from flows.deadlines import check_grant_deadlines

    summary = check_grant_deadlines(as_of=day)
    typer.echo(f"as of {summary['as_of']}: {summary['reminders']} reminders "
               f"({summary['late']} late, {summary['expired']} expiry notices), "
               f"{summary['mails']} mails enqueued, {summary['superseded']} superseded")


@outbox_app.command("deliver")
def outbox_deliver() -> None:
    """Run the deliver-outbox flow: send every due mail."""
    from flows.delivery import deliver_outbox

    summary = asyncio.run(deliver_outbox())
    typer.echo(f"sent {summary['sent']}, retry later {summary['retry']}, "
               f"failed {summary['failed']}")
    for failure in summary["failures"]:
        typer.secho(f"  failed #{failure['outbox id']} to {failure['to']}: {failure['error']}",
                    fg=typer.colors.RED, err=True)
    if summary["failed"]:
        raise typer.Exit(1)


@outbox_app.command("list")
def outbox_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    state: Annotated[str | None, typer.Option(help="Only rows in this state.")] = None,
) -> None:
    """List outbox rows."""
    with Session(engine()) as session:
        query = select(Outbox).order_by(col(Outbox.id))
        if state:
            query = query.where(col(Outbox.state) == state)
        rows = [{"id": o.id, "key": o.key, "to": o.recipients, "subject": o.subject,
                 "state": o.state.value, "attempts": o.attempts, "message_id": o.message_id,
                 "last_error": o.last_error} for o in session.execute(query).scalars()]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        typer.echo(f"#{row['id']:<5} {row['state']:<8} {','.join(row['to']):<40} {row['subject']}")


@grants_app.command("list")
def grants_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List grants with end date, status and owner."""
    with Session(engine()) as session:
        rows = session.execute(
            select(Grant, col(Person.email)).join(Person, col(Person.id) == col(Grant.owner_id))
            .order_by(col(Grant.end_date), col(Grant.key))).all()
        data = [{"key": g.key, "title": g.title, "status": g.status.value,
                 "start_date": g.start_date, "end_date": g.end_date, "owner": email,
                 "funding_source": g.funding_source} for g, email in rows]
    if as_json:
        print_json(data)
        return
    for row in data:
        typer.echo(f"{row['key']:<18} {row['end_date']}  {row['status']:<9} {row['title']}")


@reminders_app.command("list")
def reminders_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    state: Annotated[
        str | None, typer.Option(help="planned, sent, late-sent or cancelled.")] = None,
) -> None:
    """List the reminder ledger with the delivery state of each sent reminder."""
    with Session(engine()) as session:
        query = (select(Reminder, col(Grant.key), col(Outbox.state))
                 .join(Grant, col(Grant.id) == col(Reminder.grant_id))
                 .outerjoin(Outbox, col(Outbox.id) == col(Reminder.outbox_id))
                 .order_by(col(Reminder.due_date), col(Grant.key),
                           col(Reminder.offset_days).desc()))
        if state:
            query = query.where(col(Reminder.state) == state)
        data = [{"grant": key, "kind": r.kind.value, "offset_days": r.offset_days,
                 "end_date": r.end_date, "due_date": r.due_date, "state": r.state.value,
                 "handled_on": r.handled_on, "delivery": mail_state.value if mail_state else None,
                 "note": r.note} for r, key, mail_state in session.execute(query).all()]
    if as_json:
        print_json(data)
        return
    for row in data:
        typer.echo(f"{row['due_date']}  {row['grant']:<16} {row['kind']:<8} "
                   f"{row['offset_days']:>4}d  {row['state']:<9} {row['delivery'] or ''}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit hash chain; exit 1 if any event was altered or deleted."""
    with Session(engine()) as session:
        report = verify_chain(session)
    if report.ok:
        typer.echo(f"audit chain intact: {report.events} events")
        return
    for problem in report.problems:
        typer.secho(problem, fg=typer.colors.RED, err=True)
    fail(f"audit chain BROKEN: {len(report.problems)} problem(s) in {report.events} events")


def run() -> None:
    """Entry point: the Typer app, with database and configuration errors made readable."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from workflow.context import ConfigurationError

    try:
        app()
    except (OperationalError, ProgrammingError) as exc:
        message = str(exc.orig) if exc.orig is not None else str(exc)
        hint = (" — is the database initialised? run `bevilling init`"
                if "no such table" in message or "does not exist" in message else "")
        typer.secho(f"database error: {message.splitlines()[0]}{hint}", fg=typer.colors.RED,
                    err=True)
        raise SystemExit(1) from None
    except ConfigurationError as exc:
        typer.secho(f"configuration error: {exc}", fg=typer.colors.RED, err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    run()
