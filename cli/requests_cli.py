"""`bevilling requests …`, `replies …` and `delegations …`: the approval side of the CLI."""

from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from cli.common import command_group, engine, fail, parse_day, print_json, settings

requests_app = command_group(help="Budget requests and their approval steps.", no_args_is_help=True)
replies_app = command_group(help="Inbound approval replies.", no_args_is_help=True)
delegations_app = command_group(help="Substitutes for absent approvers.", no_args_is_help=True)


@requests_app.command("submit")
def requests_submit(
    key: Annotated[str, typer.Argument(help="Request key, e.g. STS-2027.")],
) -> None:
    """Run the route-budget-request flow: record the steps and mail the first approvers."""
    from cli.stack import run_flow_command
    from flows.runtime import utc_now
    from workflow.commands import submit_request

    summary = run_flow_command(
        settings(), deployment="route-budget-request/route-budget-request",
        flow="flows.approvals:route_budget_request", parameters={"request_key": key},
        direct=lambda: submit_request(key, settings=settings(), engine=engine(), now=utc_now(),
                                      actor="bevilling requests submit"))
    typer.echo(
        f"{key} (version {summary['version']}): {summary['steps']} steps; "
        f"approval mail to {', '.join(summary['mailed_to'])}"
    )


@requests_app.command("show")
def requests_show(
    key: Annotated[str, typer.Argument(help="Request key.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the documented JSON.")] = False,
) -> None:
    """Show a request with its steps: approver, on-behalf-of, state, decision, channel, time."""
    from workflow.queries import request_document_of

    document = request_document_of(engine(), key)
    if document is None:
        fail(f"no budget request with key {key!r}", code=2)
    if as_json:
        print_json(document)
        return
    typer.echo(
        f"{document['key']}  {document['title']}\n  state {document['state']}, "
        f"version {document['version']}, requester {document['requester']}"
    )
    for step in document["steps"]:
        behalf = f" (on behalf of {step['on_behalf_of']})" if step["on_behalf_of"] else ""
        typer.echo(
            f"  [{step['version'][:6]}] {step['stage']:<15} {step['approver_email']}"
            f"{behalf}: {step['state']}"
            f"{' via ' + step['channel'] if step['channel'] else ''}"
            f"{' – ' + step['comment'] if step['comment'] else ''}"
        )
        if step["state"] == "pending" and step["note"].startswith("escalation exhausted"):
            typer.echo(f"      {step['note']} (admins told)")


@requests_app.command("list")
def requests_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List requests with state and yearly amounts."""
    from workflow.queries import request_documents

    rows = request_documents(engine())
    if as_json:
        print_json(rows)
        return
    for row in rows:
        typer.echo(f"{row['key']:<18} {row['state']:<9} {row['category']:<13} {row['title']}")
        yearly = row["yearly_amounts"]
        if yearly:
            typer.echo("  " + "; ".join(f"{year}: {_span(money)} kr."
                                        for year, money in sorted(yearly.items())))
        elif row.get("amounts_note"):
            typer.echo(f"  {row['amounts_note']}")


def _span(money: dict[str, str | None]) -> str:
    """`1.300.000` or `1.300.000–2.000.000` (Danish thousands separator, whole kroner)."""
    low = Decimal(money["amount"] or "0")
    high = Decimal(money["amount_max"] or money["amount"] or "0")
    text = f"{int(low):,}".replace(",", ".")
    return text if high == low else f"{text}–{int(high):,}".replace(",", ".")


@replies_app.command("ingest")
def replies_ingest(
    paths: Annotated[list[Path], typer.Argument(help=".eml files and/or Maildir folders.")],
) -> None:
    """Ingest replies through the same path as the SMTP receiver and the IMAP poller."""
    from flows.runtime import utc_now
    from workflow.context import token_secret
    from workflow.inbound import ingest_raw, read_sources

    current = settings()
    counts: dict[str, int] = {}
    try:
        sources = list(read_sources(paths))
    except (FileNotFoundError, OSError) as exc:
        fail(str(exc), code=2)
    secret = token_secret(current)  # once, and before any message is touched
    for name, raw in sources:
        result = ingest_raw(engine(), raw, source="file", settings=current, now=utc_now(),
                            secret=secret)
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
        typer.echo(
            f"{name}: {result.outcome}"
            f"{' (' + result.request_key + ')' if result.request_key else ''}"
            f"{' – ' + result.detail if result.detail else ''}"
        )
    typer.echo("; ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing to ingest")


@delegations_app.command("add")
def delegations_add(
    person: Annotated[str, typer.Argument(help="E-mail of the absent approver.")],
    substitute: Annotated[str, typer.Argument(help="E-mail of the substitute.")],
    starts: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD).")],
    ends: Annotated[str, typer.Option("--to", help="Last day, inclusive (YYYY-MM-DD).")],
) -> None:
    """Name a substitute for a date range; new steps in it go to the substitute."""
    first = parse_day(starts, option="--from")
    last = parse_day(ends, option="--to")
    if first is None or last is None or last < first:
        fail("--to must not be before --from", code=2)
    from flows.runtime import utc_now
    from workflow.delegations import add_delegation

    add_delegation(engine(), person=person, substitute=substitute, starts=first, ends=last,
                   now=utc_now())
    typer.echo(f"{substitute} substitutes for {person} from {first} to {last}")


@delegations_app.command("end")
def delegations_end(
    person: Annotated[str, typer.Argument(help="E-mail of the absent approver.")],
    substitute: Annotated[str, typer.Argument(help="E-mail of the substitute.")],
    last_day: Annotated[str, typer.Option("--last", help="Last day covered (YYYY-MM-DD).")],
) -> None:
    """End a delegation after `--last`; pending steps go back to the person, both are told."""
    day = parse_day(last_day, option="--last")
    if day is None:
        fail("--last is required", code=2)
    from flows.runtime import utc_now
    from workflow.delegations import end_delegation

    moves = end_delegation(engine(), person=person, substitute=substitute, last_day=day,
                           now=utc_now())
    typer.echo(f"{substitute} no longer substitutes for {person} after {day}; "
               f"{len(moves)} pending step(s) moved back")


@delegations_app.command("list")
def delegations_list(
    on: Annotated[str | None, typer.Option(help="Only those covering this day.")] = None,
) -> None:
    """List delegations."""
    from workflow.queries import delegation_rows

    day: date | None = parse_day(on, option="--on")
    for row in delegation_rows(engine(), on=day):
        typer.echo(f"{row['person']} → {row['substitute']}  {row['starts']} – {row['ends']}")


@requests_app.command("follow-up")
def requests_follow_up(
    as_of: Annotated[str | None, typer.Option(help="Run as of this day (YYYY-MM-DD, 09:00 in "
                                                   "Copenhagen); default now.")] = None,
) -> None:
    """Run the escalate-approvals flow: steps to today's holders, digests, then escalation."""
    from cli.stack import run_flow_command
    from flows.runtime import utc_now
    from workflow.commands import remind_and_escalate_now

    day = parse_day(as_of, option="--as-of")
    now = utc_now() if day is None else datetime.combine(
        day, time(9), tzinfo=ZoneInfo(settings().timezone)).astimezone(UTC)
    summary = run_flow_command(
        settings(), deployment="escalate-approvals/escalate-approvals",
        flow="flows.escalation:escalate_approvals",
        parameters={} if day is None else {"now": now.isoformat()},
        direct=lambda: remind_and_escalate_now(settings=settings(), engine=engine(), now=now))
    if summary.get("closed_day"):
        typer.echo("today is not a working day: nobody was reminded or escalated")
        return
    typer.echo(
        f"{summary['digests']} digest(s) for {summary['reminded_steps']} step(s); "
        f"escalated {len(summary['escalated'])}; moved {summary.get('moved', 0)} to a substitute"
    )
    for line in summary["escalated"]:
        typer.echo(f"  escalated {line}")
    for line in summary["not_escalated"]:
        typer.secho(f"  could not escalate {line}", fg=typer.colors.YELLOW, err=True)
