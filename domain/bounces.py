"""Is this delivery report about a mail we sent? Only then may it re-route a step.

Pure: stdlib only. A report is ours when the VERP address it came to carries the random tag we
put on that outbox row (compared in constant time), and the message it reports on is that row's
(its Message-ID) sent to that row's recipient. Anyone can send a `multipart/report` to any
address; only the receiving MTA of our own mail learns the tag, the Message-ID and the recipient.
"""

import hmac
import re
from collections.abc import Iterable
from enum import StrEnum

__all__ = ["BounceMismatch", "bounce_mismatch"]

_MSG_ID = re.compile(r"<[^<>\s]+>")


class BounceMismatch(StrEnum):
    """Why a delivery report is not believed."""

    NO_TAG = "the bounce address carries no tag"
    ROW_UNTAGGED = "the outbox row has no bounce tag (enqueued before tags)"
    WRONG_TAG = "the bounce address's tag is not the row's"
    NO_ORIGINAL_ID = "the report names no original Message-ID"
    WRONG_ORIGINAL_ID = "the report's original Message-ID is not the row's"
    NO_RECIPIENT = "the report names no recipient"
    WRONG_RECIPIENT = "the report's recipient is not the row's"


def _angle(message_id: str) -> str:
    found = _MSG_ID.findall("".join(message_id.split()))
    return found[0].lower() if found else ""


def bounce_mismatch(
    *,
    claimed_tag: str | None,
    row_tag: str | None,
    original_message_id: str | None,
    row_message_id: str,
    recipients: Iterable[str | None],
    row_recipients: Iterable[str],
) -> BounceMismatch | None:
    """None when the report is about this outbox row, else the first reason it is not."""
    if not claimed_tag:
        return BounceMismatch.NO_TAG
    if not row_tag:
        return BounceMismatch.ROW_UNTAGGED
    if not hmac.compare_digest(claimed_tag.lower().encode(), row_tag.lower().encode()):
        return BounceMismatch.WRONG_TAG
    if not original_message_id or not _angle(original_message_id):
        return BounceMismatch.NO_ORIGINAL_ID
    if _angle(original_message_id) != _angle(row_message_id):
        return BounceMismatch.WRONG_ORIGINAL_ID
    named = {r.strip().strip("<>").lower() for r in recipients if r and r.strip()}
    if not named:
        return BounceMismatch.NO_RECIPIENT
    if not named & {r.strip().lower() for r in row_recipients}:
        return BounceMismatch.WRONG_RECIPIENT
    return None
