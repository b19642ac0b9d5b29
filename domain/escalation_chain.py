"""Where escalation goes next, and why it always ends: never back to anyone who had the step."""

from collections.abc import Iterable, Set


def next_in_chain(candidates: Iterable[int], *, had: Set[int], requester: int) -> int | None:
    """The first candidate who is neither the requester nor anyone who already had the step.

    Every escalation adds its target to `had`, and there are finitely many people: a chain of
    escalations therefore ends, at the latest when everyone has had the step; None then.
    """
    return next((c for c in candidates if c != requester and c not in had), None)
