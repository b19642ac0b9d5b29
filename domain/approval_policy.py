"""Approval policy: the definition of which stages a budget request passes and who decides.

A policy is pure data (loaded from `data/approval-policies.yaml`); routing a concrete request
through it lives in `domain.approval_routing`, the runtime state in `domain.approval_state`.
"""

import re
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

StageMode = Literal["all", "any", "quorum"]
StageKind = Literal["approve", "consult"]


def normalize_email(value: str) -> str:
    """Lower-case and strip an e-mail address; raise ValueError unless it looks like one."""
    cleaned = value.strip().lower()
    if not _EMAIL.fullmatch(cleaned):
        raise ValueError(f"not an e-mail address: {value!r}")
    return cleaned


def _refuse_float(value: Any) -> Any:
    # A float has already lost precision by the time we see it; make the author quote it.
    if isinstance(value, float):
        raise ValueError("write money as a whole number or a quoted decimal, not a float")
    return value


Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
Email = Annotated[str, AfterValidator(normalize_email)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Money = Annotated[Decimal, BeforeValidator(_refuse_float), Field(gt=0)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ApproverRef(_Frozen):
    """One named person (`person: e-mail`) or everybody holding a role (`role: slug`)."""

    person: Email | None = None
    role: Slug | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.person is None) == (self.role is None):
            raise ValueError("give exactly one of 'person' or 'role'")
        return self

    def describe(self) -> str:
        """Short human text: the e-mail address or `role:<slug>`."""
        return self.person if self.person is not None else f"role:{self.role}"


class StageCondition(_Frozen):
    """When a stage applies: the OR of every criterion that is set.

    A criterion is "set" when it is true (`always`, `recurring`, `new_theme`), not null
    (`total_above`, `yearly_above`) or a non-empty list (`categories`). The stage applies if ANY
    set criterion holds: `{total_above: 1000000, recurring: true}` means "total above 1 mio. kr.
    OR recurring". Thresholds are strict: a total of exactly the threshold does not pass it.
    `always` may not be combined with other criteria (it would make them meaningless), and a
    condition with no criterion set is refused, so a typo cannot silently disable a stage.
    """

    always: bool = False
    total_above: Money | None = None
    yearly_above: Money | None = None
    recurring: bool = False
    categories: list[Text] = Field(default_factory=list)
    new_theme: bool = False

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        others = self.criteria()
        if self.always and len(others) > 1:
            raise ValueError("'always' cannot be combined with other criteria")
        if not others:
            raise ValueError(
                "condition is empty: set always, total_above, yearly_above, recurring, "
                "categories or new_theme"
            )
        return self

    def criteria(self) -> list[str]:
        """The names of the criteria that are set, in declaration order."""
        names = []
        if self.always:
            names.append("always")
        if self.total_above is not None:
            names.append("total_above")
        if self.yearly_above is not None:
            names.append("yearly_above")
        if self.recurring:
            names.append("recurring")
        if self.categories:
            names.append("categories")
        if self.new_theme:
            names.append("new_theme")
        return names

    def holds(
        self,
        *,
        total_max: Decimal,
        yearly_max: Decimal,
        recurring: bool,
        new_theme: bool,
        category: str,
    ) -> bool:
        """True when any set criterion is met by these request facts."""
        return (
            self.always
            or (self.total_above is not None and total_max > self.total_above)
            or (self.yearly_above is not None and yearly_max > self.yearly_above)
            or (self.recurring and recurring)
            or category.strip().lower() in {c.lower() for c in self.categories}
            or (self.new_theme and new_theme)
        )

    def describe(self) -> str:
        """English text of the condition, e.g. `total above 1000000 or recurring`."""
        parts = []
        if self.always:
            parts.append("always")
        if self.total_above is not None:
            parts.append(f"total above {self.total_above}")
        if self.yearly_above is not None:
            parts.append(f"yearly above {self.yearly_above}")
        if self.recurring:
            parts.append("recurring")
        if self.categories:
            parts.append("category in " + ", ".join(self.categories))
        if self.new_theme:
            parts.append("new theme")
        return " or ".join(parts)


ALWAYS = StageCondition(always=True)


class StagePolicy(_Frozen):
    """One stage: who decides, how many must agree, when it applies and how long they have."""

    key: Slug
    title_da: Text
    title_en: Text
    order: int = Field(ge=0)
    approvers: list[ApproverRef] = Field(min_length=1)
    mode: StageMode
    # validate_default so a missing quorum on a quorum stage is reported on this field.
    quorum: int | None = Field(default=None, validate_default=True)
    condition: StageCondition = ALWAYS
    answer_working_days: int = Field(ge=1)
    escalate_to: ApproverRef | None = None
    kind: StageKind = "approve"

    @field_validator("approvers")
    @classmethod
    def _unique_approvers(cls, value: list[ApproverRef]) -> list[ApproverRef]:
        seen = [ref.describe() for ref in value]
        duplicates = sorted({name for name in seen if seen.count(name) > 1})
        if duplicates:
            raise ValueError(f"approver listed twice: {', '.join(duplicates)}")
        return value

    @field_validator("quorum")
    @classmethod
    def _quorum_matches_mode(cls, value: int | None, info: ValidationInfo) -> int | None:
        mode = info.data.get("mode")
        if mode is None:
            return value  # mode itself is invalid and reported on its own
        if mode != "quorum":
            if value is not None:
                raise ValueError(f"quorum is only allowed with mode 'quorum', not {mode!r}")
            return value
        if value is None:
            raise ValueError("mode 'quorum' needs a quorum")
        if value < 1:
            raise ValueError("quorum must be at least 1")
        approvers: list[ApproverRef] = info.data.get("approvers", [])
        # A role may resolve to several people, so the upper bound is only known statically when
        # every approver is a named person; otherwise routing checks it against real people.
        named_only = all(ref.person is not None for ref in approvers)
        if approvers and named_only and value > len(approvers):
            raise ValueError(f"quorum {value} is more than the {len(approvers)} approvers listed")
        return value

    @property
    def required(self) -> int | None:
        """Answers needed to complete: quorum N, 1 for `any`, None for `all` (everybody)."""
        if self.mode == "quorum":
            return self.quorum
        return 1 if self.mode == "any" else None


class ApprovalPolicy(_Frozen):
    """A named, ordered set of stages; stages sharing an `order` run in parallel."""

    name: Text
    stages: list[StagePolicy] = Field(min_length=1)

    @field_validator("stages")
    @classmethod
    def _unique_keys(cls, value: list[StagePolicy]) -> list[StagePolicy]:
        keys = [stage.key for stage in value]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"stage key used twice: {', '.join(duplicates)}")
        return value

    def stage(self, key: str) -> StagePolicy:
        """The stage with this key; KeyError if there is none."""
        for candidate in self.stages:
            if candidate.key == key:
                return candidate
        raise KeyError(key)

    def ordered_stages(self) -> list[StagePolicy]:
        """Stages sorted by `order`, keeping file order within a parallel group."""
        return sorted(self.stages, key=lambda stage: stage.order)
