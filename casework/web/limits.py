"""The largest request body the application reads (an import file, a workflow's YAML, a form).

Starlette's form parser limits the size of each text field but spools a file
part of any size to disk; this middleware stops a request at
``max_bytes`` before that: at once when its ``Content-Length`` says more, and
while reading when a chunked body grows past it. Either way the answer is
413 with a Chinese sentence, and nothing is done.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["TOO_LARGE", "BodyLimit"]

#: set in the request's scope (to the limit) when its body grew past it: a framework that catches every
#: exception while reading a body (FastAPI answers 400) can still tell that it was too large
TOO_LARGE = "casework.body_too_large"

_TOO_LARGE = "提交的内容太大（超过 {mb:.1f} MB），未作任何更改。请拆分文件后分批导入。"


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuse (413) a request whose body is larger than ``max_bytes``.

    ``respond``: the refusal (default: the pages' Chinese sentence); ``skip``: path prefixes left to a
    limit of their own (the API answers in JSON, with a smaller limit).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        respond: Callable[[int], Response] | None = None,
        skip: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.respond = respond or (
            lambda limit: PlainTextResponse(_TOO_LARGE.format(mb=limit / 1_000_000), status_code=413)
        )
        self.skip = tuple(skip)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.skip and scope["path"].startswith(self.skip)):
            await self.app(scope, receive, send)
            return
        refuse = self.respond(self.max_bytes)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await refuse(scope, receive, send)
                    return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    scope[TOO_LARGE] = self.max_bytes
                    raise _TooLarge()
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if started:
                raise
            await refuse(scope, receive, send)
