"""`bevilling inbound …`: the SMTP receiver for approval replies and bounces."""

import signal
import threading
from datetime import UTC, datetime
from typing import Annotated

import typer

from cli.common import command_group, engine, fail, settings

inbound_app = command_group(help="Receive approval replies and bounces over SMTP.",
                          no_args_is_help=True)


@inbound_app.command("serve")
def inbound_serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default; put "
                                           "the MTA that relays to us in front).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.", min=1, max=65535)] = 2525,
    timeout: Annotated[float, typer.Option(help="Close a connection idle this many seconds.",
                                           min=1.0)] = 60.0,
) -> None:
    """Accept mail for approvals+<token>@ and bounce+<id>@ on the mail domain until SIGINT/SIGTERM.

    Each message is ingested (decided, quarantined or dropped as a duplicate) and committed before
    the 250 reply; on any failure the sender gets 451 and retries later.
    """
    from receiver.smtp_server import start_inbound_server
    from workflow.context import make_context

    current = settings()
    from workflow.events import prepare_events

    make_context(current, now=datetime.now(UTC))  # fail now, not at the first reply
    prepare_events()
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        controller = start_inbound_server(engine(), current, host=host, port=port,
                                          timeout_seconds=timeout)
    except (OSError, RuntimeError) as exc:
        fail(f"cannot listen on {host}:{port}: {exc}")
    try:
        typer.echo(f"listening on {host}:{port} for approvals+<token>@{current.mail_domain} and "
                   f"bounce+<id>@{current.mail_domain} (max {current.inbound_max_bytes} bytes); "
                   "Ctrl-C stops", err=False)
        while not stop.wait(1.0):
            pass
    finally:
        controller.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    typer.echo("stopped")
