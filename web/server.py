"""Running the web app under uvicorn, with confirm links kept out of the access log."""

import logging
import re

import uvicorn

from config.settings import Settings
from web.app import create_app

CONFIRM_PATH = re.compile(r"/confirm/[^\s?\"]+")


class RedactConfirmLinks(logging.Filter):
    """Replace the signed part of /confirm/… paths in log records: a link is a credential."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact string arguments and the message; never drops a record."""
        if isinstance(record.args, tuple):
            record.args = tuple(CONFIRM_PATH.sub("/confirm/[redacted]", arg)
                                if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = CONFIRM_PATH.sub("/confirm/[redacted]", record.msg)
        return True


def server(settings: Settings | None = None, *, host: str, port: int) -> uvicorn.Server:
    """A configured uvicorn server for the app (not started)."""
    config = uvicorn.Config(create_app(settings), host=host, port=port, proxy_headers=False,
                            server_header=False, log_level="info")
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addFilter(RedactConfirmLinks())
    return uvicorn.Server(config)


def serve(settings: Settings | None = None, *, host: str, port: int) -> None:
    """Serve until interrupted."""
    server(settings, host=host, port=port).run()
