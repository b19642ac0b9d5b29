"""Approval policy models: what a valid policy is, and what is refused."""

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from domain.approval_policy import ApprovalPolicy, ApproverRef, StageCondition, StagePolicy


def stage_data(**overrides: Any) -> dict[str, Any]:
    """A valid stage as plain data, with overrides."""
    data: dict[str, Any] = {
        "key": "afdelingschef",
        "title_da": "Afdelingschef",
        "title_en": "Head of department",
        "order": 1,
        "approvers": [{"role": "afdelingschef"}],
        "mode": "any",
        "answer_working_days": 5,
    }
    data.update(overrides)
    return data


def error_fields(exc: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return [".".join(str(part) for part in err["loc"]) for err in exc.value.errors()]


def test_minimal_stage_defaults() -> None:
    stage = StagePolicy.model_validate(stage_data())
    assert stage.condition.always is True
    assert stage.kind == "approve"
    assert stage.quorum is None
    assert stage.escalate_to is None
    assert stage.required == 1


def test_models_are_frozen_and_forbid_extra() -> None:
    stage = StagePolicy.model_validate(stage_data())
    with pytest.raises(ValidationError):
        stage.order = 2  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs"):
        StagePolicy.model_validate(stage_data(colour="red"))


@pytest.mark.parametrize(
    "ref",
    [{}, {"person": "a@aarhus.dk", "role": "jura"}],
)
def test_approver_ref_needs_exactly_one(ref: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        ApproverRef.model_validate(ref)


def test_approver_ref_normalises_email_and_refuses_garbage() -> None:
    assert ApproverRef(person=" Anna@Aarhus.DK ").person == "anna@aarhus.dk"
    with pytest.raises(ValidationError, match="not an e-mail"):
        ApproverRef(person="anna")
    with pytest.raises(ValidationError):
        ApproverRef(role="Not A Slug")


def test_stage_key_must_be_slug() -> None:
    with pytest.raises(ValidationError) as exc:
        StagePolicy.model_validate(stage_data(key="Head Of Dept"))
    assert error_fields(exc) == ["key"]


def test_quorum_required_iff_mode_quorum() -> None:
    with pytest.raises(ValidationError, match="needs a quorum") as exc:
        StagePolicy.model_validate(stage_data(mode="quorum"))
    assert error_fields(exc) == ["quorum"]
    with pytest.raises(ValidationError, match="only allowed with mode 'quorum'"):
        StagePolicy.model_validate(stage_data(mode="all", quorum=1))


@pytest.mark.parametrize("quorum", [0, -1, 3])
def test_quorum_bounds_for_named_people(quorum: int) -> None:
    approvers = [{"person": "a@aarhus.dk"}, {"person": "b@aarhus.dk"}]
    with pytest.raises(ValidationError) as exc:
        StagePolicy.model_validate(stage_data(mode="quorum", quorum=quorum, approvers=approvers))
    assert error_fields(exc) == ["quorum"]


def test_quorum_over_a_role_is_checked_at_routing_time() -> None:
    stage = StagePolicy.model_validate(
        stage_data(mode="quorum", quorum=2, approvers=[{"role": "it-sikkerhed"}])
    )
    assert stage.required == 2


def test_duplicate_approvers_refused() -> None:
    with pytest.raises(ValidationError, match="listed twice"):
        StagePolicy.model_validate(stage_data(approvers=[{"role": "jura"}, {"role": "jura"}]))


def test_answer_days_at_least_one_and_approvers_not_empty() -> None:
    with pytest.raises(ValidationError) as exc:
        StagePolicy.model_validate(stage_data(answer_working_days=0, approvers=[]))
    assert sorted(error_fields(exc)) == ["answer_working_days", "approvers"]


def test_empty_condition_refused() -> None:
    with pytest.raises(ValidationError, match="condition is empty"):
        StageCondition.model_validate({})
    with pytest.raises(ValidationError, match="condition is empty"):
        StageCondition.model_validate({"always": False, "recurring": False, "categories": []})


def test_always_cannot_be_combined() -> None:
    with pytest.raises(ValidationError, match="cannot be combined"):
        StageCondition(always=True, recurring=True)


@pytest.mark.parametrize("value", [0, -5, "0"])
def test_thresholds_must_be_positive(value: object) -> None:
    with pytest.raises(ValidationError):
        StageCondition.model_validate({"total_above": value})
    with pytest.raises(ValidationError):
        StageCondition.model_validate({"yearly_above": value})


def test_money_is_decimal_and_float_refused() -> None:
    condition = StageCondition.model_validate({"total_above": "1000000.50"})
    assert condition.total_above == Decimal("1000000.50")
    assert isinstance(condition.total_above, Decimal)
    with pytest.raises(ValidationError, match="not a float"):
        StageCondition.model_validate({"total_above": 1000000.5})


FACTS: dict[str, Any] = {
    "total_max": Decimal(500_000),
    "yearly_max": Decimal(100_000),
    "recurring": False,
    "new_theme": False,
    "category": "drift",
}


@pytest.mark.parametrize(
    ("condition", "changes", "expected"),
    [
        ({"always": True}, {}, True),
        ({"total_above": 1_000_000}, {"total_max": Decimal(1_000_000)}, False),
        ({"total_above": 1_000_000}, {"total_max": Decimal(1_000_001)}, True),
        ({"yearly_above": 100_000}, {}, False),
        ({"yearly_above": 100_000}, {"yearly_max": Decimal("100000.01")}, True),
        ({"recurring": True}, {}, False),
        ({"recurring": True}, {"recurring": True}, True),
        ({"new_theme": True}, {"new_theme": True}, True),
        ({"categories": ["cyber"]}, {"category": "CYBER"}, True),
        ({"categories": ["cyber"]}, {}, False),
        # OR of the set criteria: one is enough.
        ({"total_above": 1_000_000, "recurring": True}, {"recurring": True}, True),
        ({"total_above": 1_000_000, "recurring": True}, {"total_max": Decimal(2_000_000)}, True),
        ({"total_above": 1_000_000, "recurring": True}, {}, False),
    ],
)
def test_condition_is_or_of_set_criteria(
    condition: dict[str, Any], changes: dict[str, Any], expected: bool
) -> None:
    assert StageCondition.model_validate(condition).holds(**{**FACTS, **changes}) is expected


def test_condition_description() -> None:
    condition = StageCondition.model_validate({"total_above": 1_000_000, "recurring": True})
    assert condition.describe() == "total above 1000000 or recurring"
    assert condition.criteria() == ["total_above", "recurring"]


def test_policy_unique_stage_keys_and_ordering() -> None:
    with pytest.raises(ValidationError, match="stage key used twice: afdelingschef"):
        ApprovalPolicy.model_validate({"name": "p", "stages": [stage_data(), stage_data()]})
    policy = ApprovalPolicy.model_validate(
        {
            "name": "p",
            "stages": [
                stage_data(key="late", order=3),
                stage_data(key="first", order=1),
                stage_data(key="parallel", order=1),
            ],
        }
    )
    assert [s.key for s in policy.ordered_stages()] == ["first", "parallel", "late"]
    assert policy.stage("late").order == 3
    with pytest.raises(KeyError):
        policy.stage("nope")


def test_policy_needs_stages() -> None:
    with pytest.raises(ValidationError):
        ApprovalPolicy.model_validate({"name": "p", "stages": []})
