"""The approval state machine: the transition tables and the decision rules, without a database."""

from collections.abc import Sequence
from dataclasses import replace
from itertools import product
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.approval_state import (
    REQUEST_TRANSITIONS,
    STEP_TRANSITIONS,
    TERMINAL_REQUEST_STATES,
    DecisionOutcome,
    IllegalTransition,
    RequestEvent,
    RequestState,
    StepEvent,
    StepSnapshot,
    StepState,
    Verdict,
    decide,
    next_request_state,
    next_step_state,
    start,
    supersede_for_new_version,
)

R, RE, S, SE = RequestState, RequestEvent, StepState, StepEvent
KEY = "BA-2026-007"

# The tables written out independently, so a changed row in the code fails here.
EXPECTED_REQUEST_ROWS = [
    (R.DRAFT, RE.SUBMIT, R.PENDING),
    (R.DRAFT, RE.WITHDRAW, R.WITHDRAWN),
    (R.DRAFT, RE.REVISE, R.DRAFT),
    (R.PENDING, RE.APPROVE, R.APPROVED),
    (R.PENDING, RE.REJECT, R.REJECTED),
    (R.PENDING, RE.WITHDRAW, R.WITHDRAWN),
    (R.PENDING, RE.REVISE, R.DRAFT),
]
EXPECTED_STEP_ROWS = [
    (S.WAITING, SE.ACTIVATE, S.PENDING),
    (S.WAITING, SE.SKIP, S.SKIPPED),
    (S.WAITING, SE.VOID, S.VOID),
    (S.PENDING, SE.APPROVE, S.APPROVED),
    (S.PENDING, SE.REJECT, S.REJECTED),
    (S.PENDING, SE.SKIP, S.SKIPPED),
    (S.PENDING, SE.VOID, S.VOID),
    # issue 10: a new version supersedes every step of the old one, whatever it reads
    (S.WAITING, SE.SUPERSEDE, S.SUPERSEDED),
    (S.PENDING, SE.SUPERSEDE, S.SUPERSEDED),
    (S.APPROVED, SE.SUPERSEDE, S.SUPERSEDED),
    (S.REJECTED, SE.SUPERSEDE, S.SUPERSEDED),
    (S.SKIPPED, SE.SUPERSEDE, S.SUPERSEDED),
    (S.VOID, SE.SUPERSEDE, S.SUPERSEDED),
]


def test_tables_hold_exactly_the_expected_rows() -> None:
    assert {(a, e): b for a, e, b in EXPECTED_REQUEST_ROWS} == REQUEST_TRANSITIONS
    assert {(a, e): b for a, e, b in EXPECTED_STEP_ROWS} == STEP_TRANSITIONS


@pytest.mark.parametrize(("state", "event", "after"), EXPECTED_REQUEST_ROWS)
def test_request_row(state: RequestState, event: RequestEvent, after: RequestState) -> None:
    assert next_request_state(state, event=event, request_key=KEY) is after


@pytest.mark.parametrize(("state", "event", "after"), EXPECTED_STEP_ROWS)
def test_step_row(state: StepState, event: StepEvent, after: StepState) -> None:
    assert next_step_state(state, event=event, request_key=KEY, step=3) is after


ILLEGAL_REQUEST = [
    pair for pair in product(RequestState, RequestEvent) if pair not in REQUEST_TRANSITIONS
]
ILLEGAL_STEP = [pair for pair in product(StepState, StepEvent) if pair not in STEP_TRANSITIONS]


@pytest.mark.parametrize(("state", "event"), ILLEGAL_REQUEST)
def test_illegal_request_move_raises_with_context(
    state: RequestState, event: RequestEvent
) -> None:
    with pytest.raises(IllegalTransition) as exc:
        next_request_state(state, event=event, request_key=KEY)
    assert (exc.value.request_key, exc.value.step, exc.value.state, exc.value.event) == (
        KEY, None, state, event,
    )
    assert f"cannot {event} when {state}" in str(exc.value)


@pytest.mark.parametrize(("state", "event"), ILLEGAL_STEP)
def test_illegal_step_move_raises_with_context(state: StepState, event: StepEvent) -> None:
    with pytest.raises(IllegalTransition) as exc:
        next_step_state(state, event=event, request_key=KEY, step=9)
    assert (exc.value.request_key, exc.value.step, exc.value.state, exc.value.event) == (
        KEY, 9, state, event,
    )


def test_terminal_request_states_have_no_way_out() -> None:
    assert {state for state, _ in REQUEST_TRANSITIONS}.isdisjoint(TERMINAL_REQUEST_STATES)


# --- decisions --------------------------------------------------------------------------------


def snap(step_id: int, stage: str, order: int = 1, **extra: Any) -> StepSnapshot:
    fields: dict[str, Any] = {"mode": "any", "quorum": None, "state": S.WAITING, "kind": "approve"}
    fields.update(extra)
    return StepSnapshot(step_id=step_id, stage_key=stage, order=order,
                        approver_email=f"p{step_id}@aarhus.dk", **fields)


def apply(steps: Sequence[StepSnapshot], outcome: DecisionOutcome) -> list[StepSnapshot]:
    changed = dict(outcome.step_changes)
    return [replace(s, state=changed.get(s.step_id, s.state)) for s in steps]


def states(steps: Sequence[StepSnapshot]) -> dict[int, StepState]:
    return {s.step_id: s.state for s in steps}


def started(steps: list[StepSnapshot]) -> list[StepSnapshot]:
    return apply(steps, start(steps, request_key=KEY, request_state=R.DRAFT))


def act(steps: list[StepSnapshot], step_id: int, verdict: Verdict) -> tuple[
    list[StepSnapshot], DecisionOutcome
]:
    outcome = decide(steps, step_id=step_id, verdict=verdict, request_key=KEY,
                     request_state=R.PENDING)
    return apply(steps, outcome), outcome


def test_start_activates_only_the_first_group() -> None:
    steps = [snap(1, "chef", 1), snap(2, "it", 1, kind="consult"), snap(3, "sd", 2)]
    outcome = start(steps, request_key=KEY, request_state=R.DRAFT)
    assert outcome.activated_step_ids == [1, 2]
    assert outcome.step_changes == [(1, S.PENDING), (2, S.PENDING)]
    assert (outcome.request_state, outcome.finished) == (R.PENDING, False)


def test_start_needs_a_draft_and_steps() -> None:
    with pytest.raises(IllegalTransition):
        start([snap(1, "chef")], request_key=KEY, request_state=R.APPROVED)
    with pytest.raises(ValueError, match="no steps"):
        start([], request_key=KEY, request_state=R.DRAFT)


def test_any_completes_on_first_approval_and_skips_the_rest() -> None:
    steps = started([snap(1, "chef"), snap(2, "chef"), snap(3, "sd", 2)])
    steps, outcome = act(steps, 1, Verdict.APPROVE)
    assert outcome.step_changes == [(1, S.APPROVED), (2, S.SKIPPED), (3, S.PENDING)]
    assert outcome.activated_step_ids == [3]
    assert outcome.request_state is R.PENDING
    steps, outcome = act(steps, 3, Verdict.APPROVE)
    assert (outcome.request_state, outcome.finished) == (R.APPROVED, True)


def test_all_needs_every_approval() -> None:
    steps = started([snap(1, "board", mode="all"), snap(2, "board", mode="all")])
    steps, outcome = act(steps, 1, Verdict.APPROVE)
    assert (outcome.request_state, outcome.activated_step_ids) == (R.PENDING, [])
    steps, outcome = act(steps, 2, Verdict.APPROVE)
    assert outcome.request_state is R.APPROVED


def test_quorum_completes_at_n_approvals() -> None:
    steps = started([snap(i, "panel", mode="quorum", quorum=2) for i in (1, 2, 3)])
    steps, outcome = act(steps, 3, Verdict.APPROVE)
    assert outcome.request_state is R.PENDING
    steps, outcome = act(steps, 1, Verdict.APPROVE)
    assert outcome.step_changes == [(1, S.APPROVED), (2, S.SKIPPED)]
    assert (outcome.request_state, outcome.finished) == (R.APPROVED, True)


@pytest.mark.parametrize("mode", ["any", "all", "quorum"])
def test_reject_on_approve_stage_rejects_request(mode: str) -> None:
    quorum = 2 if mode == "quorum" else None
    steps = started([
        *(snap(i, "panel", mode=mode, quorum=quorum) for i in (1, 2, 3)),
        snap(4, "it", kind="consult"),
        snap(5, "sd", 2),
    ])
    _, outcome = act(steps, 2, Verdict.REJECT)
    assert outcome.step_changes == [
        (2, S.REJECTED), (1, S.SKIPPED), (3, S.SKIPPED), (4, S.SKIPPED), (5, S.SKIPPED),
    ]
    assert (outcome.request_state, outcome.finished) == (R.REJECTED, True)


def test_consult_reject_is_recorded_but_does_not_reject() -> None:
    steps = started([
        snap(1, "chef"),
        snap(2, "it", mode="quorum", quorum=1, kind="consult"),
        snap(3, "it", mode="quorum", quorum=1, kind="consult"),
        snap(4, "sd", 2),
    ])
    steps, outcome = act(steps, 2, Verdict.REJECT)
    # The answer counts towards the consultation's quorum; the other IT step is not needed.
    assert outcome.step_changes == [(2, S.REJECTED), (3, S.SKIPPED)]
    assert (outcome.request_state, outcome.finished) == (R.PENDING, False)
    steps, outcome = act(steps, 1, Verdict.APPROVE)
    assert outcome.activated_step_ids == [4]
    _, outcome = act(steps, 4, Verdict.APPROVE)
    assert outcome.request_state is R.APPROVED


def test_parallel_group_activates_next_only_when_all_stages_complete() -> None:
    steps = started([
        snap(1, "chef", 1), snap(2, "it", 1, kind="consult", mode="all"),
        snap(3, "it", 1, kind="consult", mode="all"), snap(4, "jura", 2), snap(5, "sd", 3),
    ])
    steps, outcome = act(steps, 1, Verdict.APPROVE)
    assert outcome.activated_step_ids == []
    steps, outcome = act(steps, 2, Verdict.APPROVE)
    assert outcome.activated_step_ids == []
    steps, outcome = act(steps, 3, Verdict.REJECT)
    assert outcome.activated_step_ids == [4]
    assert states(steps)[5] is S.WAITING
    steps, outcome = act(steps, 4, Verdict.APPROVE)
    assert outcome.activated_step_ids == [5]


def test_deciding_a_step_that_is_not_pending_raises() -> None:
    steps = started([snap(1, "chef"), snap(2, "sd", 2)])
    with pytest.raises(IllegalTransition) as exc:
        act(steps, 2, Verdict.APPROVE)
    assert (exc.value.request_key, exc.value.step, exc.value.state, exc.value.event) == (
        KEY, 2, S.WAITING, SE.APPROVE,
    )
    steps, _ = act(steps, 1, Verdict.APPROVE)
    with pytest.raises(IllegalTransition, match="cannot reject when approved"):
        act(steps, 1, Verdict.REJECT)


def test_deciding_on_a_finished_request_raises() -> None:
    steps = started([snap(1, "chef")])
    with pytest.raises(IllegalTransition) as exc:
        decide(steps, step_id=1, verdict=Verdict.APPROVE, request_key=KEY,
               request_state=R.WITHDRAWN)
    assert exc.value.state == R.WITHDRAWN
    with pytest.raises(LookupError, match="no step 99"):
        decide(steps, step_id=99, verdict=Verdict.APPROVE, request_key=KEY,
               request_state=R.PENDING)


def test_a_new_version_supersedes_every_step_of_the_old_one_decided_or_not() -> None:
    steps = started([snap(1, "chef"), snap(2, "chef", mode="all"), snap(3, "sd", 2)])
    steps = [replace(s, mode="all") for s in steps]
    steps, _ = act(steps, 1, Verdict.APPROVE)
    assert supersede_for_new_version(steps, request_key=KEY) == [
        (1, S.SUPERSEDED), (2, S.SUPERSEDED), (3, S.SUPERSEDED)]
    replaced = [replace(s, state=S.SUPERSEDED) for s in steps]
    assert supersede_for_new_version(replaced, request_key=KEY) == []


# --- property: random policies, random decisions ---------------------------------------------


@st.composite
def snapshots(draw: st.DrawFn) -> list[StepSnapshot]:
    steps: list[StepSnapshot] = []
    for index in range(draw(st.integers(1, 4))):
        size = draw(st.integers(1, 3))
        mode = draw(st.sampled_from(["all", "any", "quorum"]))
        quorum = draw(st.integers(1, size)) if mode == "quorum" else None
        kind = draw(st.sampled_from(["approve", "consult"]))
        order = draw(st.integers(1, 3))
        steps.extend(
            snap(len(steps) + 1, f"s{index}", order, mode=mode, quorum=quorum, kind=kind)
            for _ in range(size)
        )
    return steps


@settings(max_examples=200, deadline=None)
@given(steps=snapshots(), data=st.data())
def test_random_decisions_end_in_at_most_one_terminal_state(
    steps: list[StepSnapshot], data: st.DataObject
) -> None:
    outcome = start(steps, request_key=KEY, request_state=R.DRAFT)
    steps, request = apply(steps, outcome), outcome.request_state
    history = [request]
    for _ in range(len(steps) + 3):
        step_id = data.draw(st.sampled_from([s.step_id for s in steps]))
        verdict = data.draw(st.sampled_from(list(Verdict)))
        was = states(steps)[step_id]
        try:
            outcome = decide(steps, step_id=step_id, verdict=verdict, request_key=KEY,
                             request_state=request)
        except IllegalTransition:
            assert request in TERMINAL_REQUEST_STATES or was is not S.PENDING
            continue
        assert request is R.PENDING
        assert was is S.PENDING
        steps, request = apply(steps, outcome), outcome.request_state
        history.append(request)
        assert outcome.finished is (request in TERMINAL_REQUEST_STATES)
    # Keep deciding until done: approve every pending step in turn.
    for _ in range(len(steps)):
        pending = [s.step_id for s in steps if s.state is S.PENDING]
        if request in TERMINAL_REQUEST_STATES:
            assert pending == []
            break
        assert pending, "a pending request must have a pending step"
        outcome = decide(steps, step_id=pending[0], verdict=Verdict.APPROVE, request_key=KEY,
                         request_state=request)
        steps, request = apply(steps, outcome), outcome.request_state
        history.append(request)
    assert request in TERMINAL_REQUEST_STATES
    terminal = [state for state in history if state in TERMINAL_REQUEST_STATES]
    assert len(set(terminal)) == 1
    assert history.index(terminal[0]) == len(history) - len(terminal)  # never leaves it
    assert not any(s.state in (S.WAITING, S.PENDING) for s in steps)
    if request is R.APPROVED:
        assert not any(s.state is S.REJECTED and s.kind == "approve" for s in steps)
