"""Build the RFC 5322 message for an outbox row: both parts, attachments, loop-safe headers."""

import base64
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from models.outbox import ClaimedMail

AUTO_HEADERS = {
    "Auto-Submitted": "auto-generated",
    "X-Auto-Response-Suppress": "OOF, AutoReply",
}
THREAD_HEADERS = ("In-Reply-To", "References", "Reply-To")


def build_message(
    mail: ClaimedMail, *, sender: str, sender_name: str, now: datetime
) -> EmailMessage:
    """The message exactly as it goes on the wire; the Message-ID is the one fixed at enqueue."""
    message = EmailMessage()
    message["From"] = formataddr((sender_name, sender))
    message["To"] = ", ".join(mail.recipients)
    message["Subject"] = mail.subject
    message["Message-ID"] = mail.message_id
    enqueued = mail.headers.get("Date-Enqueued")
    message["Date"] = format_datetime(datetime.fromisoformat(enqueued) if enqueued else now)
    for name, value in AUTO_HEADERS.items():
        message[name] = value
    for name in THREAD_HEADERS:
        if mail.headers.get(name):
            message[name] = mail.headers[name]
    message["X-Bevilling-Ref"] = mail.subject_ref or mail.key
    message.set_content(mail.body_text, subtype="plain", charset="utf-8")
    message.add_alternative(mail.body_html, subtype="html", charset="utf-8")
    for attachment in mail.attachments:
        maintype, _, subtype = attachment["content_type"].partition("/")
        params = {}
        if attachment.get("method"):
            params["method"] = attachment["method"]
        message.add_attachment(
            base64.b64decode(attachment["data"]), maintype=maintype, subtype=subtype,
            filename=attachment["filename"], params=params,
        )
    return message


def envelope_sender(outbox_id: int, *, domain: str) -> str:
    """VERP return path so a bounce names the outbox row it is about."""
    return str(Address(username=f"bounce+{outbox_id}", domain=domain))
