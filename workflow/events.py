"""Prefect events the faces emit after a commit, so the deployments triggered on them start at once.

`deliver-outbox` has a trigger on `bevilling.outbox.enqueued` (prefect.yaml) and
`refresh-pending-approvals` one on `bevilling.approval.decided`. An event is a nudge, never the
only way: the outbox rows are already committed, and deliver-outbox's slow schedule picks up
whatever a lost event left. Without a Prefect API (tests without a server, the CLI's direct
mode) nothing is emitted and no temporary server is started for it.
"""

import logging
import os
import sys

OUTBOX_ENQUEUED = "bevilling.outbox.enqueued"
APPROVAL_DECIDED = "bevilling.approval.decided"
OUTBOX_RESOURCE = "bevilling.outbox"

log = logging.getLogger(__name__)


def _api_configured() -> bool:
    if os.environ.get("PREFECT_API_URL", "").strip():
        return True
    if "prefect.settings" not in sys.modules:  # Prefect not loaded: certainly no server in use
        return False
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


def prepare_events() -> bool:
    """Load Prefect's event client ahead of the first decision (the page, the receiver)."""
    if not _api_configured():
        return False
    import prefect.events  # noqa: F401  # ~1 s once per process, not during a decision

    return True


def announce(event: str, *, count: int = 1, source: str, request_key: str | None = None) -> None:
    """Emit `event` (about the outbox) after a commit; a failure is logged, never raised."""
    if count <= 0 or not _api_configured():
        return
    from prefect.events import emit_event

    payload: dict[str, object] = {"count": count, "source": source}
    if request_key:
        payload["request"] = request_key
    try:
        emit_event(event, resource={"prefect.resource.id": OUTBOX_RESOURCE,
                                    "prefect.resource.name": "bevilling outbox"},
                   payload=payload)
    except Exception:  # the schedule is the safety net; a decision must not fail for a nudge
        log.warning("could not emit %s", event, exc_info=True)


def announce_decision(*, source: str, request_key: str | None) -> None:
    """After a decision's commit: mail is waiting, and the pending approvals have changed."""
    announce(OUTBOX_ENQUEUED, source=source, request_key=request_key)
    announce(APPROVAL_DECIDED, source=source, request_key=request_key)
