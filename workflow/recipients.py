"""Which addresses the SMTP receiver accepts at RCPT: only tokens and bounce tags we issued.

A hash lookup per RCPT, so a message to a token that never existed is refused before its sender
transmits a byte of content (and nothing of it is stored). A used or expired token still exists:
its mail is accepted and ingestion tells the sender why it changed nothing, as before.
"""

import hmac

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from mail.inbound_parse import token_from_recipients, verp_address
from models import ApprovalToken, Outbox
from workflow.tokens import token_hash


def issued_recipient(engine: Engine, address: str, *, domain: str) -> bool:
    """True for `approvals+<token>@` of a stored token and `bounce+<id>-<tag>@` of that row."""
    token = token_from_recipients([address], domain=domain)
    if token is not None:
        with Session(engine) as session:
            found = session.execute(select(col(ApprovalToken.id)).where(
                col(ApprovalToken.token_hash) == token_hash(token)).limit(1)).first()
        return found is not None
    verp = verp_address([address], domain=domain)
    if verp is None:
        return False
    with Session(engine) as session:
        row = session.execute(select(col(Outbox.bounce_tag)).where(
            col(Outbox.id) == verp.outbox_id)).first()
    if row is None:
        return False
    row_tag: str | None = row[0]
    if row_tag is None or verp.tag is None:
        # A row from before the tags answers only to its untagged address (recorded, no effect).
        return row_tag is None and verp.tag is None
    return hmac.compare_digest(row_tag.encode(), verp.tag.encode())
