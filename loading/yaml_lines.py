"""YAML loading that remembers the line of every value, so data-file errors can name it.

Strict, because a data file decides who is reminded and who approves: a key given twice is an
error naming both lines (YAML's loaders let the second win silently); anchors and aliases (`&a`,
`*a`) are refused — our files need none, and they are how a 4 KB file expands to gigabytes or
recurses forever; nesting deeper than `MAX_DEPTH` and files over `MAX_BYTES` are refused; every
problem is a `file:line` DataFileError, never a traceback.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from domain.errors import InputError

PathKey = tuple[str | int, ...]

MAX_BYTES = 2_000_000  # the budget letter with all its requests is 12 KB
MAX_DEPTH = 40


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


class _Problems(Exception):
    """Problems found while converting; raised once, at the end of a pass."""

    def __init__(self, problems: list[tuple[int | None, str, str]]) -> None:
        super().__init__(problems)
        self.problems = problems


def _field(path: PathKey) -> str:
    return ".".join(str(part) for part in path)


def _convert(node: yaml.Node, path: PathKey, lines: dict[PathKey, int],
             problems: list[tuple[int | None, str, str]]) -> Any:
    lines[path] = node.start_mark.line + 1
    if len(path) > MAX_DEPTH:
        raise _Problems([(lines[path], _field(path), f"nested deeper than {MAX_DEPTH} levels")])
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append((key_line, _field(path), "a key must be a plain value"))
                continue
            key = _scalar(key_node)
            try:
                hash(key)
            except TypeError:
                problems.append((key_line, _field(path), "a key must be a plain value"))
                continue
            if key in first_line:
                problems.append((key_line, _field((*path, key)),
                                 f"duplicate key {key!r} (first at line {first_line[key]})"))
                continue
            first_line[key] = key_line
            result[key] = _convert(value_node, (*path, key), lines, problems)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, index), lines, problems)
                for index, item in enumerate(node.value)]
    return _scalar(node)


def _anchors(text: str) -> list[tuple[int | None, str, str]]:
    """Every anchor and alias, from the event stream (before anything is composed)."""
    found: list[tuple[int | None, str, str]] = []
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1 if event.start_mark else None
        anchor = getattr(event, "anchor", None)
        if isinstance(event, yaml.AliasEvent):
            found.append((line, "", f"alias *{anchor} is not allowed in data files"))
        elif anchor:
            found.append((line, "", f"anchor &{anchor} is not allowed in data files"))
    return found


def _scalar(node: yaml.Node) -> Any:
    constructor = yaml.SafeLoader("")
    try:
        return constructor.construct_object(node, deep=True)
    finally:
        constructor.dispose()


def load_lined_yaml(path: Path, *, max_bytes: int = MAX_BYTES) -> LinedDocument:
    """Parse a YAML file strictly, raising DataFileError (each problem with its line)."""
    name = str(path)

    def refuse(found: list[tuple[int | None, str, str]]) -> DataFileError:
        return DataFileError([DataFileProblem(name, line, field, message)
                              for line, field, message in found])

    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise refuse([(None, "", f"file of {size:,} bytes exceeds the limit of "
                                     f"{max_bytes:,} bytes for a data file")])
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError([DataFileProblem(name, None, "", f"cannot read file: {exc}")]) from exc
    try:
        anchors = _anchors(text)
        if anchors:
            raise refuse(anchors)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        lines: dict[PathKey, int] = {}
        if root is None:
            return LinedDocument(name, None, lines)
        problems: list[tuple[int | None, str, str]] = []
        data = _convert(root, (), lines, problems)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise refuse([(line, "", f"YAML syntax: {exc.problem or exc.context}")]) from exc
    except yaml.YAMLError as exc:
        raise refuse([(None, "", f"YAML: {exc}")]) from exc
    except _Problems as exc:
        raise refuse(exc.problems) from exc
    except RecursionError as exc:
        raise refuse([(None, "", "YAML nested too deeply")]) from exc
    if problems:
        raise refuse(problems)
    return LinedDocument(name, data, lines)
