"""YAML loading that remembers the line of every value, so data-file errors can name it."""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from domain.errors import InputError

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class DataFileProblem:
    """One problem in a data file: where it is and what is wrong."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"


class DataFileError(InputError):
    """A data file was refused; `.problems` lists every problem found, each with file:line."""

    def __init__(self, problems: list[DataFileProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class LinedDocument:
    """Plain Python data from YAML plus a map from value path to 1-based line number."""

    file: str
    data: Any
    lines: Mapping[PathKey, int]

    def line_of(self, path: PathKey) -> int | None:
        """Line of the value at `path`, or of its nearest ancestor that has one."""
        probe = tuple(path)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return self.lines.get((), None)

    def problems_from(
        self, error: ValidationError, *, prefix: PathKey = ()
    ) -> list[DataFileProblem]:
        """Translate a pydantic ValidationError on (a part of) this document."""
        problems = []
        for detail in error.errors():
            loc = prefix + tuple(detail["loc"])
            field = ".".join(str(part) for part in loc)
            problems.append(
                DataFileProblem(self.file, self.line_of(loc), field, detail["msg"])
            )
        return problems


def _convert(node: yaml.Node, path: PathKey, lines: dict[PathKey, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node)) if not isinstance(
                key_node, yaml.ScalarNode
            ) else _scalar(key_node)
            result[key] = _convert(value_node, (*path, key), lines)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, index), lines) for index, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    constructor = yaml.SafeLoader("")
    try:
        return constructor.construct_object(node, deep=True)
    finally:
        constructor.dispose()


def load_lined_yaml(path: Path) -> LinedDocument:
    """Parse a YAML file, raising DataFileError (with line) on a syntax error."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError([DataFileProblem(name, None, "", f"cannot read file: {exc}")]) from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise DataFileError(
            [DataFileProblem(name, line, "", f"YAML syntax: {exc.problem}")]
        ) from exc
    lines: dict[PathKey, int] = {}
    if root is None:
        return LinedDocument(name, None, lines)
    try:
        data = _convert(root, (), lines)
    except yaml.YAMLError as exc:
        raise DataFileError([DataFileProblem(name, None, "", f"YAML: {exc}")]) from exc
    return LinedDocument(name, data, lines)
