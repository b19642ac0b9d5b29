"""The approval state machine: one table of legal transitions, and the pure decision rules.

Every state change of a request or a step goes through `REQUEST_TRANSITIONS` or
`STEP_TRANSITIONS`; a move that is not in the table raises `IllegalTransition`.

Decision rules (`decide`):
- a stage of kind `approve` completes when its mode is satisfied by approvals (all: every step
  approved; any: one; quorum: N); its remaining open steps become `skipped`;
- a reject on an `approve` stage is a veto: the request is rejected at once and every other open
  step is skipped. (This also covers "a quorum/all stage that can no longer be satisfied": only a
  reject can make it so.) A snapshot whose active approve stage is unsatisfiable for any other
  reason (e.g. void steps) is rejected too;
- a stage of kind `consult` counts answers, not approvals: an approve or a reject is recorded,
  and the stage completes when enough people have answered (all / one / N). A consult reject
  never rejects the request — it is advice for the deciding stages;
- when every stage of the current order group is complete, the next group is activated
  (waiting → pending); when no group is left, the request is approved.
When a request gets a new version, every step of the old one reads `superseded`
(`supersede_for_new_version`), decided or not: its decision and time stay in their own columns as
history, but no step of a replaced version reads as if it still counted. `void` is for a step
that gave its place to an escalation within the same version.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from domain.approval_policy import StageKind, StageMode
from domain.errors import BevillingError


class RequestState(StrEnum):
    """Life cycle of a budget request."""

    DRAFT = "draft"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class RequestEvent(StrEnum):
    """What can happen to a request."""

    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"
    WITHDRAW = "withdraw"
    REVISE = "revise"  # a new version: the steps are voided and the request routed again


class StepState(StrEnum):
    """Life cycle of one approver's step."""

    WAITING = "waiting"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SKIPPED = "skipped"
    VOID = "void"
    SUPERSEDED = "superseded"  # the request got a new version; this step belongs to the old one


class StepEvent(StrEnum):
    """What can happen to a step."""

    ACTIVATE = "activate"
    APPROVE = "approve"
    REJECT = "reject"
    SKIP = "skip"
    VOID = "void"
    SUPERSEDE = "supersede"


class Verdict(StrEnum):
    """An approver's answer."""

    APPROVE = "approve"
    REJECT = "reject"


_R, _RE, _S, _SE = RequestState, RequestEvent, StepState, StepEvent

REQUEST_TRANSITIONS: dict[tuple[RequestState, RequestEvent], RequestState] = {
    (_R.DRAFT, _RE.SUBMIT): _R.PENDING,
    (_R.DRAFT, _RE.WITHDRAW): _R.WITHDRAWN,
    (_R.DRAFT, _RE.REVISE): _R.DRAFT,
    (_R.PENDING, _RE.APPROVE): _R.APPROVED,
    (_R.PENDING, _RE.REJECT): _R.REJECTED,
    (_R.PENDING, _RE.WITHDRAW): _R.WITHDRAWN,
    (_R.PENDING, _RE.REVISE): _R.DRAFT,
}

STEP_TRANSITIONS: dict[tuple[StepState, StepEvent], StepState] = {
    (_S.WAITING, _SE.ACTIVATE): _S.PENDING,
    (_S.WAITING, _SE.SKIP): _S.SKIPPED,
    (_S.WAITING, _SE.VOID): _S.VOID,
    (_S.PENDING, _SE.APPROVE): _S.APPROVED,
    (_S.PENDING, _SE.REJECT): _S.REJECTED,
    (_S.PENDING, _SE.SKIP): _S.SKIPPED,
    (_S.PENDING, _SE.VOID): _S.VOID,
    # a new version replaces every step of the old one, whatever it reads
    **{(state, _SE.SUPERSEDE): _S.SUPERSEDED
       for state in (_S.WAITING, _S.PENDING, _S.APPROVED, _S.REJECTED, _S.SKIPPED, _S.VOID)},
}

TERMINAL_REQUEST_STATES = frozenset({_R.APPROVED, _R.REJECTED, _R.WITHDRAWN})
OPEN_STEP_STATES = frozenset({_S.WAITING, _S.PENDING})


class IllegalTransition(BevillingError):
    """A move that the transition table does not allow; carries where it happened."""

    def __init__(
        self, *, request_key: str | None, step: int | None, state: str, event: str
    ) -> None:
        self.request_key = request_key
        self.step = step
        self.state = state
        self.event = event
        where = f"request {request_key}" if request_key is not None else "request"
        if step is not None:
            where += f", step {step}"
        super().__init__(f"{where}: cannot {event} when {state}")


def next_request_state(
    state: RequestState, *, event: RequestEvent, request_key: str | None = None
) -> RequestState:
    """The request state after `event`; IllegalTransition if the table has no such move."""
    try:
        return REQUEST_TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(
            request_key=request_key, step=None, state=state, event=event
        ) from None


def next_step_state(
    state: StepState, *, event: StepEvent, request_key: str | None = None, step: int | None = None
) -> StepState:
    """The step state after `event`; IllegalTransition if the table has no such move."""
    try:
        return STEP_TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(
            request_key=request_key, step=step, state=state, event=event
        ) from None


@dataclass(frozen=True)
class StepSnapshot:
    """One step as stored: its stage (order, mode, quorum, kind), state and approver."""

    step_id: int
    stage_key: str
    order: int
    mode: StageMode
    quorum: int | None
    state: StepState
    approver_email: str
    kind: StageKind = "approve"


@dataclass(frozen=True)
class DecisionOutcome:
    """What to persist: every step change (activations included) and the request's state."""

    step_changes: list[tuple[int, StepState]]
    activated_step_ids: list[int]
    request_state: RequestState
    finished: bool


class _Run:
    """Working copy of a snapshot; every change goes through the transition table."""

    def __init__(self, steps: Sequence[StepSnapshot], *, request_key: str) -> None:
        self.steps = {step.step_id: step for step in steps}
        self.state = {step.step_id: step.state for step in steps}
        self._by_stage: dict[str, list[int]] = {}
        for step in steps:
            self._by_stage.setdefault(step.stage_key, []).append(step.step_id)
        self.request_key = request_key
        self.changes: list[tuple[int, StepState]] = []

    def move(self, step_id: int, event: StepEvent) -> None:
        new = next_step_state(
            self.state[step_id], event=event, request_key=self.request_key, step=step_id
        )
        self.state[step_id] = new
        self.changes.append((step_id, new))

    def stage_ids(self, stage_key: str) -> list[int]:
        return list(self._by_stage.get(stage_key, ()))

    def open_ids(self) -> list[int]:
        return [i for i in self.steps if self.state[i] in OPEN_STEP_STATES]

    def _count(self, stage_key: str) -> tuple[int, int, int]:
        """(steps that count, answers that count towards completion, still open)."""
        ids = [i for i in self.stage_ids(stage_key) if self.state[i] is not _S.VOID]
        first = self.steps[ids[0]] if ids else None
        answered = {_S.APPROVED} if first is None or first.kind == "approve" else {
            _S.APPROVED, _S.REJECTED
        }
        done = sum(1 for i in ids if self.state[i] in answered)
        still_open = sum(1 for i in ids if self.state[i] in OPEN_STEP_STATES)
        return len(ids), done, still_open

    def _needed(self, stage_key: str, total: int) -> int:
        step = self.steps[self.stage_ids(stage_key)[0]]
        if step.mode == "quorum":
            return step.quorum if step.quorum is not None else total
        return 1 if step.mode == "any" else total

    def complete(self, stage_key: str) -> bool:
        total, done, still_open = self._count(stage_key)
        if total == 0:
            return False
        if self.steps[self.stage_ids(stage_key)[0]].kind == "consult" and still_open == 0:
            return True  # everybody consulted has answered; advice cannot block
        return done >= self._needed(stage_key, total)

    def unsatisfiable(self, stage_key: str) -> bool:
        total, done, still_open = self._count(stage_key)
        return done + still_open < self._needed(stage_key, total)

    def group_keys(self, order: int) -> list[str]:
        return sorted({s.stage_key for s in self.steps.values() if s.order == order})

    def finish(self, *, request_state: RequestState, event: RequestEvent) -> DecisionOutcome:
        for step_id in self.open_ids():
            self.move(step_id, StepEvent.SKIP)
        final = next_request_state(request_state, event=event, request_key=self.request_key)
        return DecisionOutcome(self.changes, [], final, finished=True)

    def advance(self, *, request_state: RequestState) -> DecisionOutcome:
        """Skip what completed stages no longer need, activate the next group or finish."""
        for order in sorted({step.order for step in self.steps.values()}):
            keys = self.group_keys(order)
            for key in keys:
                ids = self.stage_ids(key)
                if self.complete(key):
                    for step_id in ids:
                        if self.state[step_id] in OPEN_STEP_STATES:
                            self.move(step_id, StepEvent.SKIP)
                elif self.steps[ids[0]].kind == "approve" and self.unsatisfiable(key):
                    return self.finish(request_state=request_state, event=RequestEvent.REJECT)
            if not all(self.complete(key) for key in keys):
                waiting = [
                    i for key in keys for i in self.stage_ids(key) if self.state[i] is _S.WAITING
                ]
                for step_id in waiting:
                    self.move(step_id, StepEvent.ACTIVATE)
                return DecisionOutcome(self.changes, waiting, request_state, finished=False)
        return self.finish(request_state=request_state, event=RequestEvent.APPROVE)


def start(
    steps: Sequence[StepSnapshot], *, request_key: str, request_state: RequestState
) -> DecisionOutcome:
    """Submit a request: activate its first order group (ValueError when it has no steps)."""
    if not steps:
        raise ValueError(f"request {request_key} has no steps to start")
    pending = next_request_state(
        request_state, event=RequestEvent.SUBMIT, request_key=request_key
    )
    return _Run(steps, request_key=request_key).advance(request_state=pending)


def decide(
    steps: Sequence[StepSnapshot],
    *,
    step_id: int,
    verdict: Verdict,
    request_key: str,
    request_state: RequestState,
) -> DecisionOutcome:
    """Apply one approver's verdict to a pending step and work out what follows."""
    run = _Run(steps, request_key=request_key)
    if step_id not in run.steps:
        raise LookupError(f"request {request_key} has no step {step_id}")
    if request_state is not RequestState.PENDING:
        raise IllegalTransition(
            request_key=request_key, step=step_id, state=request_state, event=verdict
        )
    run.move(step_id, StepEvent.APPROVE if verdict is Verdict.APPROVE else StepEvent.REJECT)
    if verdict is Verdict.REJECT and run.steps[step_id].kind == "approve":
        return run.finish(request_state=request_state, event=RequestEvent.REJECT)
    return run.advance(request_state=request_state)


def supersede_for_new_version(
    steps: Sequence[StepSnapshot], *, request_key: str
) -> list[tuple[int, StepState]]:
    """Every step of the replaced version becomes `superseded` (already superseded ones stay)."""
    run = _Run(steps, request_key=request_key)
    for step in steps:
        if run.state[step.step_id] is not _S.SUPERSEDED:
            run.move(step.step_id, StepEvent.SUPERSEDE)
    return run.changes
