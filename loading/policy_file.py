"""Read approval policies from YAML; every problem is reported with file:line and field.

A file holds either `policies: [<policy>, ...]` or a single policy mapping (`name`, `stages`).
Whether a role has any holder is not checked here: people live in the database, not the file.
"""

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from domain.approval_policy import ApprovalPolicy
from loading.yaml_lines import (
    DataFileError,
    DataFileProblem,
    LinedDocument,
    PathKey,
    load_lined_yaml,
)


def _entries(doc: LinedDocument) -> list[tuple[PathKey, Any]]:
    """The raw policy mappings with their paths, or DataFileError if the shape is wrong."""
    data = doc.data
    if isinstance(data, dict) and "policies" in data:
        extra = sorted(str(key) for key in data if key != "policies")
        if extra:
            raise DataFileError([
                DataFileProblem(doc.file, doc.line_of((key,)), key, "unknown top-level key")
                for key in extra
            ])
        policies = data["policies"]
        if not isinstance(policies, list) or not policies:
            raise DataFileError([DataFileProblem(
                doc.file, doc.line_of(("policies",)), "policies", "must be a non-empty list"
            )])
        return [(("policies", index), entry) for index, entry in enumerate(policies)]
    if isinstance(data, dict):
        return [((), data)]
    raise DataFileError([DataFileProblem(
        doc.file, doc.line_of(()), "", "expected a mapping with 'policies: [...]' or one policy"
    )])


def load_policies(path: Path) -> list[ApprovalPolicy]:
    """Load and validate every policy in `path`; DataFileError lists all problems found."""
    doc = load_lined_yaml(path)
    problems: list[DataFileProblem] = []
    policies: list[ApprovalPolicy] = []
    for prefix, entry in _entries(doc):
        try:
            policy = ApprovalPolicy.model_validate(entry)
        except ValidationError as exc:
            problems.extend(doc.problems_from(exc, prefix=prefix))
            continue
        if any(existing.name == policy.name for existing in policies):
            problems.append(DataFileProblem(
                doc.file, doc.line_of((*prefix, "name")), ".".join(map(str, (*prefix, "name"))),
                f"policy name {policy.name!r} used twice",
            ))
        policies.append(policy)
    if problems:
        raise DataFileError(problems)
    return policies
