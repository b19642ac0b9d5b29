"""May this step be answered now? One rule for every door (reply, confirm link, any later one)."""

from datetime import datetime
from typing import Protocol

from domain.approval_state import RequestState, StepState
from domain.errors import Refusal


class StepFacts(Protocol):
    """What the rule reads of a step."""

    @property
    def id(self) -> int | None: ...
    @property
    def version(self) -> str: ...
    @property
    def state(self) -> StepState: ...


class RequestFacts(Protocol):
    """What the rule reads of a request."""

    @property
    def version(self) -> str: ...
    @property
    def state(self) -> RequestState: ...


class TokenFacts(Protocol):
    """What the rule reads of the token the answer came with."""

    @property
    def step_id(self) -> int: ...
    @property
    def version(self) -> str: ...
    @property
    def used_at(self) -> datetime | None: ...
    @property
    def expires_at(self) -> datetime: ...


def answer_refusal(
    step: StepFacts, request: RequestFacts, token: TokenFacts | None, *, now: datetime
) -> Refusal | None:
    """None when the step waits for this answer now; otherwise the first reason it does not.

    The order is what the person needs to hear first: a replaced version before a decided
    step, a decided step before an expired link.
    """
    if token is not None and token.step_id != step.id:
        return Refusal.INVALID
    if (step.state is StepState.VOID or step.version != request.version
            or (token is not None and token.version != request.version)):
        return Refusal.OUTDATED
    if step.state in (StepState.APPROVED, StepState.REJECTED):
        return Refusal.DECIDED
    if step.state is StepState.SKIPPED:
        return Refusal.SKIPPED
    if request.state is not RequestState.PENDING:
        return Refusal.CLOSED
    if step.state is not StepState.PENDING:
        return Refusal.INACTIVE
    if token is not None and token.used_at is not None:
        return Refusal.USED
    if token is not None and token.expires_at <= now:
        return Refusal.EXPIRED
    return None


# The words the reply path has recorded since the first release (`refused-<word>` outcomes and
# the notices approvers get); the confirm page tells the finer reason itself.
_REPLY_WORDS = {
    Refusal.INVALID: "not-found",
    Refusal.OUTDATED: "outdated",
    Refusal.DECIDED: "decided",
    Refusal.SKIPPED: "decided",
    Refusal.CLOSED: "decided",
    Refusal.INACTIVE: "decided",
    Refusal.USED: "decided",
    Refusal.EXPIRED: "expired",
}


def reply_word(refusal: Refusal) -> str:
    """The short word an inbound outcome and a notice use for a refusal."""
    return _REPLY_WORDS[refusal]


def refusal_detail(
    refusal: Refusal, *, step: StepFacts, request: RequestFacts, token: TokenFacts | None
) -> str:
    """The facts behind a refusal, for the inbound log and the audit trail (not for people)."""
    if refusal is Refusal.OUTDATED:
        return f"version {step.version} was replaced by {request.version}"
    if refusal is Refusal.CLOSED:
        return f"request is {request.state.value}"
    if refusal is Refusal.USED:
        return "token already used"
    if refusal is Refusal.EXPIRED and token is not None:
        return token.expires_at.isoformat()
    if refusal is Refusal.INVALID:
        return "token does not belong to the step"
    return step.state.value
