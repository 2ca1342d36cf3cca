"""The layering rule and the public API, checked on the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import db
import engine

ROOT = Path(__file__).resolve().parents[2]
# db ← engine ← notifications ← casework: a package may import only those to its left.
ALLOWED = {
    "db": {"db"},
    "engine": {"db", "engine"},
    "notifications": {"db", "engine", "notifications"},
    "casework": {"db", "engine", "notifications", "casework"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_layers_import_only_downwards(package: str) -> None:
    forbidden = set(ALLOWED) - ALLOWED[package]
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imports(p) & forbidden)
        for p in (ROOT / package).rglob("*.py")
        if _imports(p) & forbidden
    }
    assert offenders == {}


@pytest.mark.parametrize("module", [engine, db])
def test_all_matches_what_the_package_exposes(module: object) -> None:
    exposed = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith(module.__name__ + ".")
    }
    declared = set(module.__all__)  # type: ignore[attr-defined]
    assert exposed <= declared, "public names missing from __all__"
    assert all(hasattr(module, name) for name in declared), "__all__ names something that is not there"
