"""Routing a request through a policy: conditions, roles, delegation, separation of duties."""

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from domain.approval_policy import ApprovalPolicy
from domain.approval_routing import (
    Delegation,
    PersonFacts,
    PlannedStep,
    RequestFacts,
    RoutePlan,
    RoutingError,
    route_request,
)
from domain.working_days import WorkingCalendar

# Easter 2025 and Christmas 2025/26 as explicit closed days (what a holidays.DK feed would give,
# plus 24 and 31 December which the municipality closes).
CLOSED = [
    date(2025, 4, 17), date(2025, 4, 18), date(2025, 4, 21),
    date(2025, 12, 24), date(2025, 12, 25), date(2025, 12, 26), date(2025, 12, 31),
    date(2026, 1, 1),
]
CALENDAR = WorkingCalendar.of(CLOSED)
TODAY = date(2025, 3, 3)  # a Monday with no holiday near


def stage(key: str, order: int, role: str, **extra: Any) -> dict[str, Any]:
    return {
        "key": key, "title_da": key, "title_en": key, "order": order,
        "approvers": [{"role": role}], "mode": "any", "answer_working_days": 5, **extra,
    }


POLICY = ApprovalPolicy.model_validate({
    "name": "Borgmesterens Afdeling",
    "stages": [
        stage("afdelingschef", 1, "afdelingschef", escalate_to={"role": "vicedirektoer"}),
        stage("it-sikkerhed", 1, "it-sikkerhed", mode="quorum", quorum=1, kind="consult",
              answer_working_days=3, condition={"categories": ["cyber"]}),
        stage("jura", 2, "jura", condition={"categories": ["csr"]}),
        stage("stadsdirektoer", 3, "stadsdirektoer", escalate_to={"role": "vicedirektoer"},
              condition={"total_above": 1_000_000, "recurring": True}),
        stage("borgmester", 4, "borgmester", answer_working_days=10,
              condition={"total_above": 2_000_000, "new_theme": True}),
    ],
})


def person(email: str, *roles: str, manager: str | None = "vd@aarhus.dk") -> PersonFacts:
    return PersonFacts(email, email.split("@")[0], frozenset(roles), manager)


PEOPLE = [
    person("chef@aarhus.dk", "afdelingschef"),
    person("vd@aarhus.dk", "vicedirektoer", manager="sd@aarhus.dk"),
    person("sd@aarhus.dk", "stadsdirektoer", manager="bm@aarhus.dk"),
    person("bm@aarhus.dk", "borgmester", manager=None),
    person("it1@aarhus.dk", "it-sikkerhed"),
    person("it2@aarhus.dk", "it-sikkerhed"),
    person("jura@aarhus.dk", "jura"),
    person("req@aarhus.dk", manager="chef@aarhus.dk"),
]


def make_request(**overrides: Any) -> RequestFacts:
    facts = RequestFacts(
        key="BA-2026-001", category="drift", requester_email="req@aarhus.dk",
        total_max=Decimal(500_000), yearly_max=Decimal(125_000), recurring=False, new_theme=False,
    )
    return replace(facts, **overrides)


def route(
    request: RequestFacts | None = None,
    *,
    policy: ApprovalPolicy = POLICY,
    people: list[PersonFacts] = PEOPLE,
    delegations: tuple[Delegation, ...] = (),
    today: date = TODAY,
) -> RoutePlan:
    request = request or make_request()
    plan = route_request(
        request, policy=policy, people=people, delegations=delegations, today=today,
        calendar=CALENDAR,
    )
    # Separation of duties holds in every plan any test makes.
    assert request.requester_email not in {s.approver_email for s in plan.steps}
    for planned in plan.stages:  # one step per person per stage
        emails = [s.approver_email for s in planned.steps]
        assert len(emails) == len(set(emails))
    return plan


def keys(plan: RoutePlan) -> list[str]:
    return [s.key for s in plan.stages]


def test_small_request_only_needs_head_of_department() -> None:
    plan = route()
    assert keys(plan) == ["afdelingschef"]
    assert plan.steps == [PlannedStep("afdelingschef", "chef@aarhus.dk", None, date(2025, 3, 10))]
    reasons = {s.stage_key: s.reason for s in plan.skipped}
    assert set(reasons) == {"it-sikkerhed", "jura", "stadsdirektoer", "borgmester"}
    assert reasons["stadsdirektoer"] == "condition not met: total above 1000000 or recurring"


@pytest.mark.parametrize(
    ("total", "expected"),
    [
        (Decimal(1_000_000), ["afdelingschef"]),
        (Decimal(1_000_001), ["afdelingschef", "stadsdirektoer"]),
        (Decimal("1000000.01"), ["afdelingschef", "stadsdirektoer"]),
        (Decimal(2_000_000), ["afdelingschef", "stadsdirektoer"]),
        (Decimal(2_000_001), ["afdelingschef", "stadsdirektoer", "borgmester"]),
    ],
)
def test_thresholds_are_strictly_above(total: Decimal, expected: list[str]) -> None:
    assert keys(route(make_request(total_max=total))) == expected


def test_recurring_brings_in_city_director() -> None:
    plan = route(make_request(recurring=True))
    assert keys(plan) == ["afdelingschef", "stadsdirektoer"]
    assert plan.stage("stadsdirektoer").steps[0].approver_email == "sd@aarhus.dk"


def test_new_theme_brings_in_mayor_but_not_director() -> None:
    assert keys(route(make_request(new_theme=True))) == ["afdelingschef", "borgmester"]


def test_cyber_runs_it_security_in_parallel_as_quorum_consult() -> None:
    plan = route(make_request(category="cyber"))
    assert keys(plan) == ["afdelingschef", "it-sikkerhed"]
    it = plan.stage("it-sikkerhed")
    assert it.order == plan.stage("afdelingschef").order
    assert (it.policy.mode, it.policy.quorum, it.policy.kind) == ("quorum", 1, "consult")
    assert [s.approver_email for s in it.steps] == ["it1@aarhus.dk", "it2@aarhus.dk"]
    # Both parallel stages are active at once: both have due dates, each with its own answer time.
    assert {s.due_date for s in it.steps} == {date(2025, 3, 6)}
    assert plan.stage("afdelingschef").steps[0].due_date == date(2025, 3, 10)


def test_csr_goes_to_legal_later_with_due_date_on_activation() -> None:
    plan = route(make_request(category="csr"))
    assert keys(plan) == ["afdelingschef", "jura"]
    legal = plan.stage("jura")
    assert legal.steps == (PlannedStep("jura", "jura@aarhus.dk", None, None),)
    assert legal.due_date_for(date(2025, 3, 12), calendar=CALENDAR) == date(2025, 3, 19)


def test_due_dates_skip_easter() -> None:
    plan = route(make_request(category="cyber"), today=date(2025, 4, 16))
    # 17, 18 and 21 April are closed, 19–20 is a weekend.
    assert plan.stage("it-sikkerhed").steps[0].due_date == date(2025, 4, 24)
    assert plan.stage("afdelingschef").steps[0].due_date == date(2025, 4, 28)


def test_due_dates_skip_christmas_and_new_year() -> None:
    plan = route(today=date(2025, 12, 22))
    assert plan.steps[0].due_date == date(2026, 1, 5)


@pytest.mark.parametrize(
    ("today", "delegated"),
    [
        (date(2025, 3, 2), False),
        (date(2025, 3, 3), True),  # first day, inclusive
        (date(2025, 3, 7), True),  # last day, inclusive
        (date(2025, 3, 8), False),
    ],
)
def test_delegation_applies_within_inclusive_range(today: date, delegated: bool) -> None:
    holiday = Delegation("chef@aarhus.dk", "vd@aarhus.dk", date(2025, 3, 3), date(2025, 3, 7))
    step = route(delegations=(holiday,), today=today).steps[0]
    if delegated:
        assert (step.approver_email, step.on_behalf_of_email) == ("vd@aarhus.dk", "chef@aarhus.dk")
    else:
        assert (step.approver_email, step.on_behalf_of_email) == ("chef@aarhus.dk", None)


def test_delegation_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        Delegation("a@aarhus.dk", "b@aarhus.dk", date(2025, 3, 7), date(2025, 3, 3))


def test_requester_removed_and_stage_escalated() -> None:
    plan = route(make_request(requester_email="chef@aarhus.dk"))
    head = plan.stage("afdelingschef")
    assert [s.approver_email for s in head.steps] == ["vd@aarhus.dk"]
    assert head.steps[0].on_behalf_of_email is None
    assert any("separation of duties" in note for note in head.notes)
    assert any("escalate_to role:vicedirektoer" in note for note in head.notes)


def test_requester_is_the_escalation_target_falls_back_to_manager() -> None:
    plan = route(make_request(requester_email="sd@aarhus.dk", recurring=True))
    assert [s.approver_email for s in plan.stage("stadsdirektoer").steps] == ["vd@aarhus.dk"]
    # Mayor has no escalate_to: a mayor's own big request goes to nobody → RoutingError.
    with pytest.raises(RoutingError, match="borgmester") as exc:
        route(make_request(requester_email="bm@aarhus.dk", new_theme=True))
    assert (exc.value.request_key, exc.value.stage_key) == ("BA-2026-001", "borgmester")


def test_manager_used_when_no_escalate_to() -> None:
    people = [*PEOPLE, person("boss@aarhus.dk")]
    people = [p if p.email != "bm@aarhus.dk" else replace(p, manager_email="boss@aarhus.dk")
              for p in people]
    plan = route(make_request(requester_email="bm@aarhus.dk", new_theme=True), people=people)
    assert [s.approver_email for s in plan.stage("borgmester").steps] == ["boss@aarhus.dk"]
    assert any("manager boss@aarhus.dk" in note for note in plan.stage("borgmester").notes)


def test_substitute_who_is_the_requester_is_replaced_by_escalation() -> None:
    holiday = Delegation("chef@aarhus.dk", "req@aarhus.dk", date(2025, 3, 1), date(2025, 3, 31))
    step = route(delegations=(holiday,)).steps[0]
    assert (step.approver_email, step.on_behalf_of_email) == ("vd@aarhus.dk", "chef@aarhus.dk")


def test_quorum_short_after_removing_requester_gets_escalation_added() -> None:
    policy = ApprovalPolicy.model_validate({"name": "q", "stages": [{
        **stage("panel", 1, "x"), "mode": "quorum", "quorum": 2,
        "approvers": [{"person": "req@aarhus.dk"}, {"person": "jura@aarhus.dk"}],
        "escalate_to": {"person": "vd@aarhus.dk"},
    }]})
    plan = route(policy=policy)
    assert [s.approver_email for s in plan.steps] == ["jura@aarhus.dk", "vd@aarhus.dk"]


def test_impossible_quorum_raises() -> None:
    policy = ApprovalPolicy.model_validate({"name": "q", "stages": [{
        **stage("panel", 1, "it-sikkerhed"), "mode": "quorum", "quorum": 3,
        "escalate_to": {"person": "vd@aarhus.dk"},
    }]})
    # Two IT people plus the escalation target reach 3 ...
    assert len(route(policy=policy).steps) == 3
    # ... but not when one of them is the requester.
    with pytest.raises(RoutingError, match="only 1 of 3"):
        route(make_request(requester_email="it1@aarhus.dk"), policy=policy)


def test_role_without_active_holder_escalates() -> None:
    people = [replace(p, active=False) if p.email == "chef@aarhus.dk" else p for p in PEOPLE]
    head = route(people=people).stage("afdelingschef")
    assert [s.approver_email for s in head.steps] == ["vd@aarhus.dk"]
    assert any("nobody active holds role afdelingschef" in note for note in head.notes)


def test_one_step_per_person_per_stage() -> None:
    policy = ApprovalPolicy.model_validate({"name": "d", "stages": [{
        **stage("board", 1, "it-sikkerhed"), "mode": "all",
        "approvers": [{"role": "it-sikkerhed"}, {"person": "it1@aarhus.dk"},
                      {"person": "jura@aarhus.dk"}],
    }]})
    both_away = (
        Delegation("it1@aarhus.dk", "vd@aarhus.dk", TODAY, TODAY),
        Delegation("it2@aarhus.dk", "vd@aarhus.dk", TODAY, TODAY),
    )
    plan = route(policy=policy, delegations=both_away)
    assert [(s.approver_email, s.on_behalf_of_email) for s in plan.steps] == [
        ("vd@aarhus.dk", "it1@aarhus.dk"),
        ("jura@aarhus.dk", None),
    ]
    assert any("already has a step" in note for note in plan.stages[0].notes)


def test_emails_are_compared_case_insensitively() -> None:
    plan = route(make_request(requester_email="Chef@Aarhus.dk"))
    assert [s.approver_email for s in plan.steps] == ["vd@aarhus.dk"]


def test_no_applicable_stage_raises() -> None:
    policy = ApprovalPolicy.model_validate(
        {"name": "c", "stages": [stage("jura", 1, "jura", condition={"categories": ["csr"]})]}
    )
    with pytest.raises(RoutingError, match="no stage"):
        route(policy=policy)
