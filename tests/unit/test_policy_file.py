"""Loading approval policies from YAML: the shipped file, and broken files with file:line errors."""

from decimal import Decimal
from pathlib import Path
from textwrap import dedent

import pytest

from domain.approval_policy import ApprovalPolicy
from loading.policy_file import load_policies
from loading.yaml_lines import DataFileError, DataFileProblem

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "approval-policies.yaml"

GOOD = """\
policies:
  - name: Test
    stages:
      - key: afdelingschef
        title_da: Afdelingschef
        title_en: Head of department
        order: 1
        approvers:
          - role: afdelingschef
        mode: any
        answer_working_days: 5
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policies.yaml"
    path.write_text(dedent(text), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[DataFileProblem]:
    with pytest.raises(DataFileError) as exc:
        load_policies(path)
    return exc.value.problems


def test_shipped_policy_loads_and_says_what_the_budget_letter_says() -> None:
    [policy] = load_policies(SHIPPED)
    by_key = {stage.key: stage for stage in policy.stages}
    assert list(by_key) == ["afdelingschef", "it-sikkerhed", "jura", "stadsdirektoer", "borgmester"]
    head, it, legal = by_key["afdelingschef"], by_key["it-sikkerhed"], by_key["jura"]
    director, mayor = by_key["stadsdirektoer"], by_key["borgmester"]
    assert head.condition.always
    assert head.escalate_to is not None
    assert head.escalate_to.role == "vicedirektoer"
    assert (it.order, it.kind, it.mode, it.quorum) == (head.order, "consult", "quorum", 1)
    assert it.condition.categories == ["cyber"]
    assert legal.condition.categories == ["csr"]
    assert director.title_da == "Stadsdirektør"
    assert director.condition.total_above == Decimal(1_000_000)
    assert director.condition.recurring
    assert mayor.condition.total_above == Decimal(2_000_000)
    assert mayor.condition.new_theme
    assert [s.order for s in policy.ordered_stages()] == sorted(s.order for s in policy.stages)
    assert {s.key: s.answer_working_days for s in policy.stages} == {
        "afdelingschef": 5, "it-sikkerhed": 3, "jura": 5, "stadsdirektoer": 5, "borgmester": 10,
    }


def test_good_file_loads(tmp_path: Path) -> None:
    [policy] = load_policies(write(tmp_path, GOOD))
    assert isinstance(policy, ApprovalPolicy)
    assert policy.stages[0].approvers[0].role == "afdelingschef"


def test_single_policy_without_policies_key(tmp_path: Path) -> None:
    text = "\n".join(line[4:] for line in GOOD.splitlines()[1:]).replace("- name", "name", 1)
    [policy] = load_policies(write(tmp_path, text))
    assert policy.name == "Test"


def test_bad_mode_names_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("mode: any", "mode: most"))
    [problem] = problems_of(path)
    assert (problem.file, problem.line) == (str(path), 10)
    assert problem.field == "policies.0.stages.0.mode"
    assert str(problem).startswith(f"{path}:10: policies.0.stages.0.mode: ")


def test_quorum_above_named_approvers(tmp_path: Path) -> None:
    text = GOOD.replace(
        "          - role: afdelingschef\n        mode: any\n",
        "          - person: a@aarhus.dk\n          - person: b@aarhus.dk\n"
        "        mode: quorum\n        quorum: 3\n",
    )
    [problem] = problems_of(write(tmp_path, text))
    assert (problem.line, problem.field) == (12, "policies.0.stages.0.quorum")
    assert "quorum 3 is more than the 2 approvers" in problem.message


def test_missing_field_points_at_its_stage(tmp_path: Path) -> None:
    text = GOOD.replace("        answer_working_days: 5\n", "")
    [problem] = problems_of(write(tmp_path, text))
    assert (problem.line, problem.field) == (4, "policies.0.stages.0.answer_working_days")
    assert problem.message == "Field required"


def test_every_problem_is_reported(tmp_path: Path) -> None:
    text = GOOD.replace("mode: any", "mode: most").replace("order: 1", "order: first")
    fields = sorted(p.field for p in problems_of(write(tmp_path, text)))
    assert fields == ["policies.0.stages.0.mode", "policies.0.stages.0.order"]


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("title_en: Head of department", "title_en: [Head"))
    [problem] = problems_of(path)
    assert problem.file == str(path)
    assert problem.line is not None
    assert problem.line == 7
    assert "YAML syntax" in problem.message


def test_duplicate_policy_names(tmp_path: Path) -> None:
    body = GOOD.split("\n", 1)[1]
    [problem] = problems_of(write(tmp_path, "policies:\n" + body + body))
    second_name_line = 2 + body.count("\n")
    assert (problem.line, problem.field) == (second_name_line, "policies.1.name")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("policies: []\n", "policies"),
        ("- 1\n- 2\n", ""),
        (GOOD + "extra: 1\n", "extra"),
    ],
)
def test_wrong_shape(tmp_path: Path, text: str, field: str) -> None:
    [problem] = problems_of(write(tmp_path, text))
    assert problem.field == field
    assert problem.line is not None
