"""`bevilling inbound …`: the SMTP receiver for approval replies and bounces."""

import re
import signal
import smtplib
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from cli.common import command_group, engine, fail, settings

# Raw bytes of quarantined mail older than BEVILLING_INBOUND_RAW_RETENTION_DAYS are dropped.
PRUNE_EVERY_SECONDS = 3600.0
LOCAL_MAILDIR = Path(__file__).resolve().parents[1] / "var" / "mail"  # `make run`'s sink

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
    from workflow.inbound import prune_raw_messages

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
        pruned_at = 0.0
        while not stop.wait(1.0):
            if time.monotonic() - pruned_at >= PRUNE_EVERY_SECONDS:  # and once at the start
                pruned_at = time.monotonic()
                prune_raw_messages(engine(), settings=current, now=datetime.now(UTC))
    finally:
        controller.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    typer.echo("stopped")


@inbound_app.command("answer")
def inbound_answer(
    words: Annotated[list[str] | None, typer.Argument(
        help="The reply's first line: GODKEND or AFVIS, then an optional comment.")] = None,
    to: Annotated[str | None, typer.Option(
        help="Answer the newest approval mail sent to this address (default: the newest).")] = None,
    maildir: Annotated[Path, typer.Option(help="The local SMTP sink's Maildir.")] = LOCAL_MAILDIR,
    host: Annotated[str, typer.Option(help="The receiver (`bevilling inbound serve`).")] =
        "127.0.0.1",
    port: Annotated[int, typer.Option(help="The receiver's port.", min=1, max=65535)] = 2525,
    link: Annotated[bool, typer.Option(
        "--link", help="Only print the mail's confirm link, to answer in the browser.")] = False,
) -> None:
    """For trying the loop locally (`make run`): reply to an approval mail from the sink.

    The reply goes from the approver's address to the mail's Reply-To through the SMTP receiver,
    exactly like a reply from a mail client; `--link` prints the confirm link instead.
    """
    from email import policy
    from email.message import EmailMessage
    from email.parser import BytesParser
    from email.utils import make_msgid

    candidates = sorted((p for sub in ("new", "cur") if (maildir / sub).is_dir()
                         for p in (maildir / sub).iterdir()),
                        key=lambda p: p.stat().st_mtime, reverse=True)
    original: EmailMessage | None = None
    for path in candidates:
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        reply_to = str(message.get("Reply-To", ""))
        if "approvals+" in reply_to and (to is None or to.lower() in str(message["To"]).lower()):
            original = message
            break
    if original is None:
        fail(f"no approval mail{' to ' + to if to else ''} in {maildir}", code=4)
    body = original.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    if link:
        found = re.search(r"https?://\S+/confirm/\S+", text)
        if found is None:
            fail("the mail holds no confirm link", code=4)
        typer.echo(found.group(0))
        return
    first_line = " ".join(words or ["GODKEND"])
    reply = EmailMessage()
    reply["From"] = str(original["To"])
    reply["To"] = str(original["Reply-To"])
    reply["Subject"] = f"SV: {original['Subject']}"
    reply["Message-ID"] = make_msgid(domain="local.test")
    reply["In-Reply-To"] = str(original["Message-ID"])
    reply["References"] = str(original["Message-ID"])
    reply.set_content(f"{first_line}\n")
    with smtplib.SMTP(host, port, timeout=30) as smtp:
        smtp.send_message(reply)
    typer.echo(f"answered {first_line!r} from {reply['From']} to “{original['Subject']}” "
               f"through {host}:{port}")
