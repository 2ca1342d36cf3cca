"""The casework engine: workflow definitions, rules, and the service that applies them.

Start here: :class:`Casework` is the one entry point for every change;
:func:`load_definition_file` turns a workflow YAML file into a checked
:class:`WorkflowDef`; every error is a :class:`CaseworkError` with a stable
:class:`Code` and its facts.

The errors and limits are loaded with the package; every other name is
imported when first used (PEP 562), so a command that needs only the errors
or a constant does not pay for SQLAlchemy, Jinja2 and the rest at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# light (no third-party imports): loaded with the package, so a shell's errors and options cost nothing
from engine import errors, limits
from engine.errors import *  # noqa: F403
from engine.limits import *  # noqa: F403

# name -> the module that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        (
            "AccessEntry",
            "Action",
            "AuditRecord",
            "CaseView",
            "ChainBreak",
            "FireManyReport",
            "ImportReport",
            "InboxPage",
            "InvariantReport",
            "NoticeView",
            "ObjectionView",
            "ReadModel",
            "Refused",
            "Report",
            "RowProblem",
            "SweepReport",
            "TimerView",
            "UserInfo",
            "VerifyReport",
            "Violation",
            "WorkflowInfo",
            "iso",
        ),
        "engine.models",
    ),
    **dict.fromkeys(("Clock", "DatabaseClock", "FixedClock", "SystemClock", "default_clock"), "engine.clock"),
    **dict.fromkeys(("WorkflowDef", "load_definition", "load_definition_file"), "engine.definition"),
    **dict.fromkeys(("masked_applicant", "mask_id_number", "mask_name", "mask_value", "public_view"), "engine.masking"),
    **dict.fromkeys(("ImportClash", "InvalidImport"), "engine.bulk"),
    "Render": "engine.publicity",
    **dict.fromkeys(("TemplateRenderError", "TemplateSet"), "engine.templates"),
    "Casework": "engine.service",
    "WorkingCalendar": "engine.calendar",
    "did_you_mean": "engine.suggest",
    **dict.fromkeys(("REPORTS", "run_report"), "engine.reports"),
}

__all__ = sorted([*errors.__all__, *limits.__all__, *_EXPORTS])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from engine.bulk import ImportClash as ImportClash, InvalidImport as InvalidImport
    from engine.calendar import WorkingCalendar as WorkingCalendar
    from engine.clock import (
        Clock as Clock,
        DatabaseClock as DatabaseClock,
        FixedClock as FixedClock,
        SystemClock as SystemClock,
        default_clock as default_clock,
    )
    from engine.definition import (
        WorkflowDef as WorkflowDef,
        load_definition as load_definition,
        load_definition_file as load_definition_file,
    )
    from engine.masking import (
        mask_id_number as mask_id_number,
        mask_name as mask_name,
        mask_value as mask_value,
        masked_applicant as masked_applicant,
        public_view as public_view,
    )
    from engine.models import (
        AccessEntry as AccessEntry,
        Action as Action,
        AuditRecord as AuditRecord,
        CaseView as CaseView,
        ChainBreak as ChainBreak,
        FireManyReport as FireManyReport,
        ImportReport as ImportReport,
        InboxPage as InboxPage,
        InvariantReport as InvariantReport,
        NoticeView as NoticeView,
        ObjectionView as ObjectionView,
        ReadModel as ReadModel,
        Refused as Refused,
        Report as Report,
        RowProblem as RowProblem,
        SweepReport as SweepReport,
        TimerView as TimerView,
        UserInfo as UserInfo,
        VerifyReport as VerifyReport,
        Violation as Violation,
        WorkflowInfo as WorkflowInfo,
        iso as iso,
    )
    from engine.publicity import Render as Render
    from engine.reports import REPORTS as REPORTS, run_report as run_report
    from engine.service import Casework as Casework
    from engine.suggest import did_you_mean as did_you_mean
    from engine.templates import TemplateRenderError as TemplateRenderError, TemplateSet as TemplateSet
