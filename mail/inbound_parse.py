"""Parsing of inbound mail (raw RFC 5322 bytes) into the facts the reply pipeline needs.

No network, no database: bytes in, a frozen ``ParsedInbound`` out. Every message is read by the
stdlib ``email`` package with ``policy.default``; nothing here parses headers or MIME by hand.

The email package is lenient: it records what it had to repair as *defects* and carries on, so
each defect that matters to a fact is handled where that fact is read:

- a message over ``max_bytes``, with more than ``_MAX_BOUNDARY_LINES`` lines starting "--"
  (counted before parsing), more than ``_MAX_PARTS`` parts, or MIME nested deeper than
  ``_MAX_DEPTH``, is refused;
- header values are parsed lazily and raise IndexError, LookupError, AttributeError and friends
  on hostile input; every such failure leaves this module as ``InboundParseError`` so the caller
  can quarantine the message instead of crashing on it again at the next poll;
- an author header (From, Sender) the registry flags with ``InvalidHeaderDefect`` (or another
  defect of an unusable address), or that names no address or several, yields no author: we do
  not trust a repaired guess;
- a display name that holds an address (`"karen@kommune…" <forger@x>`) yields no author;
- a header given twice counts once (the first), except the authors, where two are no author;
- 8-bit header bytes (``UndecodableBytesDefect``) are read as UTF-8 with replacement, and a body
  charset Python does not know is decoded as UTF-8 with replacement;
- a broken multipart (``msg.defects``: no start boundary and the like) is what the email package
  makes of it: a part without a usable text body gives ``None``, not an error.
"""

import email.errors
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage, Message
from email.parser import BytesParser, Parser
from email.policy import Policy
from functools import lru_cache

from domain.errors import InputError

__all__ = [
    "BounceInfo",
    "InboundParseError",
    "ParsedInbound",
    "VerpAddress",
    "parse_inbound",
    "token_from_recipients",
    "verp_address",
]

# What the email package was seen to raise on fuzzed headers and bodies. Listed, not `Exception`,
# so that a bug in this module still surfaces as itself.
_HOSTILE = (
    IndexError,
    LookupError,
    AttributeError,
    ValueError,
    TypeError,
    RecursionError,
    email.errors.MessageError,
)

# Real replies nest four or five levels (mixed > alternative > related > text, a forwarded
# message/rfc822 adds two) and have a few dozen parts at most (inline images, attachments). The
# FeedParser's time grows with both (100 nested parts took 0.3 s, 500 took 2 s), and Message.walk
# and get_body recurse: so both are limited.
_MAX_DEPTH = 20
_MAX_PARTS = 100
# Counted on the raw bytes before any parsing (one pass in C): a boundary line starts with "--".
# Real replies have a few dozen (plus a "-- " signature line or a quoted "--- Original ---").
_MAX_BOUNDARY_LINES = 10 * _MAX_PARTS

_MSG_ID = re.compile(r"<[^<>\s]+>")
_ADDRESS_LIKE = re.compile(r"[^\s@<>\"]+@[^\s@<>\"]+")
_TOKEN = re.compile(r"[a-z2-7]{26}")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_AUTOMATED_SUBJECTS = (
    "automatisk svar",
    "autosvar",
    "auto:",
    "out of office",
    "fraværende",
    "automatic reply",
    "autoreply",
    "auto-reply",
)
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_DAEMONS = frozenset({"mailer-daemon", "postmaster"})
_RECIPIENT_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To")
# Header defects after which the registry's address is its repair of something else (a missing
# ">", a missing address, control characters) or not an address we can store (an 8-bit local part
# comes back as surrogate escapes). ObsoleteHeaderDefect (an unquoted "K. Holm") is not among them.
_UNTRUSTED_ADDRESS = (
    email.errors.InvalidHeaderDefect,
    email.errors.HeaderMissingRequiredValue,
    email.errors.NonASCIILocalPartDefect,
    email.errors.NonPrintableDefect,
)


class _MemoRegistry(HeaderRegistry):
    """`policy.default`'s header registry, remembering recent (name, value) → header object.

    The email package parses a header again on every access, and `get_content_type`,
    `get_body` and friends read Content-Type dozens of times per message. Header objects are
    immutable and depend only on (name, value), so handing out the same one is the same result;
    exceptions are not remembered (they are raised again).
    """

    def __call__(self, name: str, value: str) -> BaseHeader:
        return _parsed_header(name, value)


_REGISTRY = HeaderRegistry()


@lru_cache(maxsize=256)
def _parsed_header(name: str, value: str) -> BaseHeader:
    header: BaseHeader = _REGISTRY(name, value)
    return header


_POLICY = policy.default.clone(header_factory=_MemoRegistry())


class InboundParseError(InputError):
    """The raw message could not be parsed safely; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class BounceInfo:
    """The delivery-status facts of a bounce (RFC 3464)."""

    status: str | None
    hard: bool
    action: str | None
    recipient: str | None
    original_message_id: str | None
    original_recipient: str | None = None


@dataclass(frozen=True)
class ParsedInbound:
    """The facts of one inbound message that the reply pipeline decides on."""

    message_id: str
    raw_sha256: str
    from_address: str | None
    from_display: str
    sender_address: str | None
    recipients: tuple[str, ...]
    subject: str
    in_reply_to: str | None
    references: tuple[str, ...]
    automated_reason: str | None
    bounce: BounceInfo | None
    plain_text: str | None
    html_text: str | None
    authentication_results: tuple[str, ...]


def _header(msg: Message, name: str) -> str | None:
    value = msg.get(name)
    return None if value is None else " ".join(str(value).split())


def _header_all(msg: Message, name: str) -> list[str]:
    return [" ".join(str(value).split()) for value in msg.get_all(name, [])]


def _msg_ids(value: str | None) -> list[str]:
    # Folded ids come back with inner whitespace; compare only the <...> part.
    return _MSG_ID.findall("".join(value.split())) if value else []


def _unescaped(text: str) -> str:
    # Address objects keep 8-bit header bytes as surrogate escapes (str() of the header does
    # not, UndecodableBytesDefect): the database and the mails we write need real text.
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a lone surrogate that stands for no byte (a codec's output)
        return text.encode("utf-8", "replace").decode("utf-8")


def _addresses(msg: Message, name: str) -> list[Address]:
    found: list[Address] = []
    for value in msg.get_all(name, []):
        found.extend(getattr(value, "addresses", ()))
    return found


def _plain_addresses(msg: Message, name: str) -> list[str]:
    # Delivered-To, X-Original-To and Return-Path are unstructured headers for the email package.
    found: list[str] = []
    for value in _header_all(msg, name):
        candidate = value.strip().strip("<>").strip().lower()
        if "@" in candidate and " " not in candidate:
            found.append(candidate)
    return found


def _author(msg: Message, name: str) -> Address | None:
    """The one address of the author header `name`, or None where there is no one to trust."""
    # Whom a repaired header names is a guess, and the author is what the pipeline checks.
    if any(isinstance(defect, _UNTRUSTED_ADDRESS)
           for value in msg.get_all(name, []) for defect in getattr(value, "defects", ())):
        return None
    addresses = _addresses(msg, name)
    # Several authors (legal with Sender) give no single person to trust: treat as unparsable.
    if len(addresses) != 1 or not addresses[0].username or not addresses[0].domain:
        return None
    # An address in the display part ("karen.holm@kommune.example.org" <forger@x.org>) is a
    # borrowed name: whoever reads the mail sees one person, the address says another.
    if _ADDRESS_LIKE.search(addresses[0].display_name):
        return None
    return addresses[0]


def _recipients(msg: Message) -> tuple[str, ...]:
    found: list[str] = []
    for name in _RECIPIENT_HEADERS:
        if name in ("To", "Cc"):
            found.extend(a.addr_spec.lower() for a in _addresses(msg, name) if a.domain)
        else:
            found.extend(_plain_addresses(msg, name))
    return tuple(dict.fromkeys(found))


def _automated_reason(
    msg: Message, *, subject: str, from_address: str | None, sender: str | None
) -> str | None:
    auto_submitted = _header(msg, "Auto-Submitted")
    if auto_submitted is not None and auto_submitted.split(";")[0].strip().lower() != "no":
        return f"Auto-Submitted: {auto_submitted}"
    for name in ("X-Autoreply", "X-Autorespond"):
        if name in msg:
            return f"{name} header"
    precedence = (_header(msg, "Precedence") or "").lower()
    if precedence in _BULK_PRECEDENCE:
        return f"Precedence: {precedence}"
    list_header = next((key for key in msg if key.lower().startswith("list-")), None)
    if list_header is not None:
        return f"{list_header} header"
    folded = subject.strip().casefold()
    for prefix in _AUTOMATED_SUBJECTS:
        if folded.startswith(prefix):
            return f"subject starts with {prefix!r}"
    return_path = _header(msg, "Return-Path")
    if return_path is not None and return_path.strip("<> ") == "":
        return "null sender (Return-Path <>)"
    for address in (from_address, sender):
        if address and address.split("@")[0] in _DAEMONS:
            return f"sent by {address}"
    if msg.get_content_type() == "multipart/report":
        return "multipart/report"
    return None


def _original_message_id(report: Message) -> str | None:
    for part in report.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                ids = _msg_ids(_header(inner, "Message-ID"))
                return ids[0] if ids else None
        if content_type == "text/rfc822-headers":
            text = _text_content(part)
            headers = Parser(policy=_POLICY).parsestr(text or "", headersonly=True)
            ids = _msg_ids(_header(headers, "Message-ID"))
            return ids[0] if ids else None
    return None


def _bounce(msg: Message) -> BounceInfo | None:
    if msg.get_content_type() != "multipart/report":
        return None
    if str(msg.get_param("report-type", "")).lower() != "delivery-status":
        return None
    status_blocks: list[Message] = []
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            payload = part.get_payload()
            if isinstance(payload, list):
                status_blocks = [block for block in payload if isinstance(block, Message)]
            break
    # The first block holds per-message fields; recipient blocks follow. Prefer a failed one.
    recipients = [block for block in status_blocks if "Status" in block or "Action" in block]
    chosen = next(
        (b for b in recipients if (_header(b, "Action") or "").lower() == "failed"),
        recipients[0] if recipients else None,
    )
    status = action = recipient = original_recipient = None
    if chosen is not None:
        found = _STATUS.search(_header(chosen, "Status") or "")
        status = ".".join(found.groups()) if found else None
        action = (_header(chosen, "Action") or "").lower() or None
        final = _header(chosen, "Final-Recipient") or _header(chosen, "Original-Recipient")
        if final:
            recipient = final.split(";")[-1].strip().strip("<>").lower() or None
        original = _header(chosen, "Original-Recipient")
        if original:
            original_recipient = original.split(";")[-1].strip().strip("<>").lower() or None
    hard = status.startswith("5") if status else action == "failed"
    return BounceInfo(
        status=status,
        hard=hard,
        action=action,
        recipient=recipient,
        original_message_id=_original_message_id(msg),
        original_recipient=original_recipient,
    )


def _text_content(part: Message) -> str | None:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return None
    charset = part.get_content_charset() or "us-ascii"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        # Unknown labels such as "unknown-8bit": the keywords are ASCII, so UTF-8 with
        # replacement keeps them and cannot invent one.
        return payload.decode("utf-8", errors="replace")


def _body(msg: EmailMessage, subtype: str) -> str | None:
    part = msg.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_type() != f"text/{subtype}":
        return None
    return _text_content(part)


class _CountedParts:
    """A message factory for one parse: EmailMessage, refusing more than `_MAX_PARTS` parts.

    The FeedParser asks it for every part it opens, so a message with thousands of parts stops
    there, before the parser has spent its time on them.
    """

    def __init__(self) -> None:
        self.created = 0

    def __call__(self, policy: Policy = _POLICY) -> EmailMessage:
        self.created += 1
        # One more than the limit: the FeedParser calls its factory once to learn its signature.
        if self.created > _MAX_PARTS + 1:
            raise InboundParseError(f"more than {_MAX_PARTS} MIME parts")
        return EmailMessage(policy=policy)


def _check_depth(msg: Message) -> None:
    # An explicit stack: Message.walk recurses, and this check must hold before anything walks.
    stack = [(msg, 0)]
    while stack:
        part, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise InboundParseError(f"MIME parts nested deeper than {_MAX_DEPTH} levels")
        payload = part.get_payload() if part.is_multipart() else []
        stack.extend((child, depth + 1) for child in payload if isinstance(child, Message))


def _parse(raw: bytes) -> ParsedInbound:
    msg = BytesParser(_CountedParts(), policy=_POLICY).parsebytes(raw)
    if not isinstance(msg, EmailMessage):
        raise InboundParseError("the email package returned no EmailMessage")
    _check_depth(msg)
    raw_sha256 = hashlib.sha256(raw).hexdigest()
    ids = _msg_ids(_header(msg, "Message-ID"))
    author = _author(msg, "From")
    from_address = author.addr_spec.lower() if author else None
    sender = _author(msg, "Sender")
    return_path = _plain_addresses(msg, "Return-Path")
    sender_address = sender.addr_spec.lower() if sender else next(iter(return_path), None)
    subject = _header(msg, "Subject") or ""
    in_reply_to = _msg_ids(_header(msg, "In-Reply-To"))
    return ParsedInbound(
        message_id=ids[0] if ids else f"sha256:{raw_sha256}",
        raw_sha256=raw_sha256,
        from_address=from_address,
        from_display=_unescaped(author.display_name) if author else "",
        sender_address=sender_address,
        recipients=_recipients(msg),
        subject=subject,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=tuple(_msg_ids(_header(msg, "References"))),
        automated_reason=_automated_reason(
            msg, subject=subject, from_address=from_address, sender=sender_address
        ),
        bounce=_bounce(msg),
        plain_text=_body(msg, "plain"),
        html_text=_body(msg, "html"),
        authentication_results=tuple(_header_all(msg, "Authentication-Results")),
    )


def parse_inbound(raw: bytes, *, max_bytes: int = 10_000_000) -> ParsedInbound:
    """Parse raw RFC 5322 bytes; raise InboundParseError for oversize or hostile input."""
    if len(raw) > max_bytes:
        raise InboundParseError(f"message of {len(raw)} bytes exceeds the limit of {max_bytes}")
    if raw.count(b"\n--") > _MAX_BOUNDARY_LINES:
        raise InboundParseError(f"more than {_MAX_BOUNDARY_LINES} MIME boundary lines")
    try:
        return _parse(raw)
    except _HOSTILE as exc:
        raise InboundParseError(f"unparsable message: {type(exc).__name__}: {exc}") from exc


def _local_parts(recipients: Iterable[str], *, domain: str) -> Iterator[str]:
    suffix = "@" + domain.strip().rstrip(".").lower()
    for recipient in recipients:
        address = recipient.strip().strip("<>").strip().lower()
        if address.endswith(suffix):
            yield address[: -len(suffix)]


def _single(values: Iterable[str]) -> str | None:
    # Two different tokens (or outbox ids) in one message: refuse to pick one.
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def token_from_recipients(recipients: Iterable[str], *, domain: str) -> str | None:
    """Return the lower-cased token of the one ``approvals+<token>@<domain>`` recipient."""
    return _single(
        local[len("approvals+") :]
        for local in _local_parts(recipients, domain=domain)
        if local.startswith("approvals+") and _TOKEN.fullmatch(local[len("approvals+") :])
    )


@dataclass(frozen=True)
class VerpAddress:
    """The outbox row a ``bounce+<id>-<tag>@`` address names, and the tag it claims."""

    outbox_id: int
    tag: str | None  # None: the untagged form of rows enqueued before the tag existed


VERP_LOCAL = re.compile(r"bounce\+(?P<id>[0-9]{1,18})(?:-(?P<tag>[a-z2-7]{16}))?")


def verp_address(recipients: Iterable[str], *, domain: str) -> VerpAddress | None:
    """The one ``bounce+<outbox-id>[-<tag>]@<domain>`` recipient, or None (none, or several)."""
    found = _single(
        local for local in _local_parts(recipients, domain=domain)
        if VERP_LOCAL.fullmatch(local)
    )
    matched = VERP_LOCAL.fullmatch(found) if found is not None else None
    if matched is None:
        return None
    return VerpAddress(int(matched.group("id")), matched.group("tag"))
