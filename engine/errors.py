"""The one exception hierarchy of casework.

Every error a user can cause is a :class:`CaseworkError`. Its message is
written for the person who will read it: what was wrong, and what would be
right. The CLI prints ``str(error)`` on one line and exits with
:attr:`CaseworkError.exit_code`; no traceback reaches a user for these.

::

    CaseworkError
    ├── DefinitionError          a workflow file is wrong (exit 2); .problems
    ├── InputError               a data/import file or option is unusable (exit 2)
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
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AlreadyExists",
    "CaseNotFound",
    "CaseworkError",
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
]


class CaseworkError(Exception):
    """Base of every error casework raises on purpose."""

    exit_code = 1


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

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in workflow definition"
        super().__init__(head + ":\n" + "\n".join(str(p) for p in self.problems))


class InputError(CaseworkError):
    """An input file or command-line value cannot be used as given."""

    exit_code = 2


class RefusedError(CaseworkError):
    """The rules refuse the action; nothing was changed."""

    exit_code = 1


class NotFound(RefusedError):
    """Something named does not exist."""


class CaseNotFound(NotFound):
    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(f"no case {ref!r}: check the reference (e.g. ZZ-2026-000123) with 'casework case list'")


class UserNotFound(NotFound):
    def __init__(self, username: str) -> None:
        self.username = username
        super().__init__(f"no user {username!r}: add them with 'casework user add' or check 'casework user list'")


class WorkflowNotFound(NotFound):
    def __init__(self, name: str, version: int | None = None, hint: str = "") -> None:
        self.name = name
        self.version = version
        what = f"{name!r} version {version}" if version is not None else repr(name)
        super().__init__(
            f"no workflow {what}{hint}: load it with 'casework workflow load FILE' or check 'casework workflow list'"
        )


@dataclass(frozen=True)
class FieldProblem:
    """What is wrong with one field's value."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class InvalidCaseData(RefusedError):
    """Case data failed validation; :attr:`problems` has one entry per field."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("invalid case data: " + "; ".join(str(p) for p in problems))


class DuplicateCase(RefusedError):
    """A field marked ``unique`` already belongs to another case."""

    def __init__(self, field: str, existing_ref: str, existing_state: str) -> None:
        self.field = field
        self.existing_ref = existing_ref
        self.existing_state = existing_state
        super().__init__(
            f"{field} is already on case {existing_ref} (state {existing_state}); "
            f"a household is filed once: continue that case, or withdraw it first"
        )


class ConflictError(RefusedError):
    """Someone else changed the case between our read and our write."""

    def __init__(self, ref: str, detail: str = "") -> None:
        self.ref = ref
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"case {ref} was changed by someone else at the same time{extra}; "
            "nothing was saved: look at it again with 'casework case show' and retry"
        )


class AlreadyExists(RefusedError):
    """A user or workflow version of that name already exists."""


class TransitionRefused(RefusedError):
    """The step may not be taken now; carries the case, state and trigger."""

    def __init__(self, message: str, *, ref: str = "", state: str = "", trigger: str = "") -> None:
        self.ref = ref
        self.state = state
        self.trigger = trigger
        super().__init__(message)


class InvalidTransition(TransitionRefused):
    """The trigger does not exist or does not leave the case's current state."""


class PermissionDenied(TransitionRefused):
    """The actor lacks the role or the scope for this action."""


class SameActorForbidden(TransitionRefused):
    """The four-eyes rule: the actor already fired the step named in ``not_by``."""


class GuardFailed(TransitionRefused):
    """A ``when`` guard is false or an ``unless`` guard is true."""


class MissingFields(TransitionRefused):
    """Fields the step requires are empty; :attr:`missing` lists them."""

    def __init__(self, message: str, missing: list[str], **kw: str) -> None:
        self.missing = missing
        super().__init__(message, **kw)


class CommentRequired(TransitionRefused):
    """The step needs a comment and none was given."""
