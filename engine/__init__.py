"""The casework engine: workflow definitions, rules, and the service that applies them.

Start here: :class:`Casework` is the one entry point for every change;
:func:`load_definition_file` turns a workflow YAML file into a checked
:class:`WorkflowDef`; every error is a :class:`CaseworkError`.
"""

from __future__ import annotations

from engine.bulk import FireManyReport, ImportReport, InvalidImport, RowProblem
from engine.clock import Clock, DatabaseClock, FixedClock, SystemClock, default_clock
from engine.definition import WorkflowDef, load_definition, load_definition_file
from engine.errors import (
    AlreadyExists,
    CaseNotFound,
    CaseworkError,
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
from engine.invariants import InvariantReport, Violation
from engine.masking import mask_id_number, mask_name, mask_value, public_view
from engine.publicity import OBJECTION_CHANNELS, NoticeView, ObjectionView, Render
from engine.service import Casework
from engine.templates import TemplateRenderError, TemplateSet
from engine.views import Action, AuditRecord, CaseView, InboxPage, UserInfo, VerifyReport, WorkflowInfo

__all__ = [
    "OBJECTION_CHANNELS",
    "Action",
    "AlreadyExists",
    "AuditRecord",
    "CaseNotFound",
    "CaseView",
    "Casework",
    "CaseworkError",
    "Clock",
    "CommentRequired",
    "ConflictError",
    "DatabaseClock",
    "DefinitionError",
    "DuplicateCase",
    "FieldProblem",
    "FireManyReport",
    "FixedClock",
    "GuardFailed",
    "ImportReport",
    "InboxPage",
    "InputError",
    "InvalidCaseData",
    "InvalidImport",
    "InvalidTransition",
    "InvariantReport",
    "MissingFields",
    "NotFound",
    "NoticeView",
    "ObjectionView",
    "PermissionDenied",
    "Problem",
    "RefusedError",
    "Render",
    "RowProblem",
    "SameActorForbidden",
    "SystemClock",
    "TemplateRenderError",
    "TemplateSet",
    "TransitionRefused",
    "UserInfo",
    "UserNotFound",
    "VerifyReport",
    "Violation",
    "WorkflowDef",
    "WorkflowInfo",
    "WorkflowNotFound",
    "default_clock",
    "load_definition",
    "load_definition_file",
    "mask_id_number",
    "mask_name",
    "mask_value",
    "public_view",
]
