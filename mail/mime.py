"""Build the RFC 5322 message for an outbox row: both parts, attachments, loop-safe headers.

The outbox stores each message as wire bytes, built once at enqueue (`raw_message`): every
attempt then sends exactly the same bytes. The bytes are 7-bit (quoted-printable or base64 for
non-ASCII text, RFC 2047 for headers) with CRLF line ends, so any SMTP server takes them without
8BITMIME or SMTPUTF8 and no transport re-encodes them.
"""

import base64
import binascii
import email.policy
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from functools import lru_cache
from io import BytesIO
from typing import Any

from models.outbox import ClaimedMail

AUTO_HEADERS = {
    "Auto-Submitted": "auto-generated",
    "X-Auto-Response-Suppress": "OOF, AutoReply",
}
THREAD_HEADERS = ("In-Reply-To", "References", "Reply-To")
# cte_type="7bit" makes set_content pick quoted-printable/base64 for non-ASCII text parts.
WIRE_POLICY = email.policy.SMTP.clone(cte_type="7bit")


def compose_message(
    recipients: Sequence[str], *, subject: str, message_id: str, ref: str, body_text: str,
    body_html: str, attachments: Sequence[Mapping[str, Any]], headers: Mapping[str, str],
    sender: str, sender_name: str, date: datetime,
) -> EmailMessage:
    """The message with both parts, attachments, automatic-mail and threading headers."""
    message = EmailMessage(policy=WIRE_POLICY)
    message["From"] = formataddr((sender_name, sender))
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message["Date"] = format_datetime(date)
    for name, value in AUTO_HEADERS.items():
        message[name] = value
    for name in THREAD_HEADERS:
        if headers.get(name):
            message[name] = headers[name]
    message["X-Bevilling-Ref"] = ref
    message.set_content(body_text, subtype="plain", charset="utf-8")
    message.add_alternative(body_html, subtype="html", charset="utf-8")
    for attachment in attachments:
        maintype, _, subtype = attachment["content_type"].partition("/")
        params = {}
        if attachment.get("method"):
            params["method"] = attachment["method"]
        message.add_attachment(
            base64.b64decode(attachment["data"]), maintype=maintype, subtype=subtype,
            filename=attachment["filename"], params=params,
        )
    return message


def wire_bytes(message: EmailMessage) -> bytes:
    """The message flattened for SMTP DATA: 7-bit, CRLF (Bcc is never set on our messages)."""
    buffer = BytesIO()
    BytesGenerator(buffer, policy=WIRE_POLICY).flatten(message)
    return buffer.getvalue()


class _SlowPathError(ValueError):
    """A value the fast builder does not handle; `wire_message` falls back to the policy path."""


# Characters an RFC 2047 Q encoded word may carry literally in any header (RFC 2047 §5 (3)).
_Q_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!*+-/")
_Q_CHAR = {chr(i): chr(i) if chr(i) in _Q_SAFE else "_" if i == 32 else f"={i:02X}"
           for i in range(128)}
_EW_BUDGET = 56  # encoded text per word: "Subject: " + "=?utf-8?q?" + 56 + "?=" stays <= 78


def _q_char(char: str) -> str:
    found = _Q_CHAR.get(char)
    if found is not None:
        return found
    return "".join(f"={byte:02X}" for byte in char.encode("utf-8"))


@lru_cache(maxsize=256)
def _encoded_words(value: str) -> tuple[str, ...]:
    """RFC 2047 Q encoded words of at most 68 characters, never splitting a character.

    Cached: the sender's name is the same on every mail (callers only join the words).
    """
    words: list[str] = []
    current: list[str] = []
    size = 0
    for encoded in [_Q_CHAR.get(char) or _q_char(char) for char in value]:
        if size + len(encoded) > _EW_BUDGET and current:
            words.append("=?utf-8?q?" + "".join(current) + "?=")
            current, size = [], 0
        current.append(encoded)
        size += len(encoded)
    if current:
        words.append("=?utf-8?q?" + "".join(current) + "?=")
    return tuple(words)


def _fold(name: str, words: Sequence[str]) -> str:
    """`Name: value` folded at the given word boundaries to lines of at most 78 characters."""
    lines: list[str] = []
    line = f"{name}:"
    for word in words:
        if len(line) + 1 + len(word) > 78 and line != f"{name}:":
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    if max(len(each) for each in lines) > 998:
        raise _SlowPathError(name)
    return "\r\n".join(lines) + "\r\n"


def _header(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise _SlowPathError(name)  # the policy refuses it with a ValueError
    if not value.isascii() or "=?" in value or "\t" in value or "  " in value:
        if name != "Subject" or "=?" in value:
            raise _SlowPathError(name)
        return _fold(name, _encoded_words(value))
    if not value or value != value.strip():
        raise _SlowPathError(name)
    return _fold(name, value.split(" "))


def _address(name: str, address: str) -> str:
    if "\r" in name or "\n" in name or not name.isprintable():
        raise _SlowPathError("From")
    if not address.isascii() or "<" in address or ">" in address or " " in address:
        raise _SlowPathError("From")
    if name.isascii():
        return formataddr((name, address))
    if not name or name != name.strip() or "  " in name:
        raise _SlowPathError("From")
    # One encoded word: the address parser joins several with a space between them.
    words = _encoded_words(name)
    if len(words) != 1:
        raise _SlowPathError("From")
    return f"{words[0]} <{address}>"


def _text_part(subtype: str, text: str, *, boundary: str) -> bytes:
    """A text part, lines normalised as `set_content` does: 7bit if it may be, else QP, CRLF."""
    lines = text.encode("utf-8").splitlines()
    # 7bit text is sent as is, so it must not contain the boundary (QP escapes every "=").
    if all(len(line) <= 78 and line.isascii() and b"=_" not in line for line in lines):
        cte, encoded = "7bit", b"\r\n".join(lines) + b"\r\n"
    else:
        cte = "quoted-printable"
        encoded = binascii.b2a_qp(b"\n".join(lines) + b"\n", quotetabs=False, istext=True)
        encoded = encoded.replace(b"\n", b"\r\n")
    head = (f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: {cte}\r\n\r\n")
    return head.encode("ascii") + encoded + b"\r\n"


def wire_message(
    recipients: Sequence[str], *, subject: str, message_id: str, ref: str, body_text: str,
    body_html: str, attachments: Sequence[Mapping[str, Any]], headers: Mapping[str, str],
    sender: str, sender_name: str, date: datetime,
) -> bytes:
    """`wire_bytes(compose_message(...))` without the policy's header refolding.

    The same message after parsing (headers, both parts and attachments decode identically; 7bit
    or quoted-printable text as the policy picks it, except QP where the policy would pick base64
    for mostly non-Latin text; base64 attachments; CRLF), written as bytes directly: the
    policy-driven path costs ~8 ms per mail. Anything unusual (a non-ASCII address or filename,
    an encoded-word lookalike, a long non-ASCII sender name) takes that path instead. Boundaries
    derive from the Message-ID; quoted-printable and base64 text cannot contain them ("=_" is no
    QP escape) and 7bit text that does is sent as QP.
    """
    try:
        return _fast_wire(
            recipients, subject=subject, message_id=message_id, ref=ref, body_text=body_text,
            body_html=body_html, attachments=attachments, headers=headers, sender=sender,
            sender_name=sender_name, date=date)
    except _SlowPathError:
        return wire_bytes(compose_message(
            recipients, subject=subject, message_id=message_id, ref=ref, body_text=body_text,
            body_html=body_html, attachments=attachments, headers=headers, sender=sender,
            sender_name=sender_name, date=date))


def _fast_wire(
    recipients: Sequence[str], *, subject: str, message_id: str, ref: str, body_text: str,
    body_html: str, attachments: Sequence[Mapping[str, Any]], headers: Mapping[str, str],
    sender: str, sender_name: str, date: datetime,
) -> bytes:
    for recipient in recipients:
        if not recipient.isascii() or "," in recipient or " " in recipient:
            raise _SlowPathError("To")
    out = [
        _fold("From", _address(sender_name, sender).split(" ")),
        _fold("To", ", ".join(recipients).split(" ")),
        _header("Subject", subject),
        _header("Message-ID", message_id),
        _header("Date", format_datetime(date)),
    ]
    out += [_header(name, value) for name, value in AUTO_HEADERS.items()]
    out += [_header(name, headers[name]) for name in THREAD_HEADERS if headers.get(name)]
    out.append(_header("X-Bevilling-Ref", ref))
    out.append("MIME-Version: 1.0\r\n")
    seed = hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:24]
    alternative = f"=_alt_{seed}"
    body: list[bytes] = []
    if attachments:
        mixed = f"=_mix_{seed}"
        out.append(f'Content-Type: multipart/mixed; boundary="{mixed}"\r\n\r\n')
        body.append(f'--{mixed}\r\nContent-Type: multipart/alternative;\r\n'
                    f' boundary="{alternative}"\r\n\r\n'.encode("ascii"))
    else:
        out.append(f'Content-Type: multipart/alternative;\r\n boundary="{alternative}"\r\n\r\n')
    for subtype, text in (("plain", body_text), ("html", body_html)):
        body.append(_text_part(subtype, text, boundary=alternative))
    body.append(f"--{alternative}--\r\n".encode("ascii"))
    if attachments:
        body.append(b"\r\n")
        for attachment in attachments:
            body.append(_attachment_part(attachment, boundary=mixed))
        body.append(f"--{mixed}--\r\n".encode("ascii"))
    return "".join(out).encode("ascii") + b"".join(body)


_TOKEN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~")
_PARAM_SAFE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !#$%&'()*+,-./:;<=>?@[]^_`{|}~")


def _attachment_part(attachment: Mapping[str, Any], *, boundary: str) -> bytes:
    maintype, _, subtype = str(attachment["content_type"]).partition("/")
    filename = str(attachment["filename"])
    method = attachment.get("method")
    checked = [maintype, subtype] + ([str(method)] if method else [])
    if not all(part and set(part) <= _TOKEN for part in checked):
        raise _SlowPathError("Content-Type")
    if not filename or not set(filename) <= _PARAM_SAFE or len(filename) > 40:
        raise _SlowPathError("Content-Disposition")
    content_type = f"{maintype}/{subtype}" + (f'; method="{method}"' if method else "")
    data = base64.encodebytes(base64.b64decode(attachment["data"])).replace(b"\n", b"\r\n")
    head = (f"--{boundary}\r\nContent-Transfer-Encoding: base64\r\n"
            f'Content-Disposition: attachment; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n")
    return head.encode("ascii") + data + b"\r\n"


def build_message(
    mail: ClaimedMail, *, sender: str, sender_name: str, now: datetime
) -> EmailMessage:
    """A claimed row's message; Date is the enqueue time (`now` only if that is unknown)."""
    enqueued = mail.headers.get("Date-Enqueued")
    return compose_message(
        mail.recipients, subject=mail.subject, message_id=mail.message_id,
        ref=mail.subject_ref or mail.key, body_text=mail.body_text, body_html=mail.body_html,
        attachments=mail.attachments, headers=mail.headers, sender=sender,
        sender_name=sender_name, date=datetime.fromisoformat(enqueued) if enqueued else now)


def raw_message_for(
    mail: ClaimedMail, *, sender: str, sender_name: str, now: datetime
) -> bytes:
    """The bytes to send: those stored at enqueue, or built now for a row enqueued before 0003."""
    if mail.raw_message is not None:
        return mail.raw_message
    return wire_bytes(build_message(mail, sender=sender, sender_name=sender_name, now=now))


def envelope_sender(outbox_id: int, *, domain: str) -> str:
    """VERP return path so a bounce names the outbox row it is about."""
    return str(Address(username=f"bounce+{outbox_id}", domain=domain))
