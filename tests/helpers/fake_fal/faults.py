"""The fault injection knobs of the fake: fal (or a proxy in front of it) failing in every way
the tests need. They are plain attributes of ``FakeFal``, set between runs; ``reset()`` puts
them back to "no fault".

- ``fail``: ``{"status": 401|422|429|500|502|503|504, "detail": ..., "times": n | None, "on": "submit"|"status"|
  "result"|"cancel"|"stream"|"run"|"upload"|"token"|"download"|"any", "error_type": str?, "ingress": bool?,
  "retry_after": str?}`` (``times=None``: forever). A JSON 502-504 carries ``x-fal-request-id`` so fal_client
  does not retry it; ``"ingress": True`` answers an nginx HTML page instead, which fal_client retries.
- ``submit_reply_lost`` (None | 502 | 503 | 504 | "drop"): the job is made but its reply is lost.
- ``cut_stream_after`` (None | n): the stream breaks off after n events.
- ``malformed``: the output (queue result or last stream event) is not JSON.
- ``results_gone``: result image URLs answer 404 (an expired or lost file).
- ``fail["echo_key"]``: the error body echoes the request's credentials, as a careless proxy or
  server might: ``{auth}`` in the detail (a string, or each 422 item's ``msg``) becomes the
  Authorization header as sent (``Key <key>``), ``{key}`` the bare key.
- ``unloadable_loras``: LoRA paths the runner cannot load; a job with one fails with a 422 on
  that path ("Could not load LoRA weights"): at once on run/stream, and in the queue as a
  COMPLETED status with ``error`` whose result answers the 422.
"""

from __future__ import annotations

import threading
import uuid
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from tests.helpers.fake_fal.records import HTTPError, Job, Recorded
from tests.helpers.fake_fal.schema import error_item

if TYPE_CHECKING:
    from tests.helpers.fake_fal.handler import Handler

NGINX_PAGE = (
    "<html><head><title>{s}</title></head><body><center><h1>{s}</h1></center><hr><center>nginx</center></body></html>"
)
DEFAULT_DETAILS = {401: "Invalid API key", 429: "Rate limit exceeded", 500: "Internal server error",
                   502: "Bad gateway", 503: "Service unavailable", 504: "Request timed out"}


# The Authorization header of the request this thread is answering (for ``echo_key``).
_current = threading.local()


def proxy_page(status: int) -> str:
    return NGINX_PAGE.format(s=f"{status} {HTTPStatus(status).phrase}")


class Faults:
    """The knobs and where the server consults them (mixed into ``FakeFal``, which provides
    ``_lock`` and ``_mark_disconnected``)."""

    def reset_faults(self) -> None:
        self.cut_stream_after: int | None = None
        self.malformed = False  # the output (queue result or last stream event) is not JSON
        self.results_gone = False  # result image URLs answer 404 (an expired or lost file)
        self.fail: dict | None = None
        self.submit_reply_lost: int | str | None = None  # 502|503|504|"drop": job made, reply lost
        self.unloadable_loras: set[str] = set()  # LoRA paths the runner cannot load: 422 on that path

    @staticmethod
    def _seen(rec: Recorded) -> None:
        """Note the request this thread answers (its credentials, for ``echo_key``)."""
        _current.auth = rec.headers.get("authorization", "")

    def _lora_load_errors(self, args: dict) -> list[dict]:
        """The runner's 422 items for LoRAs it cannot load (``unloadable_loras``)."""
        return [error_item(["loras", i, "path"], "Could not load LoRA weights", "lora_load_error", lora["path"])
                for i, lora in enumerate(args.get("loras") or [])
                if isinstance(lora, dict) and lora.get("path") in self.unloadable_loras]

    def _maybe_fail(self, where: str) -> None:
        """Consume one use of the ``fail`` knob if it applies to ``where``."""
        with self._lock:
            f = self.fail
            if not f or f.get("on", "any") not in (where, "any"):
                return
            if f.get("times") is not None:
                f["times"] -= 1
                if f["times"] <= 0:
                    self.fail = None
        status = f["status"]
        extra = {"retry-after": str(f["retry_after"])} if f.get("retry_after") is not None else {}
        if f.get("ingress"):  # nginx page without x-fal-request-id: fal_client retries these
            raise HTTPError(status, proxy_page(status), {"content-type": "text/html", **extra})
        detail = f.get("detail")
        if detail is None:
            detail = ([error_item([], "Simulated validation error", "value_error")] if status == 422
                      else DEFAULT_DETAILS.get(status, "Simulated error"))
        if f.get("echo_key"):
            detail = _echo(detail, getattr(_current, "auth", ""))
        body = {"detail": detail}
        if f.get("error_type"):
            body["error_type"] = f["error_type"]
        raise HTTPError(status, body, {"x-fal-request-id": str(uuid.uuid4()), **extra})

    def _lose_reply(self, h: "Handler", job: Job) -> bool:
        """Apply ``submit_reply_lost`` to an accepted job's reply; True when it was lost."""
        lost = self.submit_reply_lost
        if lost is None:
            return False
        if job.transport != "queue":
            self._mark_disconnected(job)  # the proxy hung up on fal: fal cancels a streamed request
        if lost == "drop":
            h.close_connection = True  # nothing sent: the client sees the server hang up
        else:
            h.send_json(int(lost), proxy_page(int(lost)), {"content-type": "text/html"})
        return True


def _echo(detail: Any, auth: str) -> Any:
    """``detail`` with ``{auth}`` as the Authorization header sent and ``{key}`` as its key."""
    if isinstance(detail, str):
        return detail.replace("{auth}", auth).replace("{key}", auth.split(" ", 1)[-1])
    if isinstance(detail, list):
        return [_echo(item, auth) for item in detail]
    if isinstance(detail, dict):
        return {k: _echo(v, auth) for k, v in detail.items()}
    return detail
