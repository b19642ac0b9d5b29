"""Parsing of inbound mail (raw RFC 5322 bytes) into the facts the reply pipeline needs.

No network, no database: bytes in, a frozen ``ParsedInbound`` out. The stdlib ``email`` package
(``policy.default``) parses headers lazily and raises IndexError, LookupError, AttributeError and
friends on hostile input; every such failure leaves this module as ``InboundParseError`` so the
caller can quarantine the message instead of crashing on it again at the next poll.

That path costs about a millisecond per message, so typical replies take a fast path (below) that
reads them the same way in a fraction of it and hands everything else to the email package.
"""

import base64
import email.errors
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage, Message
from email.parser import BytesParser, Parser
from functools import lru_cache
from itertools import pairwise
from typing import Protocol

from domain.errors import InputError

__all__ = [
    "BounceInfo",
    "InboundParseError",
    "ParsedInbound",
    "parse_inbound",
    "token_from_recipients",
    "verp_outbox_id",
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

_MSG_ID = re.compile(r"<[^<>\s]+>")
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


def _msg_ids(value: str | None) -> list[str]:
    # Folded ids come back with inner whitespace; compare only the <...> part.
    return _MSG_ID.findall("".join(value.split())) if value else []


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
            headers = Parser(policy=policy.default).parsestr(text or "", headersonly=True)
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
    status = action = recipient = None
    if chosen is not None:
        found = _STATUS.search(_header(chosen, "Status") or "")
        status = ".".join(found.groups()) if found else None
        action = (_header(chosen, "Action") or "").lower() or None
        final = _header(chosen, "Final-Recipient") or _header(chosen, "Original-Recipient")
        if final:
            recipient = final.split(";")[-1].strip().strip("<>").lower() or None
    hard = status.startswith("5") if status else action == "failed"
    return BounceInfo(
        status=status,
        hard=hard,
        action=action,
        recipient=recipient,
        original_message_id=_original_message_id(msg),
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


def _parse_reference(raw: bytes) -> ParsedInbound:
    """The general path: the email package with ``policy.default``, for any message."""
    msg = BytesParser(policy=_POLICY).parsebytes(raw)
    if not isinstance(msg, EmailMessage):
        raise InboundParseError("the email package returned no EmailMessage")
    return _parsed(_MessageHeaders(msg), hashlib.sha256(raw).hexdigest(), bounce=_bounce(msg),
                   plain_text=_body(msg, "plain"), html_text=_body(msg, "html"))


# --- the fast path -------------------------------------------------------------------------------
#
# Typical replies (headers, one or two levels of multipart, text parts) are read here without the
# email package's FeedParser and header registry, which together cost most of a millisecond per
# message. The fast path mirrors `_parse_reference` step by step and gives up — returning None, so
# that `_parse_reference` reads the message instead — on anything it does not reproduce exactly:
# bare CR line ends, header blocks the FeedParser would end early, message/* and digest parts,
# bounces (multipart/report), missing or repeated boundaries, deep nesting. Header values take
# the registry's own parser unless they are in a simple form whose decoded value is known (plain
# ASCII without encoded words, `Name <local@domain>` and the like); any exception raised on the
# way also hands the message to the reference path, so a hostile message fails (or not) exactly
# as it did there. tests/integration/test_inbound_parse.py checks both paths against each other.

# One header field: its first line and the continuation lines (starting with a blank) after it.
_FIELD_SPLIT = re.compile(r"\n(?![ \t])").split
_FIELD = re.compile(r"([\041-\071\073-\176]+):[ \t]*(.*)", re.DOTALL)
_BLANK_LINE = re.compile(r"\n\r?\n")
_BARE_CR = re.compile(r"\r(?!\n)")
_BOUNDARY_TAIL = re.compile(r"(--)?[ \t]*(?:\r?\n)?")
_MAX_DEPTH = 8

_MIME_ATOM = r"[A-Za-z0-9!#$&+.^_`{|}~-]+"
_PARAMETER = (
    r'[ \t]*;[ \t]*([A-Za-z0-9._-]+)=(?:([A-Za-z0-9!#$&+.^_`{|}~-]+)|"([ !#-\[\]-~]*)")[ \t]*'
)
_SIMPLE_CONTENT_TYPE = re.compile(
    rf"(?P<head>[ \t]*{_MIME_ATOM}/{_MIME_ATOM}[ \t]*)(?P<parameters>(?:{_PARAMETER})*)"
)
_SIMPLE_DISPOSITION = re.compile(
    rf"(?P<head>[ \t]*(?P<disposition>{_MIME_ATOM})[ \t]*)(?P<parameters>(?:{_PARAMETER})*)"
)
_PARAMETERS = re.compile(_PARAMETER)
_SIMPLE_TOKEN = re.compile(rf"[ \t]*{_MIME_ATOM}[ \t]*")
_ATOM = r"[A-Za-z0-9!#$%&'*+/^_`{|}~-]+"
_DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM})*"
_SIMPLE_MESSAGE_ID = re.compile(rf"[ \t]*<{_DOT_ATOM}@{_DOT_ATOM}>[ \t]*")
# One mailbox: `local@domain`, `<local@domain>`, `Name Words <local@domain>`,
# `"Quoted Name" <local@domain>`, `=?cs?q?…?= <local@domain>` (one whole encoded word) — no
# comments, no groups, no obsolete syntax.
_QUOTED_NAME = r'"([!#-\[\]-~]+(?: [!#-\[\]-~]+)*)"'
_ENCODED_NAME = r"=\?([A-Za-z0-9_.:-]+)\?([bBqQ])\?([!->@-~]*)\?="
_SIMPLE_MAILBOX = re.compile(
    rf"[ \t]*(?:({_DOT_ATOM})@({_DOT_ATOM})"
    rf"|(?:({_ATOM}(?: {_ATOM})*)[ \t]*|{_QUOTED_NAME}[ \t]*|{_ENCODED_NAME}[ \t]+)?"
    rf"<({_DOT_ATOM})@({_DOT_ATOM})>)"
    r"[ \t]*(,|\Z)"
)
# Inside an encoded display name, a blank run (and any whitespace after it) reads as one space.
_NAME_BLANKS = re.compile(r"[ \t]\s*")
_PRINTABLE_ASCII = re.compile(r"[\t\x20-\x7e]*")
_BLANKS_SPLIT = re.compile(r"([ \t]+)").split
_ENCODED_WORD = re.compile(_ENCODED_NAME)
_HEX_PAIR = re.compile(r"[0-9a-fA-F]{2}")
_Q_ESCAPE = re.compile(rb"=([a-fA-F0-9]{2})").sub
_REGISTRY_CLASSES: dict[str, type[BaseHeader]] = {}
_REGISTRY_KEYS = frozenset(_REGISTRY.registry)
_STRUCTURED = frozenset(
    {
        "content-type",
        "content-disposition",
        "content-transfer-encoding",
        "message-id",
        "from",
        "sender",
        "to",
        "cc",
    }
)
# Structured headers whose parse tree prints a value of this form unchanged.
_SIMPLE_FORMS = {
    "content-transfer-encoding": _SIMPLE_TOKEN,
    "message-id": _SIMPLE_MESSAGE_ID,
}

# (display name, local part, domain) of one address, as the registry's Address holds them.
_Mailbox = tuple[str, str, str]


def _registry_header(name: str, value: str) -> BaseHeader:
    """What ``policy.default`` hands out for this header (one class per name, not per call)."""
    key = name.lower()
    cls = _REGISTRY_CLASSES.get(key)
    if cls is None:
        cls = _REGISTRY_CLASSES[key] = _REGISTRY[key]
    return cls(name, value)


def _sanitized(value: str) -> str:
    # BaseHeader turns the surrogate-escaped bytes of an 8-bit header into UTF-8 (with U+FFFD).
    if value.isascii():
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _decoded(name: str, value: str) -> str:
    """``str()`` of the registry's header object for this (name, unfolded value)."""
    key = name.lower()
    if key in _STRUCTURED:
        if "=?" not in value and value.isascii():
            if key == "content-type":
                rendered = _simple_parameterized(_SIMPLE_CONTENT_TYPE, value)
                if rendered is not None:
                    return rendered
            elif key == "content-disposition":
                rendered = _simple_parameterized(_SIMPLE_DISPOSITION, value)
                if rendered is not None:
                    return rendered
            else:
                simple = _SIMPLE_FORMS.get(key)
                if simple is not None and simple.fullmatch(value):
                    return value
    elif key == "subject" or key not in _REGISTRY_KEYS:
        # Unstructured: without an encoded word the parse tree prints the value unchanged.
        if "=?" not in value:
            return _sanitized(value)
        decoded = _simple_encoded_words(value)
        if decoded is not None:
            return decoded
    return str(_registry_header(name, value))


def _simple_parameterized(form: re.Pattern[str], value: str) -> str | None:
    """How the registry prints a simple `type/subtype; name=value; …` (or disposition) value.

    The parse tree keeps the text before the first ";" and prints the parameters again: each as
    name="value" (just the name when empty), separated by "; ", blanks around them dropped.
    """
    matched = form.fullmatch(value)
    if matched is None:
        return None
    head, parameters = matched.group("head", "parameters")
    if not parameters:
        return value
    rendered: dict[str, str] = {}
    for name, token, quoted in _PARAMETERS.findall(parameters):
        if name in rendered:
            return None  # duplicates: the registry's own recovery rules decide
        content = token or quoted
        rendered[name] = f'{name}="{content}"' if content else name
    return f"{head}; " + "; ".join(rendered.values())


def _simple_encoded_words(value: str) -> str | None:
    """get_unstructured's reading of blank-separated words and whole RFC 2047 encoded words.

    None for anything else (an encoded word glued to text, an unknown charset, bytes the charset
    cannot decode, padding defects, controls): the registry decides those.
    """
    if not _PRINTABLE_ASCII.fullmatch(value):
        return None
    out: list[str] = []
    previous_encoded = False
    pending_blank = ""
    for index, piece in enumerate(_BLANKS_SPLIT(value)):
        if index % 2:  # a run of blanks
            pending_blank = piece
            continue
        if not piece:
            continue
        if "=?" not in piece:
            out.append(pending_blank)
            out.append(piece)
            previous_encoded = False
            pending_blank = ""
            continue
        matched = _ENCODED_WORD.fullmatch(piece)
        decoded = None if matched is None else _encoded_word(*matched.groups())
        if decoded is None:
            return None
        # Blanks between two encoded words are dropped; others are kept.
        out.append("" if previous_encoded else pending_blank)
        out.append(decoded)
        previous_encoded = True
        pending_blank = ""
    out.append(pending_blank)
    return "".join(out)


def _encoded_word(charset: str, encoding: str, encoded: str) -> str | None:
    """email._encoded_words.decode of one whole encoded word, when it decodes cleanly."""
    if encoded.startswith("=") and not _HEX_PAIR.match(encoded, 1):
        return None  # get_encoded_word would end the word at this "?="
    data = encoded.encode("ascii")
    try:
        if encoding in "qQ":
            decoded = _Q_ESCAPE(_q_byte, data.replace(b"_", b" ")).decode(charset)
        elif len(data) % 4:
            return None
        else:
            decoded = base64.b64decode(data, validate=True).decode(charset)
    except (LookupError, ValueError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    try:
        decoded.encode("utf-8")
    except UnicodeEncodeError:  # a codec that yields lone surrogates: let the registry decide
        return None
    return decoded


def _q_byte(matched: re.Match[bytes]) -> bytes:
    return bytes.fromhex(matched.group(1).decode())


def _simple_mailboxes(value: str) -> list[_Mailbox] | None:
    if not value.isascii():
        return None
    found: list[_Mailbox] = []
    position = 0
    while True:
        matched = _SIMPLE_MAILBOX.match(value, position)
        if matched is None:
            return None
        bare_local, bare_domain, words, quoted, charset, encoding, encoded, local, domain, comma = (
            matched.groups()
        )
        if bare_local is not None:
            found.append(("", bare_local, bare_domain))
        elif charset is not None:
            decoded = _encoded_word(charset, encoding, encoded)
            if decoded is None:
                return None
            found.append((_NAME_BLANKS.sub(" ", decoded), local, domain))
        elif quoted is not None and "=?" in quoted:
            return None  # an encoded word inside quotes is decoded there too
        else:
            found.append((words or quoted or "", local, domain))
        if not comma:
            return found
        position = matched.end()


def _mailboxes(name: str, value: str) -> list[_Mailbox]:
    simple = _simple_mailboxes(value)
    if simple is not None:
        return simple
    header = _registry_header(name, value)
    return [(a.display_name, a.username, a.domain) for a in getattr(header, "addresses", ())]


def _addr_spec(mailbox: _Mailbox) -> str:
    _, username, domain = mailbox
    return Address(username=username, domain=domain).addr_spec if domain else username


def _content_type(value: str | None) -> str:
    """Message.get_content_type for a part whose (decoded) Content-Type is `value`."""
    if value is None:
        return "text/plain"  # the default type outside multipart/digest
    content_type = value.partition(";")[0].strip().lower()
    return content_type if content_type.count("/") == 1 else "text/plain"


class _Part:
    """One MIME entity as the FeedParser would build it, with its relevant headers decoded."""

    __slots__ = (
        "body",
        "children",
        "content_id",
        "content_type",
        "disposition",
        "headers",
        "index",
        "shell",
    )

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        self.headers = headers
        # Lower-cased name → its (name, value) occurrences in order, as Message.get/get_all see it.
        self.index: dict[str, list[tuple[str, str]]] = {}
        for header in headers:
            self.index.setdefault(header[0].lower(), []).append(header)
        self.children: list[_Part] | None = None
        self.body = ""
        content_type = self.first_decoded("content-type")
        encoding = self.first_decoded("content-transfer-encoding")
        # A compat32 Message carrying only the decoded Content-Type and Content-Transfer-Encoding:
        # the email package's own get_param/get_content_charset/get_payload(decode=True) then run
        # on exactly the strings they would have seen under policy.default.
        self.shell = Message()
        if content_type is not None:
            self.shell.set_raw("Content-Type", content_type)
        if encoding is not None:
            self.shell.set_raw("Content-Transfer-Encoding", encoding)
        self.content_type = _content_type(content_type)
        self.disposition = self._disposition()
        self.content_id = self.first_decoded("content-id")

    def first_decoded(self, key: str) -> str | None:
        found = self.index.get(key)
        return _decoded(*found[0]) if found else None

    def all_decoded(self, key: str) -> list[str]:
        return [_decoded(name, value) for name, value in self.index.get(key, ())]

    def _disposition(self) -> str | None:
        found = self.index.get("content-disposition")
        if not found:
            return None
        name, value = found[0]
        if "=?" not in value and value.isascii():
            matched = _SIMPLE_DISPOSITION.fullmatch(value)
            if matched is not None:
                return matched.group("disposition").lower()
        disposition = getattr(_registry_header(name, value), "content_disposition", None)
        return disposition if isinstance(disposition, str) else None


class _NotSimple(Exception):
    """The fast path does not reproduce this message; the reference path reads it."""


def _split_headers(text: str) -> tuple[list[tuple[str, str]], str]:
    if text.startswith("\n"):
        return [], text[1:]
    if text.startswith("\r\n"):
        return [], text[2:]
    blank = _BLANK_LINE.search(text)
    if blank is None:
        raise _NotSimple("no blank line after the headers")
    headers: list[tuple[str, str]] = []
    for field in _FIELD_SPLIT(text[: blank.start()]):
        matched = _FIELD.match(field)
        if matched is None:
            raise _NotSimple("a header line the FeedParser would stop at")
        # header_source_parse (the first line's leading blanks go), then header_fetch_parse's
        # removal of every CR and LF.
        headers.append((matched.group(1), matched.group(2).replace("\r", "").replace("\n", "")))
    return headers, text[blank.end() :]


def _strip_eol(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith(("\n", "\r")) else text


def _next_line_with(text: str, prefix: str, position: int) -> int:
    found = text.find("\n" + prefix, position)
    return -1 if found == -1 else found + 1


def _boundary_regions(body: str, separator: str) -> list[str]:
    """The texts between the separator lines of a multipart body, up to the close delimiter."""
    starts: list[tuple[int, int, bool]] = []  # (line start, line end, is close delimiter)
    start = 0 if body.startswith(separator) else _next_line_with(body, separator, 0)
    while start != -1:
        tail_start = start + len(separator)
        newline = body.find("\n", tail_start)
        line_end = len(body) if newline == -1 else newline + 1
        tail = _BOUNDARY_TAIL.fullmatch(body, tail_start, line_end)
        if tail is not None:
            close = tail.group(1) is not None
            starts.append((start, line_end, close))
            if close:
                break
        start = _next_line_with(body, separator, line_end - 1)
    if not starts or starts[0][2] or not starts[-1][2]:
        raise _NotSimple("no start or no close boundary")
    regions: list[str] = []
    for (_, end, _), (next_start, _, _) in pairwise(starts):
        if next_start <= end:
            raise _NotSimple("adjacent boundary lines")
        regions.append(body[end:next_start])
    return regions


def _read_part(text: str, depth: int, *, root: bool) -> _Part:
    if depth > _MAX_DEPTH:
        raise _NotSimple("nested too deeply")
    headers, body = _split_headers(text)
    part = _Part(headers)
    maintype = part.content_type.split("/")[0]
    if maintype == "message" or part.content_type in ("multipart/digest", "multipart/report"):
        raise _NotSimple(part.content_type)
    if maintype != "multipart":
        part.body = body if root else _strip_eol(body)
        return part
    boundary = part.shell.get_boundary()
    if not boundary:
        raise _NotSimple("multipart without a usable boundary")
    # The FeedParser reads a multipart's Content-Transfer-Encoding (and may fail on it).
    part.first_decoded("content-transfer-encoding")
    part.children = [
        _read_part(region, depth + 1, root=False)
        for region in _boundary_regions(body, "--" + boundary)
    ]
    return part


def _fast_find_body(root: _Part, part: _Part, subtype: str) -> _Part | None:
    # EmailMessage._find_body for a one-element preference list (hence the first hit wins).
    if part.disposition == "attachment":
        return None
    maintype, part_subtype = part.content_type.split("/")
    if maintype == "text":
        return part if part_subtype == subtype else None
    if maintype != "multipart" or root.children is None or part.children is None:
        return None
    if part_subtype != "related":
        for child in part.children:
            found = _fast_find_body(root, child, subtype)
            if found is not None:
                return found
        return None
    candidate = None
    start = part.shell.get_param("start")
    if start:
        candidate = next((c for c in part.children if c.content_id == start), None)
    if candidate is None and part.children:
        candidate = part.children[0]
    return _fast_find_body(root, candidate, subtype) if candidate is not None else None


def _fast_text(part: _Part) -> str | None:
    shell = part.shell
    shell.set_payload(part.body)
    payload = shell.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return None
    charset = shell.get_content_charset() or "us-ascii"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def _fast_body(root: _Part, subtype: str) -> str | None:
    part = _fast_find_body(root, root, subtype)
    if part is None or part.content_type != f"text/{subtype}":
        return None
    return _fast_text(part)


class _Headers(Protocol):
    """The top-level headers of a message, as either path reads them."""

    def first(self, name: str) -> str | None:
        """The first value of `name` (decoded), or None."""

    def every(self, name: str) -> list[str]:
        """Every value of `name` (decoded), in order."""

    def mailboxes(self, name: str) -> list[_Mailbox]:
        """The addresses of every `name` header, in order."""

    def names(self) -> list[str]:
        """The header names, in order, as written."""

    def content_type(self) -> str:
        """The message's content type, as `Message.get_content_type` gives it."""


class _MessageHeaders:
    """`_Headers` of an EmailMessage parsed by the email package (the reference path)."""

    def __init__(self, msg: Message) -> None:
        self._msg = msg

    def first(self, name: str) -> str | None:
        value = self._msg.get(name)
        return None if value is None else str(value)

    def every(self, name: str) -> list[str]:
        return [str(value) for value in self._msg.get_all(name, [])]

    def mailboxes(self, name: str) -> list[_Mailbox]:
        return [(a.display_name, a.username, a.domain)
                for value in self._msg.get_all(name, [])
                for a in getattr(value, "addresses", ())]

    def names(self) -> list[str]:
        return list(self._msg.keys())

    def content_type(self) -> str:
        return self._msg.get_content_type()


class _PartHeaders:
    """`_Headers` of the fast path's root part."""

    def __init__(self, part: _Part) -> None:
        self._part = part

    def first(self, name: str) -> str | None:
        return self._part.first_decoded(name.lower())

    def every(self, name: str) -> list[str]:
        return self._part.all_decoded(name.lower())

    def mailboxes(self, name: str) -> list[_Mailbox]:
        found: list[_Mailbox] = []
        for header_name, value in self._part.index.get(name.lower(), ()):
            found.extend(_mailboxes(header_name, value))
        return found

    def names(self) -> list[str]:
        return [name for name, _ in self._part.headers]

    def content_type(self) -> str:
        return self._part.content_type


def _one_line(value: str | None) -> str | None:
    return None if value is None else " ".join(value.split())


def _plain_addresses(headers: _Headers, name: str) -> list[str]:
    # Delivered-To, X-Original-To and Return-Path are unstructured headers for the email package.
    found: list[str] = []
    for value in headers.every(name):
        candidate = " ".join(value.split()).strip().strip("<>").strip().lower()
        if "@" in candidate and " " not in candidate:
            found.append(candidate)
    return found


def _first_address(headers: _Headers, name: str) -> _Mailbox | None:
    addresses = headers.mailboxes(name)
    # Several authors (legal with Sender) give no single person to trust: treat as unparsable.
    if len(addresses) != 1 or not addresses[0][1] or not addresses[0][2]:
        return None
    return addresses[0]


def _recipients(headers: _Headers) -> tuple[str, ...]:
    found: list[str] = []
    for name in _RECIPIENT_HEADERS:
        if name in ("To", "Cc"):
            found.extend(_addr_spec(a).lower() for a in headers.mailboxes(name) if a[2])
        else:
            found.extend(_plain_addresses(headers, name))
    return tuple(dict.fromkeys(found))


def _automated_reason(
    headers: _Headers, *, subject: str, from_address: str | None, sender: str | None
) -> str | None:
    auto_submitted = _one_line(headers.first("Auto-Submitted"))
    if auto_submitted is not None and auto_submitted.split(";")[0].strip().lower() != "no":
        return f"Auto-Submitted: {auto_submitted}"
    present = {name.lower() for name in headers.names()}
    for name in ("X-Autoreply", "X-Autorespond"):
        if name.lower() in present:
            return f"{name} header"
    precedence = (_one_line(headers.first("Precedence")) or "").lower()
    if precedence in _BULK_PRECEDENCE:
        return f"Precedence: {precedence}"
    list_header = next((n for n in headers.names() if n.lower().startswith("list-")), None)
    if list_header is not None:
        return f"{list_header} header"
    folded = subject.strip().casefold()
    for prefix in _AUTOMATED_SUBJECTS:
        if folded.startswith(prefix):
            return f"subject starts with {prefix!r}"
    return_path = _one_line(headers.first("Return-Path"))
    if return_path is not None and return_path.strip("<> ") == "":
        return "null sender (Return-Path <>)"
    for address in (from_address, sender):
        if address and address.split("@")[0] in _DAEMONS:
            return f"sent by {address}"
    if headers.content_type() == "multipart/report":
        return "multipart/report"
    return None


def _parsed(
    headers: _Headers, raw_sha256: str, *, bounce: BounceInfo | None, plain_text: str | None,
    html_text: str | None,
) -> ParsedInbound:
    """What the headers say, with the bodies and bounce facts each path read its own way."""
    ids = _msg_ids(_one_line(headers.first("Message-ID")))
    author = _first_address(headers, "From")
    from_address = _addr_spec(author).lower() if author else None
    sender = _first_address(headers, "Sender")
    return_path = _plain_addresses(headers, "Return-Path")
    sender_address = _addr_spec(sender).lower() if sender else next(iter(return_path), None)
    subject = _one_line(headers.first("Subject")) or ""
    in_reply_to = _msg_ids(_one_line(headers.first("In-Reply-To")))
    return ParsedInbound(
        message_id=ids[0] if ids else f"sha256:{raw_sha256}",
        raw_sha256=raw_sha256,
        from_address=from_address,
        from_display=author[0] if author else "",
        sender_address=sender_address,
        recipients=_recipients(headers),
        subject=subject,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=tuple(_msg_ids(_one_line(headers.first("References")))),
        automated_reason=_automated_reason(
            headers, subject=subject, from_address=from_address, sender=sender_address
        ),
        bounce=bounce,
        plain_text=plain_text,
        html_text=html_text,
        authentication_results=tuple(
            " ".join(value.split()) for value in headers.every("Authentication-Results")),
    )


def _parse_fast(raw: bytes) -> ParsedInbound | None:
    """`_parse_reference` for typical messages, or None where it would not give the same."""
    text = raw.decode("ascii", "surrogateescape")
    if _BARE_CR.search(text):
        return None
    try:
        root = _read_part(text, 0, root=True)
    except _NotSimple:
        return None
    # multipart/report (a bounce) never takes the fast path, so there are no bounce facts here.
    return _parsed(_PartHeaders(root), hashlib.sha256(raw).hexdigest(), bounce=None,
                   plain_text=_fast_body(root, "plain"), html_text=_fast_body(root, "html"))


def _parse(raw: bytes) -> ParsedInbound:
    try:
        fast = _parse_fast(raw)
    except _HOSTILE:
        fast = None
    return fast if fast is not None else _parse_reference(raw)


def parse_inbound(raw: bytes, *, max_bytes: int = 10_000_000) -> ParsedInbound:
    """Parse raw RFC 5322 bytes; raise InboundParseError for oversize or hostile input."""
    if len(raw) > max_bytes:
        raise InboundParseError(f"message of {len(raw)} bytes exceeds the limit of {max_bytes}")
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


def verp_outbox_id(recipients: Iterable[str], *, domain: str) -> int | None:
    """Return the outbox id of the one ``bounce+<outbox-id>@<domain>`` recipient."""
    found = _single(
        local[len("bounce+") :]
        for local in _local_parts(recipients, domain=domain)
        if local.startswith("bounce+") and re.fullmatch(r"[0-9]{1,18}", local[len("bounce+") :])
    )
    return int(found) if found is not None else None
