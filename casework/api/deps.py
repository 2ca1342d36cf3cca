"""Who is calling (the bearer token) and how a call reaches the engine.

Every operation depends on :data:`Caller`: the request's ``Authorization:
Bearer`` token, checked, counted and rate-limited by the engine
(:mod:`engine.tokens`). Cookies are never read here, so the web
application's session is no key to the API. Engine calls run inside
:meth:`Call.run`, under the token's narrowing and with its name on every
audit event (:mod:`engine.acting`); a case outside the caller's counties
answers exactly as a case that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from engine import CaseNotFound, Casework, Code, InputError, RefusedError
from engine.acting import Acting, acting_through

__all__ = ["Call", "Caller", "IdempotencyKey", "IfMatch", "etag", "expected_version", "hidden", "named_version"]

T = TypeVar("T")

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token: `casework token create USER --name NAME` prints it once.",
)


@dataclass(frozen=True)
class Call:
    """An authenticated request: the engine, and the token it acts through."""

    service: Casework
    acting: Acting

    @property
    def user(self) -> str:
        """The token's user."""
        return self.acting.username

    def run(self, work: Callable[[Casework], T], *, ref: str | None = None) -> T:
        """``work(engine)`` as the token; a case ``ref`` outside the caller's counties is "not found"."""
        try:
            with acting_through(self.acting):
                return work(self.service)
        except RefusedError as exc:
            if ref is not None and hidden(ref, exc.code, exc.facts):
                # the same answer as for a reference that does not exist: no county's cases leak
                raise CaseNotFound(ref) from None
            raise


def hidden(ref: str, code: str, facts: Mapping[str, Any]) -> bool:
    """Whether a refusal about case ``ref`` is that the caller does not cover its county: answered as not found."""
    return code == Code.SCOPE_NOT_COVERED and facts.get("case") == ref


def _call(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Call:
    service: Casework = request.app.state.service
    tokens = request.app.state.tokens
    secret = credentials.credentials if credentials is not None else None
    client = request.client.host if request.client else None  # behind a proxy: uvicorn's forwarded address
    acting = tokens.authenticate(secret, request.method, request.url.path, client)
    return Call(service, acting)


#: the authenticated caller of an operation
Caller = Annotated[Call, Depends(_call)]

#: an ETag as this API gives it: the version, quoted (a weak W/"3" never matches If-Match: RFC 9110 13.1.1)
_ETAG = re.compile(r'^\s*"(\d{1,9})"\s*$')


def etag(version: int) -> str:
    """The ``ETag`` of a case at ``version`` (its version number, quoted)."""
    return f'"{version}"'


IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='The case\'s ETag as last read (e.g. `"3"`): the change is made only if the case is still '
        "at that version (412 otherwise; 428 without it).",
    ),
]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Any unique string (a UUID): a retry with the same key and request is answered with the case "
        "the first one made or moved, and changes nothing again.",
        max_length=255,
    ),
]


def expected_version(if_match: str | None, ref: str) -> int | None:
    """The version ``If-Match`` names (None for ``*``); refuses a change without one (428) or with a bad one."""
    if if_match is None or not if_match.strip():
        raise RefusedError(
            f"a change to case {ref} needs the header If-Match with the case's ETag (read the case first: "
            'GET /api/v1/cases/{ref} answers ETag: "<version>"); nothing was done',
            code=Code.PRECONDITION_REQUIRED,
            case=ref,
        )
    if if_match.strip() == "*":
        return None
    version = named_version(if_match)
    if version is None:
        raise InputError(
            f'If-Match must be the case\'s ETag as read, e.g. "3" with its quotes, not {if_match[:40]!r}; '
            "nothing was done",
            code=Code.INVALID_INPUT,
            option="If-Match",
            value=if_match[:40],
        )
    return version


def named_version(if_match: str | None) -> int | None:
    """The case version an ``If-Match`` header names, or None (no header, ``*``, or not one of our ETags)."""
    found = _ETAG.match(if_match) if if_match else None
    return int(found.group(1)) if found else None
