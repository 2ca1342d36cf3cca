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
    from engine.errors import (
        CODES as CODES,
        AlreadyExists as AlreadyExists,
        CaseNotFound as CaseNotFound,
        CaseworkError as CaseworkError,
        Code as Code,
        CodeInfo as CodeInfo,
        CommentRequired as CommentRequired,
        ConflictError as ConflictError,
        DefinitionError as DefinitionError,
        DuplicateCase as DuplicateCase,
        FieldProblem as FieldProblem,
        GuardFailed as GuardFailed,
        InputError as InputError,
        InvalidCaseData as InvalidCaseData,
        InvalidTransition as InvalidTransition,
        MissingFields as MissingFields,
        NotFound as NotFound,
        PermissionDenied as PermissionDenied,
        Problem as Problem,
        RefusedError as RefusedError,
        SameActorForbidden as SameActorForbidden,
        TransitionRefused as TransitionRefused,
        UserNotFound as UserNotFound,
        WorkflowNotFound as WorkflowNotFound,
    )
    from engine.limits import (
        DEFAULT_BATCH as DEFAULT_BATCH,
        MAX_BATCH as MAX_BATCH,
        MAX_COMMENT as MAX_COMMENT,
        MAX_PER_PAGE as MAX_PER_PAGE,
        OBJECTION_CHANNELS as OBJECTION_CHANNELS,
        OUTBOX_STATUS as OUTBOX_STATUS,
        OUTCOMES as OUTCOMES,
    )
    from engine.masking import (
        mask_id_number as mask_id_number,
        mask_name as mask_name,
        mask_value as mask_value,
        public_view as public_view,
    )
    from engine.models import (
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
    from engine.service import Casework as Casework
    from engine.suggest import did_you_mean as did_you_mean
    from engine.templates import TemplateRenderError as TemplateRenderError, TemplateSet as TemplateSet
