"""aiosmtpd's SMTP protocol with bounds checked on the bytes as they arrive.

aiosmtpd 1.4.6 answers an over-long line inside DATA with 500, but only after the line ended, and
it keeps the line's fragments until then: three connections sending 50 MB without a line break
took `inbound serve` from 93 MB to 240 MB. It also keeps every DATA line as its own bytearray
(about 60 bytes each before the content), so a message of short lines costs far more than its
size. Both are checked here in `data_received` (the asyncio protocol's entry point, before
aiosmtpd's StreamReader buffers anything), and the connection is closed at once:

- a line longer than `line_length_limit` (RFC 5321: 1000 octets with CRLF; aiosmtpd's 1001) →
  `500 5.5.2`, nothing of it kept;
- more than `max_lines` lines since the last end of DATA → `552 5.3.4`;
- more than `max_connections` open connections → `421 4.7.0` at connect.

Per connection that bounds memory by `data_size_limit` plus `max_lines` line objects.
"""

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP

log = logging.getLogger(__name__)

LINE_TOO_LONG = b"500 5.5.2 line too long (RFC 5321 4.5.3.1.6), closing\r\n"
TOO_MANY_LINES = b"552 5.3.4 too many lines in one message, closing\r\n"
TOO_MANY_CONNECTIONS = b"421 4.7.0 too many connections, try again later\r\n"
_END_OF_DATA = b"\r\n.\r\n"


@dataclass
class ConnectionCount:
    """The receiver's open connections, shared by every protocol instance (one event loop)."""

    open: int = 0


class BoundedSMTP(SMTP):
    """SMTP that refuses over-long lines, line floods and connection floods as bytes arrive."""

    def __init__(self, handler: Any, *, connections: ConnectionCount, max_connections: int,
                 max_lines: int, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._bound_connections = connections
        self._bound_max_connections = max_connections
        self._bound_max_lines = max_lines
        self._bound_run = 0  # bytes since the last line break
        self._bound_lines = 0  # lines since the last end of DATA
        self._bound_closed = False
        self._bound_counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Count the connection; over the limit, answer 421 and close before greeting."""
        if self._bound_connections.open >= self._bound_max_connections:
            self._bound_closed = True
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(TOO_MANY_CONNECTIONS)
            transport.close()
            return
        self._bound_connections.open += 1
        self._bound_counted = True
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        """Uncount the connection."""
        if self._bound_counted:
            self._bound_counted = False
            self._bound_connections.open -= 1
        if not self._bound_closed or self.transport is not None:
            super().connection_lost(error)

    def _refuse(self, answer: bytes, reason: str) -> None:
        self._bound_closed = True
        log.info("closing %s: %s", getattr(self.session, "peer", "?"), reason)
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(answer)
        if transport is not None:
            transport.close()

    def data_received(self, data: bytes) -> None:
        """Check line length and count before aiosmtpd's reader sees (and buffers) the bytes."""
        if self._bound_closed:
            return
        limit = self.line_length_limit
        last_break = data.rfind(b"\n")
        if last_break < 0:
            self._bound_run += len(data)
            if self._bound_run > limit:
                self._refuse(LINE_TOO_LONG, f"line over {limit} bytes")
                return
        else:
            first_break = data.find(b"\n")
            longest = self._bound_run + first_break + 1
            if longest <= limit and last_break != first_break:
                # Any line inside the chunk: split only when the chunk could hold a long one.
                longest = max(len(line) + 1 for line in data[first_break + 1:last_break]
                              .split(b"\n"))
            if longest > limit:
                self._refuse(LINE_TOO_LONG, f"line over {limit} bytes")
                return
            self._bound_run = len(data) - last_break - 1
            if _END_OF_DATA in data:
                self._bound_lines = 0
            else:
                self._bound_lines += data.count(b"\n")
                if self._bound_lines > self._bound_max_lines:
                    self._refuse(TOO_MANY_LINES, f"over {self._bound_max_lines} lines")
                    return
        super().data_received(data)
