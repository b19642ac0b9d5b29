"""domain/ must stay pure: stdlib and pydantic only, and no reading of the clock."""

import ast
import sys
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
ALLOWED_THIRD_PARTY = {"pydantic", "pydantic_core", "annotated_types", "domain"}
MODULES = sorted(DOMAIN.glob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_domain_imports_only_stdlib_and_pydantic(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY, (
                f"{path.name} imports {name}")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_domain_never_reads_the_clock(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    for forbidden in ("datetime.now(", "date.today(", "time.time(", "datetime.utcnow("):
        assert forbidden not in source, f"{path.name} calls {forbidden}"
