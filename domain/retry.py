"""An outbox row's life cycle, and the backoff for transient delivery failures (the random draw
is passed in to keep this pure)."""

from datetime import timedelta
from enum import StrEnum


class OutboxState(StrEnum):
    """Life cycle of one outbox row: pending → sending (claimed) → sent, or failed for good."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


def retry_delay(
    attempt: int, *, base_seconds: float, cap_seconds: float = 3600.0, jitter: float = 0.2,
    draw: float = 0.5,
) -> timedelta:
    """Exponential backoff `base * 2^(attempt-1)`, capped, spread ±jitter by `draw` ∈ [0, 1]."""
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if not 0.0 <= draw <= 1.0:
        raise ValueError("draw must be within [0, 1]")
    raw = min(cap_seconds, base_seconds * (2 ** min(attempt - 1, 30)))
    spread = 1.0 + jitter * (2.0 * draw - 1.0)
    return timedelta(seconds=max(1.0, raw * spread))
