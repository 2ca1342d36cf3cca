"""The one exception hierarchy of casework; refusals are data.

Every error a user can cause is a :class:`CaseworkError`. It carries

* ``code`` — a stable name (:class:`Code`) a program can branch on;
* ``facts`` — what the decision was about, as JSON-ready values (the case,
  its state, the trigger, the field, the roles held and needed …);
* a default message in plain words: what was wrong and what would be right.
  It names no command, flag or page: each shell (the CLI today, the web
  application and the HTTP API later) words the refusal for its reader from
  the code and the facts, and may fall back on this message.

::

    CaseworkError
    ├── DefinitionError          a workflow file is wrong (exit 2); .problems
    ├── InputError               a data/import file or option is unusable (exit 2)
    ├── StorageError             the database could not be used: unreachable, not a database, corrupt (exit 3)
    └── RefusedError             refused by the rules, nothing changed (exit 1)
        ├── NotFound
        │   ├── CaseNotFound
        │   ├── UserNotFound
        │   └── WorkflowNotFound
        ├── InvalidCaseData      per-field problems; .problems
        ├── DuplicateCase        a unique field is already used by another case
        ├── ConflictError        someone else changed the case first
        ├── AlreadyExists        a user or workflow version already exists
        └── TransitionRefused    the step may not be taken now
            ├── InvalidTransition   trigger unknown or not allowed from this state
            ├── PermissionDenied    wrong role or scope
            ├── SameActorForbidden  four-eyes rule (``not_by``)
            ├── GuardFailed         a ``when``/``unless`` guard is false
            ├── MissingFields       ``require`` / required fields are empty
            └── CommentRequired     the step needs a comment

Definition errors and runtime refusals are separate branches: the first is
about a file a supervisor wrote, the second about an action someone tried.
:data:`CODES` documents every code once (``docs/refusals.md`` is made from it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

__all__ = [
    "CODES",
    "LINKED_FROM",
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
    "FieldValueError",
    "GuardFailed",
    "InputError",
    "InvalidCaseData",
    "InvalidTransition",
    "LoginRefused",
    "MissingFields",
    "NotFound",
    "PermissionDenied",
    "Problem",
    "RefusedError",
    "SameActorForbidden",
    "StorageError",
    "TokenRefused",
    "TransitionRefused",
    "UserNotFound",
    "WorkflowNotFound",
]


class Code(StrEnum):
    """The stable name of every refusal and input error (see :data:`CODES` for what each means)."""

    # not found
    CASE_NOT_FOUND = "case_not_found"
    USER_NOT_FOUND = "user_not_found"
    WORKFLOW_NOT_FOUND = "workflow_not_found"
    OBJECTION_NOT_FOUND = "objection_not_found"
    NOTICE_NOT_FOUND = "notice_not_found"
    MESSAGE_NOT_FOUND = "message_not_found"
    OUTBOX_NOT_FOUND = "outbox_not_found"
    TOKEN_NOT_FOUND = "token_not_found"
    # data
    INVALID_DATA = "invalid_data"
    DUPLICATE = "duplicate"
    INVALID_IMPORT = "invalid_import"
    IMPORT_CLASH = "import_clash"
    # concurrency and existence
    CONFLICT = "conflict"
    USER_EXISTS = "user_exists"
    VERSION_EXISTS = "version_exists"
    # steps
    UNKNOWN_STEP = "unknown_step"
    WRONG_STATE = "wrong_state"
    ROLE_NEEDED = "role_needed"
    SCOPE_NOT_COVERED = "scope_not_covered"
    SYSTEM_RESERVED = "system_reserved"
    USER_DISABLED = "user_disabled"
    FOUR_EYES = "four_eyes"
    GUARD_FAILED = "guard_failed"
    GUARD_HELD = "guard_held"
    GUARD_UNCHECKABLE = "guard_uncheckable"
    GUARD_TOO_COSTLY = "guard_too_costly"
    MISSING_FIELDS = "missing_fields"
    COMMENT_REQUIRED = "comment_required"
    FINAL_STATE = "final_state"
    NOT_EDITABLE = "not_editable"
    # a step acting on a linked case (a transition's then:)
    LINKED_CASE_NOT_FOUND = "linked_case_not_found"
    LINKED_CHAIN = "linked_chain"
    LINKED_CASE_STATE = "linked_case_state"
    LIMIT_REACHED = "limit_reached"
    # the deadline clock
    NO_DEADLINE = "no_deadline"
    ALREADY_PAUSED = "already_paused"
    NOT_PAUSED = "not_paused"
    # publicity
    NO_PUBLICITY = "no_publicity"
    NOT_IN_PUBLICITY = "not_in_publicity"
    NOT_PUBLICISED = "not_publicised"
    PUBLICITY_NOT_OVER = "publicity_not_over"
    PUBLICITY_OVER = "publicity_over"
    NOTICE_BACKDATED = "notice_backdated"
    NOT_STAFF = "not_staff"
    OBJECTION_TEXT_REQUIRED = "objection_text_required"
    OBJECTION_CLOSED = "objection_closed"
    NOT_RETRYABLE = "not_retryable"
    TEMPLATE_TOO_COSTLY = "template_too_costly"
    PDF_UNAVAILABLE = "pdf_unavailable"
    # campaigns on a date a supervisor sets (campaign:)
    NO_CAMPAIGN = "no_campaign"
    CAMPAIGN_BACKDATED = "campaign_backdated"
    CAMPAIGN_RAN = "campaign_ran"
    CAMPAIGN_NOT_SET = "campaign_not_set"
    CAMPAIGN_NOT_DUE = "campaign_not_due"
    CAMPAIGN_OUT_OF_YEAR = "campaign_out_of_year"
    # workflow versions
    WEAKENED_CONTROLS = "weakened_controls"
    VERSION_NOT_NEWER = "version_not_newer"
    MIGRATION_STRANDS = "migration_strands"
    MIGRATION_MAP = "migration_map"
    # unusable input (exit 2)
    INVALID_INPUT = "invalid_input"
    INVALID_USER = "invalid_user"
    # logins to the web application
    LOGIN_FAILED = "login_failed"
    LOGIN_LOCKED = "login_locked"
    WEAK_PASSWORD = "weak_password"
    # the HTTP API
    TOKEN_INVALID = "token_invalid"
    TOKEN_EXISTS = "token_exists"
    RATE_LIMITED = "rate_limited"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    PRECONDITION_REQUIRED = "precondition_required"
    INVALID_DEFINITION = "invalid_definition"
    # the database itself (exit 3)
    DATABASE_UNUSABLE = "database_unusable"


@dataclass(frozen=True)
class CodeInfo:
    """What a code means, and the facts a refusal with it carries."""

    meaning: str
    facts: tuple[str, ...]


#: Every code, what it means, and the facts that come with it.
CODES: dict[Code, CodeInfo] = {
    Code.CASE_NOT_FOUND: CodeInfo("No case has that reference.", ("case",)),
    Code.USER_NOT_FOUND: CodeInfo("No user has that username.", ("user",)),
    Code.WORKFLOW_NOT_FOUND: CodeInfo(
        "No workflow (or no such version of it) is loaded.", ("workflow", "version", "suggestion", "known")
    ),
    Code.OBJECTION_NOT_FOUND: CodeInfo("The case has no objection with that number.", ("case", "objection")),
    Code.NOTICE_NOT_FOUND: CodeInfo("No public notice has that number or id.", ("notice",)),
    Code.MESSAGE_NOT_FOUND: CodeInfo("The user's inbox has no message with that id.", ("user", "message")),
    Code.OUTBOX_NOT_FOUND: CodeInfo("No outbox message has that id.", ("outbox",)),
    Code.TOKEN_NOT_FOUND: CodeInfo("The user has no live API token of that name.", ("user", "token")),
    Code.INVALID_DATA: CodeInfo(
        "Values given for a case (or a comment, reason or objection) are invalid; one problem per field.",
        ("problems",),
    ),
    Code.DUPLICATE: CodeInfo(
        "A `unique` field's value already belongs to another open case (a household is filed once). The facts "
        "name that case only if the user covers its scope; otherwise `elsewhere` is true and nothing of it is said.",
        ("field", "existing_case", "existing_state", "elsewhere"),
    ),
    Code.INVALID_IMPORT: CodeInfo(
        "Rows of an import file are invalid, so nothing was imported.", ("rows", "invalid", "total")
    ),
    Code.IMPORT_CLASH: CodeInfo(
        "While an import ran, someone opened a case with a unique value of one of its rows; that batch was not "
        "imported (earlier batches were).",
        ("fields", "first_line", "last_line"),
    ),
    Code.CONFLICT: CodeInfo(
        "Someone else changed the case between reading and writing it; nothing was saved.",
        ("case", "expected_version", "found_version", "detail"),
    ),
    Code.USER_EXISTS: CodeInfo("A user with that username already exists.", ("user",)),
    Code.VERSION_EXISTS: CodeInfo(
        "That workflow version is already loaded with different content.", ("workflow", "version", "next_version")
    ),
    Code.UNKNOWN_STEP: CodeInfo(
        "The workflow has no step (trigger) of that name.", ("case", "state", "trigger", "workflow", "suggestion")
    ),
    Code.WRONG_STATE: CodeInfo(
        "The step does not leave the case's current state.",
        ("case", "state", "state_label", "trigger", "sources", "possible"),
    ),
    Code.ROLE_NEEDED: CodeInfo(
        "The user holds none of the roles the action needs.", ("case", "state", "trigger", "user", "roles", "needed")
    ),
    Code.SCOPE_NOT_COVERED: CodeInfo(
        "The case's scope (county) is not among the user's scopes.", ("case", "user", "scopes", "scope")
    ),
    Code.SYSTEM_RESERVED: CodeInfo("`system` is the scheduler's own identity; no person may act as it.", ("user",)),
    Code.USER_DISABLED: CodeInfo(
        "The user is disabled and can no longer act (an operator can enable them again).", ("user", "disabled_at")
    ),
    Code.FOUR_EYES: CodeInfo(
        "Four-eyes rule: the user took part in an earlier step (`not_by`) that forbids them this one: fired it, "
        "or entered or changed the case's data before it.",
        ("case", "state", "trigger", "user", "earlier"),
    ),
    Code.GUARD_FAILED: CodeInfo(
        "The step's `when` condition is not met.", ("case", "state", "trigger", "guard", "explain")
    ),
    Code.GUARD_HELD: CodeInfo(
        "The step's `unless` condition holds it (e.g. an open objection holds the end of publicity).",
        ("case", "state", "trigger", "guard", "explain"),
    ),
    Code.GUARD_UNCHECKABLE: CodeInfo(
        "The step's condition could not be evaluated on the case's data.",
        ("case", "state", "trigger", "guard", "error"),
    ),
    Code.GUARD_TOO_COSTLY: CodeInfo(
        "The step's condition went over the evaluation budget (CPU time or memory) on the case's data; the "
        "workflow's condition must be simplified.",
        ("case", "state", "trigger", "guard", "error"),
    ),
    Code.MISSING_FIELDS: CodeInfo(
        "Fields the step requires (or the workflow marks required) are empty.",
        ("case", "state", "trigger", "fields", "labels"),
    ),
    Code.COMMENT_REQUIRED: CodeInfo(
        "The action needs a comment saying why.", ("case", "state", "trigger", "objection", "outcome")
    ),
    Code.FINAL_STATE: CodeInfo("The case is in a final state; its data can no longer be edited.", ("case", "state")),
    Code.NOT_EDITABLE: CodeInfo(
        "The user may not change these fields in the case's state (the state's `edit:`, by default only the "
        "initial state); `corrections` are the steps back (comment required) to a state where they may be.",
        ("case", "state", "trigger", "user", "roles", "fields", "editable", "corrections"),
    ),
    Code.LIMIT_REACHED: CodeInfo(
        "The step would take a person (the limit's `key`, e.g. an ID number, never shown) over one of the "
        "workflow's limits across cases (`limits:`): `used` is what other cases in the limit's states already "
        "count in `period` (a year, or `all`), `asked` what this case would add, `left` what may still be added "
        "(amounts as decimal text; a count limit counts cases).",
        ("case", "state", "trigger", "limit", "label", "key", "period", "max", "used", "asked", "left"),
    ),
    Code.LINKED_CASE_NOT_FOUND: CodeInfo(
        "The step also takes a step on the case whose reference is in one of its fields (its `then:`), and that "
        "field is empty or names no case; neither case was changed. Also: a field linked to another workflow's "
        "case (`link:`) was given a reference that names no case of `linked_workflow`; nothing was changed.",
        ("case", "trigger", "field", "linked_case", "linked_workflow", "linked_from"),
    ),
    Code.LINKED_CASE_STATE: CodeInfo(
        "A field linked to another workflow's case (`link:`) names a case that is not in one of the states the "
        "link allows (`allowed`; e.g. an archive that exited hardship is no longer filed), checked when the "
        "reference is given and at each step that requires the field; nothing was changed.",
        ("case", "state", "trigger", "field", "linked_case", "linked_workflow", "linked_state", "allowed"),
    ),
    Code.LINKED_CHAIN: CodeInfo(
        "Steps that take steps on linked cases (`then:`) would come back to a case already acted on (a cycle) or "
        "go more than `limit` cases deep; `chain` lists the steps in order. Nothing was changed.",
        ("case", "trigger", "linked_case", "chain", "limit", "linked_from"),
    ),
    Code.NO_DEADLINE: CodeInfo(
        "The case's state has no deadline clock that may be paused: none, or a publicity period, which runs its "
        "full length.",
        ("case", "state"),
    ),
    Code.ALREADY_PAUSED: CodeInfo("The case's deadline clock is already paused.", ("case", "detail")),
    Code.NOT_PAUSED: CodeInfo("The case's deadline clock is not paused.", ("case", "detail")),
    Code.NO_PUBLICITY: CodeInfo(
        "The workflow has no publicity (or its publicity section lacks what the action needs).",
        ("workflow", "missing"),
    ),
    Code.NOT_IN_PUBLICITY: CodeInfo(
        "Objections are taken only while the case is in publicity.", ("case", "state", "publicity_state")
    ),
    Code.NOT_STAFF: CodeInfo("The user holds no role in the case's workflow.", ("case", "user", "workflow")),
    Code.NOT_PUBLICISED: CodeInfo(
        "The case has not been on a published notice since it entered publicity, so its publicity has not "
        "started: it cannot leave publicity except by an upheld objection, a withdrawal or a rejection.",
        ("case", "state", "trigger", "publicity_state"),
    ),
    Code.PUBLICITY_NOT_OVER: CodeInfo(
        "The case's publicity period is not over yet; until it is, only an upheld objection, a withdrawal or a "
        "rejection can take it out of publicity, whoever asks.",
        ("case", "state", "trigger", "period_end"),
    ),
    Code.PUBLICITY_OVER: CodeInfo(
        "The case's publicity period is over; objections are taken only until its last day ends.",
        ("case", "period_end"),
    ),
    Code.NOTICE_BACKDATED: CodeInfo(
        "A notice cannot be dated before today (in the workflow's timezone): its period would have run "
        "before anyone could see it.",
        ("workflow", "date", "today"),
    ),
    Code.OBJECTION_TEXT_REQUIRED: CodeInfo("An objection needs its text.", ("case",)),
    Code.OBJECTION_CLOSED: CodeInfo(
        "The objection is already resolved.", ("case", "objection", "status", "resolved_by")
    ),
    Code.NOT_RETRYABLE: CodeInfo(
        "Only failed or dead outbox messages can be put back in the queue.", ("outbox", "status")
    ),
    Code.TEMPLATE_TOO_COSTLY: CodeInfo(
        "A message or notice template went over the evaluation budget (CPU time, memory or output size) while "
        "rendering; the template must be simplified.",
        ("template", "error"),
    ),
    Code.PDF_UNAVAILABLE: CodeInfo(
        "A notice cannot be printed to PDF on this machine: a system package it needs (a CJK font, Pango, "
        "fontconfig) is missing; the notice itself is unchanged. `install` names the Debian packages.",
        ("missing", "install"),
    ),
    Code.NO_CAMPAIGN: CodeInfo(
        "The workflow declares no campaign (`campaign:`), so it has no date to set, cancel or run.", ("workflow",)
    ),
    Code.CAMPAIGN_BACKDATED: CodeInfo(
        "A campaign's date cannot be before today (in the workflow's timezone): it would run at once, on a day "
        "already gone.",
        ("workflow", "date", "today"),
    ),
    Code.CAMPAIGN_RAN: CodeInfo(
        "The campaign of that year has already run (it runs once a year); its date can no longer be set, "
        "cancelled or run again.",
        ("workflow", "year", "date", "ran_at", "outcome"),
    ),
    Code.CAMPAIGN_NOT_SET: CodeInfo(
        "No date is set for the campaign of that year (or it was cancelled), so there is nothing to cancel or run.",
        ("workflow", "year"),
    ),
    Code.CAMPAIGN_NOT_DUE: CodeInfo(
        "The campaign's date has not come yet; it runs by itself on that day (or set it for today).",
        ("workflow", "year", "date", "today"),
    ),
    Code.CAMPAIGN_OUT_OF_YEAR: CodeInfo(
        "A campaign's date is outside its programme year's window: from 1 November of the year before to 31 "
        "December of the year (送温暖 of 2027 may run in December 2026).",
        ("workflow", "year", "date", "earliest", "latest"),
    ),
    Code.WEAKENED_CONTROLS: CodeInfo(
        "The new workflow version drops or relaxes controls of the latest stored version (a four-eyes rule, a "
        "required comment, the masking of personal data, a condition); each must be accepted by name.",
        ("workflow", "version", "previous_version", "weakened", "accepted"),
    ),
    Code.VERSION_NOT_NEWER: CodeInfo(
        "Cases move only forward: no loaded version of the workflow is older than the version they were asked to "
        "move to, so no case could move.",
        ("workflow", "version", "versions"),
    ),
    Code.MIGRATION_STRANDS: CodeInfo(
        "Moving cases to the new version would leave some where nothing can ever happen to them again: in a state "
        "the new version lacks, in a final state without the step that closes it, or in a state no step leads out "
        "of; nothing was moved. `states` names each such state and `why` says what is wrong with it.",
        ("workflow", "version", "states", "why", "suggestion"),
    ),
    Code.MIGRATION_MAP: CodeInfo(
        "A state mapping (OLD=NEW) names an old state that no older version declares, one that no case to be "
        "moved is in, or an old state twice (exit 2).",
        ("workflow", "state", "known", "suggestion"),
    ),
    Code.INVALID_INPUT: CodeInfo("A value or file given is unusable as it is (exit 2).", ("option", "value")),
    Code.INVALID_USER: CodeInfo(
        "A user's details (new or changed) are invalid, or name a role or scope no loaded workflow declares; "
        "one problem per field.",
        ("problems",),
    ),
    Code.LOGIN_FAILED: CodeInfo(
        "The username or password is wrong (or the user has no password yet); the same answer for each, so a "
        "login form reveals no username. The attempt counts towards the lockout.",
        ("user",),
    ),
    Code.LOGIN_LOCKED: CodeInfo(
        "Too many failed logins for this user or from this address in a short time: no login is tried until "
        "`retry_after` seconds have passed (`locked`: `user` or `client`).",
        ("locked", "retry_after"),
    ),
    Code.WEAK_PASSWORD: CodeInfo(
        "A new password is too short, contains the username, or is one character repeated.",
        ("user", "min_length"),
    ),
    Code.TOKEN_INVALID: CodeInfo(
        "The request's API token is missing, unknown, expired or revoked, or its user is disabled "
        "(HTTP 401; `why` says which).",
        ("why",),
    ),
    Code.TOKEN_EXISTS: CodeInfo(
        "The user already has a live API token of that name: revoke it first or choose another name.",
        ("user", "token"),
    ),
    Code.RATE_LIMITED: CodeInfo(
        "The token sent more than `limit` requests in `window` seconds: nothing was done; retry after "
        "`retry_after` seconds (HTTP 429 with Retry-After).",
        ("token", "limit", "window", "retry_after"),
    ),
    Code.IDEMPOTENCY_KEY_REUSED: CodeInfo(
        "The Idempotency-Key was already used by this user for a different request (another workflow, case, "
        "step or data): nothing was done; send a new key for a new request.",
        ("key", "case"),
    ),
    Code.PRECONDITION_REQUIRED: CodeInfo(
        "A change to a case must say which version it was decided on (If-Match with the case's ETag; HTTP 428): "
        "nothing was done; read the case and send its ETag.",
        ("case",),
    ),
    Code.INVALID_DEFINITION: CodeInfo("A workflow file is wrong; every problem is located.", ("problems",)),
    Code.DATABASE_UNUSABLE: CodeInfo(
        "The database could not be used: the server is unreachable or refused, or the SQLite file is not a "
        "database, is corrupt or cannot be opened (exit 3). `database` is the file or the URL without password.",
        ("database", "detail"),
    ),
}

#: A step that a transition's ``then:`` takes on a linked case is refused with that step's own code and facts,
#: and ``linked_from``: the case and step whose ``then:`` took it ({"case", "workflow", "trigger", "field"}).
LINKED_FROM = "linked_from"

# the refusals a step on a linked case can meet (the others are about a user's own request, not a step)
for _code in (
    Code.SCOPE_NOT_COVERED,
    Code.UNKNOWN_STEP,
    Code.WRONG_STATE,
    Code.ROLE_NEEDED,
    Code.FOUR_EYES,
    Code.GUARD_FAILED,
    Code.GUARD_HELD,
    Code.GUARD_UNCHECKABLE,
    Code.GUARD_TOO_COSTLY,
    Code.MISSING_FIELDS,
    Code.COMMENT_REQUIRED,
    Code.NOT_PUBLICISED,
    Code.PUBLICITY_NOT_OVER,
    Code.DUPLICATE,
    Code.CONFLICT,
):
    if LINKED_FROM not in CODES[_code].facts:
        CODES[_code] = CodeInfo(CODES[_code].meaning, (*CODES[_code].facts, LINKED_FROM))


class CaseworkError(Exception):
    """Base of every error casework raises on purpose: a code, the facts, and a default message."""

    exit_code: ClassVar[int] = 1
    default_code: ClassVar[Code] = Code.INVALID_INPUT

    def __init__(self, message: str, /, *, code: Code | None = None, **facts: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code: Code = code or self.default_code
        #: what the refusal is about; None values are left out
        self.facts: dict[str, Any] = {k: v for k, v in facts.items() if v is not None}

    def to_json(self) -> dict[str, Any]:
        """``{"code", "message", "facts"}``: the refusal as a program reads it."""
        return {"code": str(self.code), "message": self.message, "facts": dict(self.facts)}


@dataclass(frozen=True, order=True)
class Problem:
    """One located problem in a workflow file."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class DefinitionError(CaseworkError):
    """A workflow file is wrong; :attr:`problems` lists every problem found."""

    exit_code = 2
    default_code = Code.INVALID_DEFINITION

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in workflow definition"
        super().__init__(
            head + ":\n" + "\n".join(str(p) for p in self.problems),
            problems=[{"file": p.file, "line": p.line, "column": p.column, "message": p.message} for p in problems],
        )


class InputError(CaseworkError):
    """An input file or value cannot be used as given (exit 2)."""

    exit_code = 2


class StorageError(CaseworkError):
    """The database could not be used (exit 3): not a refusal, not bad input — the storage itself failed."""

    exit_code = 3
    default_code = Code.DATABASE_UNUSABLE


class RefusedError(CaseworkError):
    """The rules refuse the action; nothing was changed."""

    exit_code = 1


class LoginRefused(RefusedError):
    """A login or password change is refused: wrong password, locked out, or a weak new password."""

    default_code = Code.LOGIN_FAILED


class TokenRefused(RefusedError):
    """An API request's token is unusable, or the token sent too many requests; nothing was done."""

    default_code = Code.TOKEN_INVALID


class NotFound(RefusedError):
    """Something named does not exist."""


class CaseNotFound(NotFound):
    default_code = Code.CASE_NOT_FOUND

    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(f"no case {ref!r}: check the reference (e.g. ZZ-2026-000123)", case=ref)


class UserNotFound(NotFound):
    default_code = Code.USER_NOT_FOUND

    def __init__(self, username: str) -> None:
        self.username = username
        super().__init__(f"no user {username!r}", user=username)


class WorkflowNotFound(NotFound):
    default_code = Code.WORKFLOW_NOT_FOUND

    def __init__(
        self, name: str, version: int | None = None, *, suggestion: str | None = None, known: Sequence[str] = ()
    ) -> None:
        self.name = name
        self.version = version
        what = f"{name!r} version {version}" if version is not None else repr(name)
        hint = ""
        if suggestion:
            hint = f"; did you mean {suggestion!r}?"
        elif known:
            hint = f"; loaded: {', '.join(sorted(known)[:12])}"
        super().__init__(
            f"no workflow {what} is loaded{hint}",
            workflow=name,
            version=version,
            suggestion=suggestion,
            known=sorted(known) or None,
        )


@dataclass(frozen=True)
class FieldProblem:
    """What is wrong with one field's value.

    ``message`` is the engine's plain words; ``kind`` (e.g. ``"not_integer"``,
    ``"above_max"``, ``"id_check_digit"``) and ``params`` (e.g. ``{"max": 10}``)
    say the same for a program, so a shell can word it in its own language.
    A problem without a ``kind`` is shown with its message.
    """

    field: str
    message: str
    kind: str | None = None
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "message": self.message}
        if self.kind is not None:
            out["kind"] = self.kind
        if self.params:
            out["params"] = dict(self.params)
        return out

    @classmethod
    def of(cls, name: str, exc: ValueError, prefix: str = "") -> FieldProblem:
        """The problem of field ``name`` from a validator's ``ValueError`` (its kind and params if it has them)."""
        return cls(name, prefix + str(exc), getattr(exc, "kind", None), dict(getattr(exc, "params", None) or {}))


class FieldValueError(ValueError):
    """A value a field cannot take: the message, and the ``kind`` and ``params`` of :class:`FieldProblem`."""

    def __init__(self, message: str, kind: str, **params: Any) -> None:
        super().__init__(message)
        self.kind = kind
        self.params = params

    def __reduce__(self) -> tuple[Any, ...]:  # picklable although its constructor takes more than the message
        return (_field_value_error, (str(self), self.kind, self.params))


def _field_value_error(message: str, kind: str, params: dict[str, Any]) -> FieldValueError:
    return FieldValueError(message, kind, **params)


class InvalidCaseData(RefusedError):
    """Case data failed validation; :attr:`problems` has one entry per field."""

    default_code = Code.INVALID_DATA

    def __init__(self, problems: list[FieldProblem], *, case: str | None = None) -> None:
        self.problems = problems
        super().__init__(
            "invalid case data: " + "; ".join(str(p) for p in problems),
            problems=[p.to_json() for p in problems],
            case=case,
        )


class DuplicateCase(RefusedError):
    """A field marked ``unique`` already belongs to another case."""

    default_code = Code.DUPLICATE

    def __init__(
        self, field: str, existing_ref: str | None, existing_state: str | None, *, elsewhere: bool = False
    ) -> None:
        self.field = field
        # a case outside the refused user's scopes is not theirs to know of: neither its ref, nor
        # its state, nor its county (another county's archive is that county's business)
        self.elsewhere = elsewhere
        self.existing_ref = None if elsewhere else existing_ref
        self.existing_state = None if elsewhere else existing_state
        if elsewhere:
            message = (
                f"a household with this {field} is already filed in another county (a household is filed once); "
                "ask the county union office or your supervisor"
            )
        else:
            where = (
                f"case {existing_ref} (state {existing_state})"
                if existing_ref
                else "a case being opened at this very moment"
            )
            message = (
                f"{field} is already on {where}; a household is filed once: continue that case, or withdraw it first"
            )
        super().__init__(
            message,
            field=field,
            existing_case=self.existing_ref,
            existing_state=self.existing_state,
            elsewhere=elsewhere or None,
        )

    @classmethod
    def held(cls, field: str, ref: str, state: str, *, visible: bool) -> DuplicateCase:
        """The refusal for a value held by case ``ref``: named only if the refused user may see it (``visible``)."""
        return cls(field, ref, state) if visible else cls(field, None, None, elsewhere=True)


class ConflictError(RefusedError):
    """Someone else changed the case between our read and our write (or it is not in the state assumed)."""

    default_code = Code.CONFLICT

    def __init__(
        self,
        ref: str,
        detail: str = "",
        *,
        code: Code | None = None,
        expected_version: int | None = None,
        found_version: int | None = None,
    ) -> None:
        self.ref = ref
        if code is None or code is Code.CONFLICT:
            extra = f" ({detail})" if detail else ""
            message = (
                f"case {ref} was changed by someone else at the same time{extra}; "
                "nothing was saved: look at it again and retry"
            )
        else:
            message = f"case {ref}: {detail}"
        super().__init__(
            message,
            code=code,
            case=ref,
            detail=detail or None,
            expected_version=expected_version,
            found_version=found_version,
        )


class AlreadyExists(RefusedError):
    """A user or workflow version of that name already exists."""

    default_code = Code.USER_EXISTS


class TransitionRefused(RefusedError):
    """The step may not be taken now; carries the case, state and trigger."""

    default_code = Code.WRONG_STATE

    def __init__(
        self,
        message: str,
        *,
        code: Code | None = None,
        ref: str = "",
        state: str = "",
        trigger: str = "",
        **facts: Any,
    ) -> None:
        self.ref = ref
        self.state = state
        self.trigger = trigger
        super().__init__(message, code=code, case=ref or None, state=state or None, trigger=trigger or None, **facts)


class InvalidTransition(TransitionRefused):
    """The trigger does not exist or does not leave the case's current state."""


class PermissionDenied(TransitionRefused):
    """The actor lacks the role or the scope for this action."""

    default_code = Code.ROLE_NEEDED


class SameActorForbidden(TransitionRefused):
    """The four-eyes rule: the actor already fired the step named in ``not_by``."""

    default_code = Code.FOUR_EYES


class GuardFailed(TransitionRefused):
    """A ``when`` guard is false or an ``unless`` guard is true."""

    default_code = Code.GUARD_FAILED


class MissingFields(TransitionRefused):
    """Fields the step requires are empty; :attr:`missing` lists them."""

    default_code = Code.MISSING_FIELDS

    def __init__(self, message: str, missing: list[str], *, labels: Mapping[str, str] | None = None, **kw: Any) -> None:
        self.missing = missing
        super().__init__(message, fields=list(missing), labels=dict(labels or {}), **kw)


class CommentRequired(TransitionRefused):
    """The step needs a comment and none was given."""

    default_code = Code.COMMENT_REQUIRED
