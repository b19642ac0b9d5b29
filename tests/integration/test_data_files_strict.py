"""Hostile and careless data files: every problem a file:line error, never a traceback or a hang."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loading.register_file import read_register
from loading.yaml_lines import MAX_BYTES, DataFileError, load_lined_yaml
from tests.support.factories import SEED

ROOT = Path(__file__).resolve().parents[2]

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
grants: *i
"""


def write(tmp_path: Path, text: str, name: str = "data.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(DataFileError) as caught:
        load_lined_yaml(path)
    return [str(p) for p in caught.value.problems]


def test_billion_laughs_is_refused_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, BILLION_LAUGHS)
    started = time.monotonic()
    found = problems(path)
    assert time.monotonic() - started < 1
    assert f"{path}:1: anchor &a is not allowed in data files" in found
    assert any(f"{path}:2: alias *a" in p for p in found)


def test_a_recursive_alias_is_refused_without_a_recursion_error(tmp_path: Path) -> None:
    path = write(tmp_path, "grants: &x\n  - *x\n")
    assert problems(path)[0].startswith(f"{path}:1: anchor &x")


def test_a_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "grants:\n  - key: A\n    end_date: 2025-12-31\n"
                           "    end_date: 2026-12-31\n")
    assert problems(path) == [
        f"{path}:4: grants.0.end_date: duplicate key 'end_date' (first at line 3)"]


def test_a_second_top_level_section_does_not_drop_the_first(tmp_path: Path) -> None:
    path = write(tmp_path, "grants:\n  - key: A\nrequests: []\ngrants:\n  - key: B\n")
    assert problems(path) == [f"{path}:4: grants: duplicate key 'grants' (first at line 1)"]


@pytest.mark.parametrize(("text", "expected"), [
    ("grants:\n  - key: A\n  title: x\n", ":3: YAML syntax"),
    ("? [a, b]\n: 1\n", ":1: a key must be a plain value"),
    ("grants: !!python/object:os.system x\n", ":1: YAML syntax"),
    ("a: " + "[" * 100 + "]" * 100 + "\n", "nested deeper than 40 levels"),
    ("\tgrants: []\n", ":1: YAML syntax"),
])
def test_structure_problems_are_file_line_errors(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(write(tmp_path, text))
    assert any(expected in p for p in found), found


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("w", encoding="utf-8") as out:
        out.write("notes: '" + "x" * (MAX_BYTES + 1) + "'\n")
    assert problems(path) == [f"{path}: file of {MAX_BYTES + 11:,} bytes exceeds the limit of "
                              f"{MAX_BYTES:,} bytes for a data file"]


def test_the_seed_file_still_loads() -> None:
    assert read_register(SEED).grants


@pytest.mark.parametrize("text", [BILLION_LAUGHS, "grants: &x\n  - *x\n",
                                  "grants:\n  - key: A\nrequests: []\ngrants: []\n"])
def test_bevilling_load_says_file_line_and_exits_2(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "load", str(path)], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT),
             "BEVILLING_DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}"},
        cwd=ROOT, timeout=120, check=False)
    assert result.returncode == 2, result.stderr
    assert f"{path}:" in result.stderr
    assert "Traceback" not in result.stderr
