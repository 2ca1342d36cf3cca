"""The layering rule and the public API, checked on the source itself."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import db
import engine
from engine.store.tables import check_row_types

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


# ------------------------------------------------------------------ the engine's parts

ENGINE = ROOT / "engine"
STORE = ENGINE / "store"


def _modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# what builds SQL: SQLAlchemy's statement constructors, its modules that hold them, a Table's own, raw SQL text
_SQL_BUILDERS = {"select", "insert", "update", "delete", "text", "func", "literal_column", "table", "column"}
_SQL_MODULES = {"sql", "expression", "future", "*"}
_TABLE_METHODS = {"select", "insert", "update", "delete"}


def _builds_sql(path: Path) -> list[str]:
    """Where a module builds SQL: imports of SQLAlchemy's statement builders and calls of them."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    sqlalchemy_modules: set[str] = set()  # local names of sqlalchemy (sub)modules
    table_modules: set[str] = set()  # local names of engine.store.tables
    table_names: set[str] = set()  # names imported from it (tables, and the row types)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sqlalchemy":
                    sqlalchemy_modules.add((alias.asname or alias.name).split(".")[0])
                elif alias.name == "engine.store.tables" and alias.asname:
                    table_modules.add(alias.asname)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "sqlalchemy":
                for alias in node.names:
                    if alias.name in _SQL_BUILDERS | _SQL_MODULES:
                        found.append(f"{node.lineno}: from {node.module} import {alias.name}")
            elif node.module == "engine.store":
                table_modules |= {a.asname or a.name for a in node.names if a.name == "tables"}
            elif node.module == "engine.store.tables":
                table_names |= {a.asname or a.name for a in node.names}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute):
            if func.attr == "exec_driver_sql":
                found.append(f"{node.lineno}: raw SQL ({ast.unparse(func)})")
            owner = func.value
            # sa.select(...), sa.func.count(...), sqlalchemy.sql.text(...)
            chain, base = [func.attr], owner
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in sqlalchemy_modules and _SQL_BUILDERS & set(chain):
                found.append(f"{node.lineno}: {ast.unparse(func)}(...)")
            # tables.cases.select(), or cases.select() after from engine.store.tables import cases
            if func.attr in _TABLE_METHODS and (
                (isinstance(owner, ast.Name) and owner.id in table_names)
                or (
                    isinstance(owner, ast.Attribute)
                    and isinstance(owner.value, ast.Name)
                    and owner.value.id in table_modules
                )
            ):
                found.append(f"{node.lineno}: {ast.unparse(func)}(...)")
    return found


_OUTSIDE_STORE = [p for p in _modules(ENGINE) if STORE not in p.parents]


@pytest.mark.parametrize("path", _OUTSIDE_STORE, ids=_rel)
def test_only_the_store_builds_sql(path: Path) -> None:
    assert _builds_sql(path) == []


def test_the_sql_check_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The check above is only worth its passes if it fails on SQL."""
    quiet = [_rel(p) for p in _modules(STORE) if p.name in {"cases.py", "timers.py", "keys.py"} and not _builds_sql(p)]
    assert quiet == []  # the store's statement modules do build SQL
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import sqlalchemy as sa\n"
        "from sqlalchemy import Connection, Engine\n"
        "from engine.store import tables\n"
        "from engine.store.tables import timers\n"
        "def f(conn: Connection) -> None:\n"
        "    from sqlalchemy import text\n"
        "    sa.func.count(); sa.inspect(conn); tables.cases.select(); conn.exec_driver_sql('SELECT 1')\n"
        "    timers.delete(); {}.update()\n",
        encoding="utf-8",
    )
    assert sorted(_builds_sql(sample)) == [
        "6: from sqlalchemy import text",
        "7: raw SQL (conn.exec_driver_sql)",
        "7: sa.func.count(...)",
        "7: tables.cases.select(...)",
        "8: timers.delete(...)",
    ]


# NamedTuple / SQLAlchemy Row API: public, despite the underscore
_ROW_API = {"_replace", "_make", "_fields", "_mapping"}


def _module_level_names(tree: ast.Module) -> set[str]:
    """Names a module defines itself (classes, functions, assignments) — not what it imports."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def _private_reaches(path: Path) -> list[str]:
    """``other._attr``: another object's private attribute read or called."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = _module_level_names(tree) | {"self", "cls"}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        attr = node.attr
        if not attr.startswith("_") or (attr.startswith("__") and attr.endswith("__")) or attr in _ROW_API:
            continue
        value = node.value
        if isinstance(value, ast.Name) and value.id in own:
            continue
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super":
            continue
        found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("path", _modules(ENGINE), ids=_rel)
def test_no_engine_module_reaches_into_another_objects_private_parts(path: Path) -> None:
    assert _private_reaches(path) == []


def test_the_private_check_finds_what_it_looks_for(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import x\n"
        "class A:\n"
        "    _n = 1\n"
        "    def f(self, other, row):\n"
        "        self._own(); A._n; super()._up(); row._replace(a=1); row._mapping; other.__class__\n"
        "        return other._theirs, x._hidden\n",
        encoding="utf-8",
    )
    assert sorted(_private_reaches(sample)) == ["6: other._theirs", "6: x._hidden"]


def _type_checking_imports() -> dict[str, str]:
    """name → module, from the ``if TYPE_CHECKING:`` block of engine/__init__.py (what type checkers see)."""
    tree = ast.parse((ENGINE / "__init__.py").read_text(encoding="utf-8"))
    (block,) = [n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"]
    return {
        alias.asname or alias.name: node.module
        for node in ast.walk(block)
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }


def test_every_name_in_engine_all_resolves_to_what_type_checkers_see() -> None:
    # the light modules are star-imported with the package; the rest is imported lazily, for type checkers too
    eager = {name: module.__name__ for module in (engine.errors, engine.limits) for name in module.__all__}
    declared = {**eager, **_type_checking_imports()}
    assert sorted(declared) == sorted(engine.__all__)
    wrong = {
        name: module
        for name, module in declared.items()
        if getattr(engine, name) is not getattr(importlib.import_module(module), name)
    }
    assert wrong == {}
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        engine.Nothing  # noqa: B018


# the libraries a command pays for only when it needs them
_HEAVY = ("sqlalchemy", "rich", "alembic", "openpyxl", "weasyprint")


@pytest.mark.parametrize(
    "code",
    [
        "import casework.cli",
        "from casework.cli import run; run(['--version'])",
        "from casework.cli import run; run(['--help'])",
    ],
    ids=["import", "version", "help"],
)
def test_starting_the_command_imports_no_heavy_library(code: str) -> None:
    probe = f"import sys\n{code}\nprint(sorted({{m.split('.')[0] for m in sys.modules}} & set({_HEAVY!r})))"
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_the_schema_head_is_the_newest_migration() -> None:
    assert db.head_revision() == db.SCHEMA_HEAD


def test_every_row_type_matches_its_table() -> None:
    assert check_row_types() == []
