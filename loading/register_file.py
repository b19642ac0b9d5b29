"""Read a register file (YAML or CSV) into validated specs; every problem names file:line:field."""

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from loading.register_schema import DepartmentSpec, GrantSpec, PersonSpec
from loading.request_schema import RequestSpec
from loading.yaml_lines import DataFileError, DataFileProblem, LinedDocument, load_lined_yaml

Spec = TypeVar("Spec", bound=BaseModel)
Item = TypeVar("Item")

KNOWN_SECTIONS = ("departments", "people", "grants", "requests")
CSV_COLUMNS = (
    "key", "title", "department", "owner", "recipients", "funding_source", "start_date",
    "end_date", "status", "reminder_offsets", "amount_kind", "amount_recurrence", "amount",
    "amount_max", "year_from", "year_to", "notes",
)
CSV_REQUIRED = ("key", "title", "department", "owner", "end_date")


@dataclass(frozen=True)
class Located(Generic[Item]):
    """A validated item and the line it came from."""

    item: Item
    line: int | None


@dataclass
class RegisterFile:
    """Everything a register file holds, validated item by item."""

    file: str
    departments: list[Located[DepartmentSpec]] = field(default_factory=list)
    people: list[Located[PersonSpec]] = field(default_factory=list)
    grants: list[Located[GrantSpec]] = field(default_factory=list)
    requests: list[Located[RequestSpec]] = field(default_factory=list)
    document: LinedDocument | None = None


def _validate_section(
    doc: LinedDocument, section: str, model: type[Spec], problems: list[DataFileProblem]
) -> list[Located[Spec]]:
    raw = doc.data.get(section) if isinstance(doc.data, dict) else None
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(
            DataFileProblem(doc.file, doc.line_of((section,)), section, "must be a list"))
        return []
    located: list[Located[Spec]] = []
    for index, entry in enumerate(raw):
        path = (section, index)
        try:
            located.append(Located(model.model_validate(entry), doc.line_of(path)))
        except ValidationError as exc:
            problems.extend(doc.problems_from(exc, prefix=path))
    return located


def _check_duplicates(
    file: str, items: list[Located[Spec]], key: Callable[[Spec], str], section: str,
    problems: list[DataFileProblem],
) -> None:
    first_seen: dict[str, int | None] = {}
    for located in items:
        value = key(located.item)
        if value in first_seen:
            problems.append(DataFileProblem(
                file, located.line, section,
                f"duplicate {value!r} (first at line {first_seen[value]})",
            ))
        else:
            first_seen[value] = located.line


def read_yaml_register(path: Path) -> RegisterFile:
    """Parse and validate a YAML register file, collecting every problem before raising."""
    doc = load_lined_yaml(path)
    problems: list[DataFileProblem] = []
    if not isinstance(doc.data, dict):
        raise DataFileError([DataFileProblem(doc.file, 1, "", "top level must be a mapping")])
    for unknown in sorted(set(doc.data) - set(KNOWN_SECTIONS), key=str):
        problems.append(DataFileProblem(
            doc.file, doc.line_of((unknown,)), str(unknown),
            f"unknown section (expected one of {', '.join(KNOWN_SECTIONS)})",
        ))
    register = RegisterFile(
        file=doc.file,
        departments=_validate_section(doc, "departments", DepartmentSpec, problems),
        people=_validate_section(doc, "people", PersonSpec, problems),
        grants=_validate_section(doc, "grants", GrantSpec, problems),
        requests=_validate_section(doc, "requests", RequestSpec, problems),
        document=doc,
    )
    _check_duplicates(doc.file, register.departments, lambda d: d.key, "departments", problems)
    _check_duplicates(doc.file, register.people, lambda p: p.email, "people", problems)
    _check_duplicates(doc.file, register.grants, lambda g: g.key, "grants", problems)
    _check_duplicates(doc.file, register.requests, lambda r: r.key, "requests", problems)
    if problems:
        raise DataFileError(problems)
    return register


def _csv_grant(row: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {
        name: row[name].strip()
        for name in ("key", "title", "department", "owner", "funding_source", "notes")
        if row.get(name, "").strip() or name in CSV_REQUIRED
    }
    data["end_date"] = row.get("end_date", "").strip()
    if row.get("start_date", "").strip():
        data["start_date"] = row["start_date"].strip()
    if row.get("status", "").strip():
        data["status"] = row["status"].strip()
    if row.get("recipients", "").strip():
        data["recipients"] = [part.strip() for part in row["recipients"].split(";") if part.strip()]
    if row.get("reminder_offsets", "").strip():
        data["reminder_offsets"] = [
            part.strip() for part in row["reminder_offsets"].split(";") if part.strip()
        ]
    if row.get("amount", "").strip():
        amount: dict[str, Any] = {
            "kind": row.get("amount_kind", "").strip() or "appropriated",
            "recurrence": row.get("amount_recurrence", "").strip() or "yearly",
            "amount": row["amount"].strip(),
        }
        for name in ("amount_max", "year_from", "year_to"):
            if row.get(name, "").strip():
                amount[name] = row[name].strip()
        data["amounts"] = [amount]
    return data


def read_csv_register(path: Path) -> RegisterFile:
    """Parse a CSV of grants (one money line per row); people and departments must exist."""
    name = str(path)
    problems: list[DataFileProblem] = []
    register = RegisterFile(file=name)
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise DataFileError([DataFileProblem(name, None, "", f"cannot read file: {exc}")]) from exc
    with handle:
        sample = handle.read(4096)
        handle.seek(0)
        delimiter = ";" if sample.count(";") > sample.count(",") else ","
        reader = csv.DictReader(handle, delimiter=delimiter)
        header = [column.strip() for column in reader.fieldnames or []]
        missing = [column for column in CSV_REQUIRED if column not in header]
        unknown = [column for column in header if column not in CSV_COLUMNS]
        if missing or unknown:
            message = "; ".join(filter(None, [
                f"missing columns: {', '.join(missing)}" if missing else "",
                f"unknown columns: {', '.join(unknown)}" if unknown else "",
            ]))
            raise DataFileError([DataFileProblem(name, 1, "header", message)])
        try:
            for row in reader:
                line = reader.line_num
                clean = {(k or "").strip(): (v or "") for k, v in row.items() if k is not None}
                if None in row:
                    problems.append(DataFileProblem(name, line, "", "more fields than columns"))
                    continue
                try:
                    spec = GrantSpec.model_validate(_csv_grant(clean))
                except ValidationError as exc:
                    for detail in exc.errors():
                        loc = ".".join(str(part) for part in detail["loc"])
                        problems.append(DataFileProblem(name, line, loc, detail["msg"]))
                    continue
                register.grants.append(Located(spec, line))
        except (csv.Error, UnicodeDecodeError) as exc:
            problems.append(DataFileProblem(name, reader.line_num, "", f"CSV: {exc}"))
    _check_duplicates(name, register.grants, lambda g: g.key, "grants", problems)
    if problems:
        raise DataFileError(problems)
    return register


def read_register(path: Path) -> RegisterFile:
    """Read a register file, choosing the format by its suffix."""
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return read_yaml_register(path)
    if suffix == ".csv":
        return read_csv_register(path)
    raise DataFileError([DataFileProblem(
        str(path), None, "", "unsupported file type (use .yaml, .yml or .csv)"
    )])
