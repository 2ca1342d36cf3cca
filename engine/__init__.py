"""The casework engine: workflow definitions, rules, and the service that applies them.

Start here: :class:`Casework` is the one entry point for every change;
:func:`load_definition_file` turns a workflow YAML file into a checked
:class:`WorkflowDef`; every error is a :class:`CaseworkError` with a stable
:class:`Code` and its facts.

The names below are imported when first used (PEP 562), so a command that
needs only the errors or a constant does not pay for SQLAlchemy, Jinja2 and
the rest at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> the module that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        (
            "CODES",
            "AlreadyExists",
            "CaseNotFound",
            "CaseworkError",
            "Code",
            "CodeInfo",
            "CommentRequired",
            "ConflictError",
            "DefinitionError",
            "DuplicateCase",
            "FieldProblem",
            "GuardFailed",
            "InputError",
            "InvalidCaseData",
            "InvalidTransition",
            "MissingFields",
            "NotFound",
            "PermissionDenied",
            "Problem",
            "RefusedError",
            "SameActorForbidden",
            "TransitionRefused",
            "UserNotFound",
            "WorkflowNotFound",
        ),
        "engine.errors",
    ),
    **dict.fromkeys(
        (
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
    **dict.fromkeys(("mask_id_number", "mask_name", "mask_value", "public_view"), "engine.masking"),
    **dict.fromkeys(("ImportClash", "InvalidImport"), "engine.bulk"),
    **dict.fromkeys(
        (
            "DEFAULT_BATCH",
            "MAX_BATCH",
            "MAX_COMMENT",
            "MAX_PER_PAGE",
            "OBJECTION_CHANNELS",
            "OUTBOX_STATUS",
            "OUTCOMES",
        ),
        "engine.limits",
    ),
    "Render": "engine.publicity",
    **dict.fromkeys(("TemplateRenderError", "TemplateSet"), "engine.templates"),
    "Casework": "engine.service",
    "WorkingCalendar": "engine.calendar",
    "did_you_mean": "engine.suggest",
}

__all__ = sorted(_EXPORTS)


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
    from engine.bulk import ImportClash, InvalidImport
    from engine.calendar import WorkingCalendar
    from engine.clock import Clock, DatabaseClock, FixedClock, SystemClock, default_clock
    from engine.definition import WorkflowDef, load_definition, load_definition_file
    from engine.errors import (
        CODES,
        AlreadyExists,
        CaseNotFound,
        CaseworkError,
        Code,
        CodeInfo,
        CommentRequired,
        ConflictError,
        DefinitionError,
        DuplicateCase,
        FieldProblem,
        GuardFailed,
        InputError,
        InvalidCaseData,
        InvalidTransition,
        MissingFields,
        NotFound,
        PermissionDenied,
        Problem,
        RefusedError,
        SameActorForbidden,
        TransitionRefused,
        UserNotFound,
        WorkflowNotFound,
    )
    from engine.limits import (
        DEFAULT_BATCH,
        MAX_BATCH,
        MAX_COMMENT,
        MAX_PER_PAGE,
        OBJECTION_CHANNELS,
        OUTBOX_STATUS,
        OUTCOMES,
    )
    from engine.masking import mask_id_number, mask_name, mask_value, public_view
    from engine.models import (
        Action,
        AuditRecord,
        CaseView,
        ChainBreak,
        FireManyReport,
        ImportReport,
        InboxPage,
        InvariantReport,
        NoticeView,
        ObjectionView,
        ReadModel,
        Refused,
        RowProblem,
        SweepReport,
        TimerView,
        UserInfo,
        VerifyReport,
        Violation,
        WorkflowInfo,
        iso,
    )
    from engine.publicity import Render
    from engine.service import Casework
    from engine.suggest import did_you_mean
    from engine.templates import TemplateRenderError, TemplateSet
