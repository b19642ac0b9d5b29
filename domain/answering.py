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
