"""`bevilling web`: serve the pages behind the signed links in approval mails."""

from typing import Annotated

import typer

from cli.common import command_group, settings

app = command_group(help="The approvers' web pages.")


@app.command("web")
def web(
    host: Annotated[str, typer.Option(help="Interface to listen on; put a TLS proxy in front "
                                           "for anything but loopback.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
) -> None:
    """Serve the confirm pages of approval links (set BEVILLING_WEB_BASE_URL to their address)."""
    from web.server import serve
    from workflow.events import prepare_events

    if prepare_events():
        typer.echo("decisions emit Prefect events: deliver-outbox starts at once", err=True)
    serve(settings(), host=host, port=port)
