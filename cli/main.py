"""The `bevilling` command line.


Each command imports what it needs when it runs, so `bevilling --help` answers at once.
"""

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from cli import web_cli
from cli.common import (
    ErrorReportingGroup,
    command_group,
    engine,
    fail,
    parse_day,
    print_json,
    settings,
)
from cli.inbound_cli import inbound_app
from cli.requests_cli import delegations_app, replies_app, requests_app

app = command_group(cls=ErrorReportingGroup,
                  help="bevilling – grant deadlines and budget approvals by e-mail "
                       "(Aarhus Kommune, Borgmesterens Afdeling).", no_args_is_help=True)
grants_app = command_group(help="The grant register.", no_args_is_help=True)
reminders_app = command_group(help="The reminder ledger.", no_args_is_help=True)
outbox_app = command_group(help="Outgoing mail.", no_args_is_help=True)
audit_app = command_group(help="The hash-chained audit log.", no_args_is_help=True)
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
    from db.migrate import upgrade_to_head

    url = settings().database_url
    try:
        upgrade_to_head(url)
    except Exception as exc:  # report any driver/migration failure as a clear CLI error
        fail(f"cannot initialise the database at {url}: {exc}")
    typer.echo(f"database ready: {url}")
    from config.settings import create_local_token_secret

    current = settings()
    existed = current.token_secret_file.exists()
    path = create_local_token_secret(current)
    if path is not None:
        typer.echo(f"link-signing key: {path} ({'kept' if existed else 'created, mode 600'})")


@app.command()
def load(
    file: Annotated[Path, typer.Argument(help="YAML (.yaml/.yml) or CSV register file.")],
) -> None:
    """Load departments, people and grants; all or nothing, and loading twice changes nothing."""
    if not file.exists():
        fail(f"{file}: no such file", code=2)
    from flows.runtime import utc_now
    from loading.register_file import read_register
    from loading.yaml_lines import DataFileError
    from workflow.register_load import load_register

    try:
        register = read_register(file)
        total = len(register.grants)
        with (typer.progressbar(length=total, label="loading grants") if total > 1000
              else nullcontext()) as bar:
            loaded = load_register(engine(), register, settings=settings(), now=utc_now(),
                                   progress=bar.update if bar is not None else None)
    except DataFileError as exc:
        fail(f"{len(exc.problems)} problem(s), nothing was loaded:\n{exc}", code=exc.exit_code)
    report, requests = loaded.register, loaded.requests
    typer.echo(
        f"{file}: {report.grants_created} grants created, {report.grants_updated} updated, "
        f"{report.grants_unchanged} unchanged; {report.people} people, "
        f"{report.departments} departments; reminders planned {report.reminders_planned}, "
        f"cancelled {report.reminders_cancelled}; requests {requests.created} created, "
        f"{requests.updated} updated, {requests.unchanged} unchanged")
    for line in loaded.rerouted:
        typer.echo(line)


@app.command()
def deadlines(
    as_of: Annotated[str | None, typer.Option(help="Check as of this day (YYYY-MM-DD); "
                                                   "default today in Copenhagen.")] = None,
) -> None:
    """Run the check-grant-deadlines flow: enqueue every reminder due (catching up missed days)."""
    from cli.stack import run_flow_command
    from flows.runtime import local_today, utc_now
    from workflow.deadlines import enqueue_due

    day = parse_day(as_of, option="--as-of")
    summary = run_flow_command(
        settings(), deployment="check-grant-deadlines/check-grant-deadlines",
        flow="flows.deadlines:check_grant_deadlines", parameters={"as_of": day},
        direct=lambda: enqueue_due(day or local_today(), now=utc_now()))
    typer.echo(f"as of {summary['as_of']}: {summary['reminders']} reminders "
               f"({summary['late']} late, {summary['expired']} expiry notices), "
               f"{summary['mails']} mails enqueued, {summary['superseded']} superseded")


@outbox_app.command("deliver")
def outbox_deliver() -> None:
    """Run the deliver-outbox flow: send every due mail."""
    import asyncio

    from cli.stack import run_flow_command
    from workflow.delivery import drain_outbox

    summary = run_flow_command(
        settings(), deployment="deliver-outbox/deliver-outbox",
        flow="flows.delivery:deliver_outbox", parameters={},
        direct=lambda: asyncio.run(drain_outbox()))
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
    from workflow.queries import outbox_rows

    rows = outbox_rows(engine(), state=state)
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
    from workflow.queries import grant_rows

    data = grant_rows(engine())
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
    from workflow.queries import reminder_rows

    data = reminder_rows(engine(), state=state)
    if as_json:
        print_json(data)
        return
    for row in data:
        typer.echo(f"{row['due_date']}  {row['grant']:<16} {row['kind']:<8} "
                   f"{row['offset_days']:>4}d  {row['state']:<9} {row['delivery'] or ''}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit hash chain; exit 1 if any event was altered or deleted."""
    from workflow.queries import audit_report

    report = audit_report(engine())
    for line in report.checked:
        typer.echo(f"checked: {line}")
    if report.ok:
        typer.echo(f"audit chain intact: {report.events} events")
        return
    for problem in report.problems:
        typer.secho(problem, fg=typer.colors.RED, err=True)
    fail(f"audit chain BROKEN: {len(report.problems)} problem(s) in {report.events} events")


@audit_app.command("seal")
def audit_seal() -> None:
    """Append one keyed event: after setting an audit key, anchors the unkeyed events before it."""
    from flows.runtime import utc_now
    from workflow.queries import seal_audit

    seal_audit(engine(), now=utc_now())
    typer.echo("audit chain sealed with the configured key")


def run() -> None:
    """Entry point: the Typer app (its root group reports errors: `cli.common.report`)."""
    app()


if __name__ == "__main__":
    run()
