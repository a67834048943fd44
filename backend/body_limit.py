"""A size limit on every HTTP request body, enforced before anything parses it.

Gradio limits uploads (`max_file_size`) but not the JSON of an event: a page-only
event (a preset import, a prompt, a LoRA list, the history) or an image sent inline
as a data: URL is read and parsed whatever its size. `BodyLimit` is a plain ASGI
middleware on Gradio's FastAPI app (app.py passes it through `launch(app_kwargs=...)`):

- a request that declares a Content-Length over the limit is answered at once with
  HTTP 413 and a JSON body naming the limit; its body is never read;
- a body sent without a Content-Length (chunked) is counted as it streams in and cut
  at the limit: the route sees an error instead of more bytes, and the client gets
  the same 413 (whatever the route would have answered is replaced).

Either way the connection is closed after the answer, so the rest of the body is
not read either. Only the raw bytes are counted: nothing is decoded here.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    """Raised to the route that reads past the limit (it is answered with a 413)."""


class BodyLimit:
    """Refuse request bodies over `max_bytes` with 413 before they are parsed."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = content_length(scope)
        if declared is None:  # present but not a number: h11/httptools refuse it first; be safe
            await self._refuse(send, 400, "The request's Content-Length is not a number.")
            return
        if declared > self.max_bytes:
            await self._refuse(send, 413, self.message())
            return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the route, counting the body it reads; past the limit, answer 413 instead of it."""
        received = 0
        over = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, over
            if over:
                raise BodyTooLarge(self.message())
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    raise BodyTooLarge(self.message())
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:
                return  # the route's own answer to the cut body is replaced by the 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            pass
        if over and not started:
            await self._refuse(send, 413, self.message())

    def message(self) -> str:
        return f"The request is larger than the {self.max_bytes / 2**20:g} MB this server accepts (STUDIO_MAX_BODY_MB)."

    @staticmethod
    async def _refuse(send: Send, status: int, message: str) -> None:
        body = json.dumps({"error": message, "detail": message}).encode()
        await send({
            "type": "http.response.start", "status": status,
            "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),  # the server then stops reading this connection
            ],
        })
        await send({"type": "http.response.body", "body": body})


def content_length(scope: Scope) -> int | None:
    """The declared Content-Length (0 when none is declared); None when it is not a number."""
    for name, value in scope.get("headers") or ():
        if name.lower() == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return None
            return length if length >= 0 else None
    return 0
