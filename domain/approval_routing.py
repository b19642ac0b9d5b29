"""Routing: which stages of a policy a request passes, and who gets a step in each.

Pure: people, delegations, the calendar and `today` are passed in. Rules, in order, per stage:
1. the condition decides whether the stage applies (else it is listed as skipped, with why);
2. approver refs resolve to people (a role → every active holder; inactive people are dropped);
3. separation of duties: the requester is removed;
4. delegation: an approver whose delegation covers `today` is replaced by the substitute, with
   `on_behalf_of_email` set; a substitute who is the requester is replaced by the escalation
   target (still on behalf of the original approver);
5. one person never gets two steps in a stage;
6. if the stage can no longer reach its mode (no step at all, or fewer than the quorum), the
   escalation target is added (`escalate_to`, else the requester's manager) and the reason
   recorded; if that is still not enough, `RoutingError`.
The stage's mode and quorum never change; the escalation target only fills the missing seats.
Delegations are followed one level only (a substitute's own delegation is ignored).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from domain.approval_policy import ApprovalPolicy, ApproverRef, StagePolicy
from domain.errors import InputError
from domain.working_days import WorkingCalendar


class RoutingError(InputError):
    """A request cannot be routed: a stage cannot reach its mode even after escalation."""

    def __init__(self, message: str, *, request_key: str, stage_key: str | None = None) -> None:
        self.request_key = request_key
        self.stage_key = stage_key
        where = f"request {request_key}" + (f", stage {stage_key}" if stage_key else "")
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class RequestFacts:
    """What routing needs to know about a budget request (money in DKK as Decimal)."""

    key: str
    category: str
    requester_email: str
    total_max: Decimal
    yearly_max: Decimal
    recurring: bool
    new_theme: bool


@dataclass(frozen=True)
class PersonFacts:
    """A person who may approve: roles, manager and whether they are still active."""

    email: str
    name: str
    roles: frozenset[str]
    manager_email: str | None
    active: bool = True


@dataclass(frozen=True)
class Delegation:
    """`person_email` is replaced by `substitute_email` from `starts` to `ends`, both inclusive."""

    person_email: str
    substitute_email: str
    starts: date
    ends: date

    def __post_init__(self) -> None:
        if self.ends < self.starts:
            raise ValueError(f"delegation ends {self.ends} before it starts {self.starts}")

    def covers(self, day: date) -> bool:
        """True when `day` lies within the delegation (ends inclusive)."""
        return self.starts <= day <= self.ends


@dataclass(frozen=True)
class PlannedStep:
    """One approver's step; `due_date` is None until the stage is activated."""

    stage_key: str
    approver_email: str
    on_behalf_of_email: str | None
    due_date: date | None


@dataclass(frozen=True)
class PlannedStage:
    """An applicable stage with its steps and the notes explaining any substitution."""

    policy: StagePolicy
    steps: tuple[PlannedStep, ...]
    notes: tuple[str, ...]

    @property
    def key(self) -> str:
        """The stage key."""
        return self.policy.key

    @property
    def order(self) -> int:
        """The stage's order; equal orders run in parallel."""
        return self.policy.order

    def due_date_for(self, activation_day: date, *, calendar: WorkingCalendar) -> date:
        """Due date of this stage's steps when it is activated on `activation_day`."""
        return calendar.add_working_days(activation_day, self.policy.answer_working_days)


@dataclass(frozen=True)
class SkippedStage:
    """A policy stage that does not apply to this request, and why."""

    stage_key: str
    reason: str


@dataclass(frozen=True)
class RoutePlan:
    """Applicable stages in order (first group has due dates) plus the skipped stages."""

    request_key: str
    stages: tuple[PlannedStage, ...]
    skipped: tuple[SkippedStage, ...]

    @property
    def steps(self) -> list[PlannedStep]:
        """Every planned step, stage by stage."""
        return [step for stage in self.stages for step in stage.steps]

    def stage(self, key: str) -> PlannedStage:
        """The planned stage with this key; KeyError if it was skipped or does not exist."""
        for candidate in self.stages:
            if candidate.key == key:
                return candidate
        raise KeyError(key)


def _email(value: str) -> str:
    return value.strip().lower()


@dataclass(frozen=True)
class _Context:
    request: RequestFacts
    requester: str
    people: dict[str, PersonFacts]
    delegations: tuple[Delegation, ...]
    today: date

    def resolve(self, ref: ApproverRef) -> tuple[list[str], list[str]]:
        """Active people for a ref, plus notes about the ones dropped."""
        if ref.person is not None:
            person = self.people.get(ref.person)
            if person is not None and not person.active:
                return [], [f"{ref.person} is not active"]
            return [ref.person], []
        holders = sorted(
            email for email, person in self.people.items()
            if person.active and ref.role in person.roles
        )
        return holders, [] if holders else [f"nobody active holds role {ref.role}"]

    def substitute(self, email: str) -> str | None:
        """The substitute covering `email` today; the latest-starting delegation wins."""
        covering = [
            d for d in self.delegations if _email(d.person_email) == email and d.covers(self.today)
        ]
        if not covering:
            return None
        return _email(max(covering, key=lambda d: d.starts).substitute_email)

    def escalation(self, stage: StagePolicy) -> tuple[list[str], str]:
        """People to escalate to (never the requester) and a text naming the source."""
        if stage.escalate_to is not None:
            found, _ = self.resolve(stage.escalate_to)
            found = [email for email in found if email != self.requester]
            if found:
                return found, f"escalate_to {stage.escalate_to.describe()}"
        person = self.people.get(self.requester)
        manager = _email(person.manager_email) if person and person.manager_email else None
        if manager and manager != self.requester:
            boss = self.people.get(manager)
            if boss is None or boss.active:
                return [manager], f"the requester's manager {manager}"
        return [], "no escalation target"


def _plan_stage(stage: StagePolicy, ctx: _Context, *, due: date | None) -> PlannedStage:
    notes: list[str] = []
    originals: list[str] = []
    for ref in stage.approvers:
        found, dropped = ctx.resolve(ref)
        notes.extend(dropped)
        originals.extend(email for email in found if email not in originals)
    if ctx.requester in originals:
        originals.remove(ctx.requester)
        notes.append(f"requester {ctx.requester} removed (separation of duties)")

    assigned: dict[str, str | None] = {}  # approver → on behalf of; dict keeps one step each

    def assign(email: str, on_behalf_of: str | None) -> None:
        if email in assigned:
            notes.append(f"{email} already has a step; not added again")
        else:
            assigned[email] = on_behalf_of

    for original in originals:
        substitute = ctx.substitute(original)
        if substitute is None:
            assign(original, None)
        elif substitute != ctx.requester:
            assign(substitute, original)
        else:
            targets, source = ctx.escalation(stage)
            if not targets:
                raise RoutingError(
                    f"substitute for {original} is the requester and there is {source}",
                    request_key=ctx.request.key, stage_key=stage.key,
                )
            notes.append(f"substitute for {original} is the requester; sent to {source}")
            for target in targets:
                assign(target, original)

    needed = stage.required or 1
    if len(assigned) < needed:
        why = f"only {len(assigned)} of {needed} needed approvers left"
        targets, source = ctx.escalation(stage)
        notes.append(f"{why}; escalated to {source}")
        for target in targets:
            substitute = ctx.substitute(target)
            if substitute is not None and substitute != ctx.requester:
                assign(substitute, target)
            else:
                assign(target, None)
        if len(assigned) < needed:
            raise RoutingError(f"{why} and {source} cannot fill the gap",
                               request_key=ctx.request.key, stage_key=stage.key)

    steps = tuple(
        PlannedStep(stage.key, email, on_behalf_of, due) for email, on_behalf_of in assigned.items()
    )
    return PlannedStage(stage, steps, tuple(notes))


def route_request(
    request: RequestFacts,
    *,
    policy: ApprovalPolicy,
    people: Iterable[PersonFacts],
    delegations: Sequence[Delegation],
    today: date,
    calendar: WorkingCalendar,
) -> RoutePlan:
    """Plan the stages and steps of `request` under `policy` as of `today`."""
    ctx = _Context(
        request=request,
        requester=_email(request.requester_email),
        people={_email(person.email): person for person in people},
        delegations=tuple(delegations),
        today=today,
    )
    applicable: list[StagePolicy] = []
    skipped: list[SkippedStage] = []
    for stage in policy.ordered_stages():
        if stage.condition.holds(
            total_max=request.total_max,
            yearly_max=request.yearly_max,
            recurring=request.recurring,
            new_theme=request.new_theme,
            category=request.category,
        ):
            applicable.append(stage)
        else:
            skipped.append(
                SkippedStage(stage.key, f"condition not met: {stage.condition.describe()}")
            )
    if not applicable:
        raise RoutingError("no stage of the policy applies", request_key=request.key)
    first = applicable[0].order
    planned = tuple(
        _plan_stage(
            stage,
            ctx,
            due=(calendar.add_working_days(today, stage.answer_working_days)
                 if stage.order == first else None),
        )
        for stage in applicable
    )
    return RoutePlan(request.key, planned, tuple(skipped))
