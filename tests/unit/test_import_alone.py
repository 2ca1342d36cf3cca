"""Every module imports on its own, first, in a fresh interpreter state.

The CLI imports only what a command needs, so any module can be the first
of the project to load; an import cycle that the test suite hides (because
some other module was imported before) crashes that command in production.
``casework workflow show`` once did, with ``engine.compute`` loaded first.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("db", "engine", "notifications", "casework")


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package)
        for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            if not info.name.endswith(".__main__"):  # runs its command when imported
                names.append(info.name)
    return sorted(names)


def _forget_project_modules() -> dict[str, object]:
    saved = {}
    for name in list(sys.modules):
        if name.split(".")[0] in PACKAGES:
            saved[name] = sys.modules.pop(name)
    return saved


@pytest.mark.parametrize("module", _modules())
def test_a_module_imports_first_without_a_cycle(module: str) -> None:
    saved = _forget_project_modules()
    try:
        importlib.import_module(module)
    finally:
        _forget_project_modules()
        sys.modules.update(saved)  # type: ignore[arg-type]
