"""May this step be answered now, and by whom? One rule each for every door (reply, confirm link,
any later one): `answer_refusal` looks at the step, `answerer_refusal` at the person answering.
"""

from collections.abc import Iterable
from datetime import date, datetime
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
    if (step.state in (StepState.VOID, StepState.SUPERSEDED) or step.version != request.version
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


class StepPeople(Protocol):
    """Who a step belongs to: the person holding it and whom they stand in for, if anyone."""

    @property
    def approver_id(self) -> int: ...
    @property
    def on_behalf_of_id(self) -> int | None: ...


class CoverFacts(Protocol):
    """A delegation as the rule reads it: `substitute_id` answers for `person_id`, both days in."""

    @property
    def person_id(self) -> int: ...
    @property
    def substitute_id(self) -> int: ...
    @property
    def starts(self) -> date: ...
    @property
    def ends(self) -> date: ...


def principal_of(step: StepPeople) -> int:
    """The person a step belongs to: the one a substitute stands in for, else the approver."""
    return step.on_behalf_of_id if step.on_behalf_of_id is not None else step.approver_id


def holder_on(
    principal: int, *, requester: int, delegations: Iterable[CoverFacts], day: date
) -> tuple[int, int | None] | None:
    """Who should hold `principal`'s step on `day`: (approver, on behalf of), or None to keep it.

    The principal's substitute on the day (the latest-starting delegation covering it), on
    behalf of the principal; the principal themself when no delegation covers the day. None
    when the day's substitute is the requester: the step stays where it is (one level only, and
    never to the requester).
    """
    covering = [c for c in delegations if c.person_id == principal and c.starts <= day <= c.ends]
    if not covering:
        return principal, None
    substitute = max(covering, key=lambda c: c.starts).substitute_id
    if substitute in (requester, principal):
        return None
    return substitute, principal


def answerer_refusal(
    step: StepPeople, *, person: int | None, requester: int, delegations: Iterable[CoverFacts],
    day: date,
) -> Refusal | None:
    """None when `person` may answer the step on `day`; otherwise why not.

    May answer: the step's approver, the person the step belongs to (`on_behalf_of`), or a
    direct substitute of that person on a delegation covering `day`. Never the requester (even
    if a step was somehow given to them), never a substitute's substitute (a delegation of the
    approver who is already standing in for someone is not followed). `delegations` is read
    only when the person is neither of the first two, so a caller may pass a lazy query.
    """
    if person is None:
        return Refusal.NOT_APPROVER
    if person == requester:
        return Refusal.REQUESTER
    principal = principal_of(step)
    if person in (step.approver_id, principal):
        return None
    for cover in delegations:
        if (cover.person_id == principal and cover.substitute_id == person
                and cover.starts <= day <= cover.ends):
            return None
    return Refusal.NOT_APPROVER


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
    Refusal.REQUESTER: "requester",
    Refusal.NOT_APPROVER: "sender",
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
    if refusal is Refusal.REQUESTER:
        return "the requester cannot decide their own request"
    if refusal is Refusal.NOT_APPROVER:
        return "neither the approver nor their direct substitute today"
    return step.state.value
