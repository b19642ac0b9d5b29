"""Build the RFC 5322 message for an outbox row: both parts, attachments, loop-safe headers.

One path: an `EmailMessage` built with the SMTP policy (`compose_message`) and flattened by the
email package's generator (`wire_bytes`). The outbox stores each message as wire bytes, built
once at enqueue (`raw_message`) or by the delivery worker before the first attempt: every attempt
then sends exactly the same bytes, and boundaries derived from the Message-ID make two builds of
one mail identical. The bytes are 7-bit (quoted-printable or base64 for non-ASCII text, RFC 2047
for headers) with CRLF line ends, so any SMTP server takes them without 8BITMIME or SMTPUTF8 and
no transport re-encodes them.
"""

import base64
import email.policy
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
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
    # An Address, not formataddr: formataddr's encoded word hides quotes and commas in the name
    # from the quoting, and the reader then splits "Bevilling, Økonomi" into two addresses.
    message["From"] = Address(display_name=sender_name, addr_spec=sender)
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
        if maintype == "text":  # RFC 5545 files are UTF-8; say so, or clients guess
            params["charset"] = "utf-8"
        message.add_attachment(
            base64.b64decode(attachment["data"]), maintype=maintype, subtype=subtype,
            filename=attachment["filename"], params=params,
        )
    _fix_boundaries(message, message_id=message_id, texts=(body_text, body_html))
    return message


def wire_bytes(message: EmailMessage) -> bytes:
    """The message flattened for SMTP DATA: 7-bit, CRLF (Bcc is never set on our messages)."""
    return message.as_bytes(policy=WIRE_POLICY)


def _fix_boundaries(message: EmailMessage, *, message_id: str, texts: Sequence[str]) -> None:
    """Give every multipart a boundary derived from the Message-ID instead of a random one.

    The generator would pick a random boundary on each flattening; a mail rendered by the
    delivery worker must come out byte for byte as the enqueue-time build of it would have.
    Quoted-printable and base64 cannot contain "=_"; 7bit text could, so a boundary found in
    one of the texts is derived again.
    """
    seed = message_id
    for part in message.walk():
        if not part.is_multipart():
            continue
        while True:
            seed = hashlib.sha256(seed.encode("utf-8")).hexdigest()[:24]
            boundary = f"=_{part.get_content_subtype()}_{seed}"
            if not any(boundary in text for text in texts):
                break
        part.set_boundary(boundary)


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


def envelope_sender(outbox_id: int, *, tag: str | None, domain: str) -> str:
    """VERP return path `bounce+<id>-<tag>@domain`: a bounce names the row and proves it saw it.

    Rows enqueued before migration 0005 have no tag and keep `bounce+<id>@`; their bounces are
    recorded and change nothing.
    """
    local = f"bounce+{outbox_id}-{tag}" if tag else f"bounce+{outbox_id}"
    return str(Address(username=local, domain=domain))
