"""IMAP side of inbound mail: fetch unprocessed messages by UID, then move them out of the inbox.

One `ImapInbox` is one connection, opened and closed by `async with`; nothing is kept at module
level, because Prefect tasks may run in different event loops.

Exceptions::

    ImapError                  .command (what we sent), .response (what the server said)
    ├── ImapTransientError     refused or lost connection, timeouts, NO [UNAVAILABLE]/[INUSE]
    └── ImapPermanentError     failed login, NO/BAD, TLS failures, replies we cannot read
"""

import asyncio
import base64
import logging
import re
import ssl
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple

import aioimaplib

from domain.errors import BevillingError

log = logging.getLogger(__name__)

_MAX_UID = 2**32 - 1
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]", re.IGNORECASE)
_FETCH_START = re.compile(rb"\d+ FETCH \(", re.IGNORECASE)
_FETCH_UID = re.compile(rb"\bUID (\d+)", re.IGNORECASE)
_RESPONSE_CODE = re.compile(rb"^\[([A-Za-z-]+)")
# RFC 5530: these codes mean "try again later", unlike every other NO.
_TRANSIENT_CODES = frozenset({b"UNAVAILABLE", b"INUSE"})
_READY_STATES = frozenset({"NONAUTH", "AUTH", "SELECTED"})


@dataclass(frozen=True)
class ImapConfig:
    """Where the inbound mailbox lives and which folders handled mail goes to."""

    host: str
    port: int
    username: str
    password: str
    use_ssl: bool = False
    mailbox: str = "INBOX"
    processed_mailbox: str = "Processed"
    quarantine_mailbox: str = "Quarantine"
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class FetchedMessage:
    """One message as stored on the server, with the UID that names it in this UIDVALIDITY."""

    uid: int
    uidvalidity: int
    raw: bytes


class ImapError(BevillingError):
    """An IMAP step failed; `.command` names it and `.response` is the server's words, if any."""

    def __init__(self, message: str, *, command: str, response: str | None = None) -> None:
        super().__init__(message)
        self.command = command
        self.response = response


class ImapTransientError(ImapError):
    """The connection failed or timed out, or the server asked us to come back later."""


class ImapPermanentError(ImapError):
    """The server refused the login or the command; retrying the same thing will not help."""


class _Reply(NamedTuple):
    result: str
    lines: list[bytes | bytearray]  # bytearray: literal data


class ImapInbox:
    """An IMAP connection with `config.mailbox` selected, opened and closed by `async with`."""

    def __init__(self, config: ImapConfig) -> None:
        self._config = config
        self._client: Any = None
        self._lost = asyncio.Event()
        self._uidvalidity: int | None = None

    @property
    def uidvalidity(self) -> int:
        """UIDVALIDITY of the mailbox as selected; a change voids every UID saved before it."""
        if self._uidvalidity is None:
            raise RuntimeError("ImapInbox has not been opened; use it in `async with`")
        return self._uidvalidity

    async def __aenter__(self) -> "ImapInbox":
        """Connect, log in, create the processed and quarantine folders if missing, select."""
        config = self._config
        self._lost = asyncio.Event()
        self._client = aioimaplib.IMAP4(
            host=config.host,
            port=config.port,
            timeout=config.timeout_seconds,
            conn_lost_cb=self._on_connection_lost,
            ssl_context=ssl.create_default_context() if config.use_ssl else None,
        )
        try:
            await self._run("CONNECT", self._client.wait_hello_from_server())
            await self._checked("LOGIN", self._client.login(config.username, config.password))
            # aioimaplib splits the LOGIN reply text into capabilities, bracket and all
            # ("MOVE]"), so ask for a clean list.
            await self._run("CAPABILITY", self._client.protocol.capability())
            for folder in (config.processed_mailbox, config.quarantine_mailbox):
                await self._ensure_folder(folder)
            reply = await self._checked("SELECT", self._client.select(_mailbox_arg(config.mailbox)))
            self._uidvalidity = _parse_uidvalidity(reply)
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Log out and close the connection; a failed logout is logged, not raised."""
        await self._close()

    async def fetch_batch(self, *, after_uid: int, limit: int) -> list[FetchedMessage]:
        """Up to `limit` messages with UID > `after_uid`, lowest UID first, left unseen."""
        if after_uid < 0 or limit < 1:
            raise ValueError(f"need after_uid >= 0 and limit >= 1, got {after_uid}, {limit}")
        client = self._open_client()
        if after_uid >= _MAX_UID:
            return []
        reply = await self._checked(
            "UID SEARCH", client.uid_search("UID", f"{after_uid + 1}:*", charset=None)
        )
        # "N:*" always matches the highest UID, even when N is larger than it.
        wanted = sorted({uid for uid in _search_uids(reply) if uid > after_uid})[:limit]
        if not wanted:
            return []
        reply = await self._checked(
            "UID FETCH",
            client.uid("fetch", _uid_set(wanted), "(UID BODY.PEEK[])"),
            # A batch of large messages legitimately takes longer than one small command.
            timeout=self._config.timeout_seconds * len(wanted),
        )
        bodies = _fetch_bodies(reply)
        # A UID missing here was expunged by someone else between SEARCH and FETCH.
        return [
            FetchedMessage(uid, self.uidvalidity, bodies[uid]) for uid in wanted if uid in bodies
        ]

    async def move(self, uids: Sequence[int], *, to: str) -> None:
        """Move messages from the selected mailbox to `to` (UID MOVE, else COPY + expunge)."""
        client = self._open_client()
        if not uids:
            return
        if any(uid < 1 or uid > _MAX_UID for uid in uids):
            raise ValueError(f"UIDs must be between 1 and {_MAX_UID}: {list(uids)}")
        uid_set = _uid_set(sorted(set(uids)))
        target = _mailbox_arg(to)
        if self._has_capability("MOVE"):
            await self._checked("UID MOVE", client.uid("move", uid_set, target))
            return
        await self._checked("UID COPY", client.uid("copy", uid_set, target))
        await self._checked(
            "UID STORE", client.uid("store", uid_set, "+FLAGS.SILENT", r"(\Deleted)")
        )
        if self._has_capability("UIDPLUS"):
            await self._checked("UID EXPUNGE", client.uid("expunge", uid_set))
        else:
            # Plain EXPUNGE also removes other messages someone marked \Deleted; without UIDPLUS
            # there is no narrower way, and \Deleted mail is meant to go anyway.
            await self._checked("EXPUNGE", client.expunge())

    def _has_capability(self, name: str) -> bool:
        return bool(self._open_client().has_capability(name))

    def _open_client(self) -> Any:
        if self._client is None:
            raise RuntimeError("ImapInbox is not open; use it in `async with`")
        return self._client

    def _on_connection_lost(self, exc: Exception | None) -> None:
        self._lost.set()

    async def _ensure_folder(self, name: str) -> None:
        if await self._folder_exists(name):
            return
        try:
            await self._checked("CREATE", self._client.create(_mailbox_arg(name)))
        except ImapPermanentError:
            # Another poller may have created it between our LIST and CREATE.
            if not await self._folder_exists(name):
                raise

    async def _folder_exists(self, name: str) -> bool:
        reply = await self._checked("LIST", self._client.list('""', _mailbox_arg(name)))
        return len(reply.lines) > 1

    async def _checked(
        self, command: str, operation: Awaitable[Any], *, timeout: float | None = None
    ) -> _Reply:
        response = await self._run(command, operation, timeout=timeout)
        reply = _Reply(str(response.result), list(response.lines))
        if reply.result == "OK":
            return reply
        text = bytes(reply.lines[-1]).decode("utf-8", "replace") if reply.lines else ""
        said = f"{reply.result} {text}".strip()
        code = _RESPONSE_CODE.match(reply.lines[-1]) if reply.lines else None
        if reply.result == "NO" and code is not None and code[1].upper() in _TRANSIENT_CODES:
            raise ImapTransientError(f"{command} failed: {said}", command=command, response=said)
        raise ImapPermanentError(f"{command} failed: {said}", command=command, response=said)

    async def _run(
        self, command: str, operation: Awaitable[Any], *, timeout: float | None = None
    ) -> Any:
        """Await one aioimaplib call within the timeout, giving up at once if the link drops."""
        limit = self._config.timeout_seconds if timeout is None else timeout
        task = asyncio.ensure_future(operation)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait(
                {task, lost}, timeout=limit, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            lost.cancel()
            if not task.done():
                task.cancel()
        if task not in done:
            why = "connection lost" if lost in done else f"no answer within {limit:g} s"
            # After a timeout the reply may still arrive and be taken for the next command's;
            # treat the connection as lost so later calls fail fast instead of waiting again.
            self._lost.set()
            self._close_transport()
            raise ImapTransientError(f"{command}: {why}", command=command)
        try:
            return task.result()
        except ssl.SSLError as error:
            raise ImapPermanentError(f"{command}: TLS: {error}", command=command) from error
        except (OSError, aioimaplib.CommandTimeout) as error:
            # OSError covers refused and reset connections and asyncio's TimeoutError.
            raise ImapTransientError(
                f"{command}: {type(error).__name__}: {error}", command=command
            ) from error
        except aioimaplib.AioImapException as error:
            raise ImapPermanentError(f"{command}: {error}", command=command) from error

    async def _close(self) -> None:
        if self._client is None:
            return
        try:
            if self._client.get_state() in _READY_STATES and not self._lost.is_set():
                await self._checked(
                    "LOGOUT", self._client.logout(), timeout=min(5.0, self._config.timeout_seconds)
                )
        except ImapError as error:
            log.warning("IMAP logout from %s failed: %s", self._config.host, error)
        finally:
            self._close_transport()
            self._client = None

    def _close_transport(self) -> None:
        transport = self._client.protocol.transport if self._client is not None else None
        if transport is not None:
            transport.close()


def _parse_uidvalidity(reply: _Reply) -> int:
    for line in reply.lines:
        found = _UIDVALIDITY.search(line)
        if found:
            return int(found[1])
    raise ImapPermanentError(
        "SELECT reply carries no UIDVALIDITY", command="SELECT", response=repr(reply.lines)
    )


def _search_uids(reply: _Reply) -> list[int]:
    # The last line is the tagged completion text; the others are the untagged SEARCH data.
    return [int(word) for line in reply.lines[:-1] for word in line.split() if word.isdigit()]


def _fetch_bodies(reply: _Reply) -> dict[int, bytes]:
    """Map UID → BODY[] literal; the UID may come before or after the literal."""
    bodies: dict[int, bytes] = {}
    uid: int | None = None
    literal: bytes | None = None
    # The sentinel closes the last record. Unsolicited FETCHes (flag changes) have no literal.
    for line in [*reply.lines, b"0 FETCH ("]:
        if isinstance(line, bytearray):  # aioimaplib's type for literal data
            literal = bytes(line)
            continue
        if _FETCH_START.match(line):
            if uid is not None and literal is not None:
                bodies[uid] = literal
            uid, literal = None, None
        found = _FETCH_UID.search(line)
        if found and uid is None:
            uid = int(found[1])
    return bodies


def _uid_set(uids: Sequence[int]) -> str:
    """Sorted UIDs as a compact IMAP sequence set: [1, 2, 3, 7] → "1:3,7"."""
    ranges: list[str] = []
    start = previous = uids[0]
    for uid in [*uids[1:], -1]:
        if uid == previous + 1:
            previous = uid
            continue
        ranges.append(str(start) if start == previous else f"{start}:{previous}")
        start = previous = uid
    return ",".join(ranges)


def _mailbox_arg(name: str) -> str:
    """A mailbox name as a quoted IMAP string, non-ASCII in modified UTF-7 (RFC 3501 5.1.3)."""
    encoded: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            utf16 = "".join(pending).encode("utf-16-be")
            encoded.append(
                "&" + base64.b64encode(utf16).decode().rstrip("=").replace("/", ",") + "-"
            )
            pending.clear()

    for char in name:
        if " " <= char <= "~":
            flush()
            encoded.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return '"' + "".join(encoded).replace("\\", "\\\\").replace('"', '\\"') + '"'
