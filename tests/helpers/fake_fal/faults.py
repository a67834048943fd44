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
"""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import TYPE_CHECKING

from tests.helpers.fake_fal.records import HTTPError, Job
from tests.helpers.fake_fal.schema import error_item

if TYPE_CHECKING:
    from tests.helpers.fake_fal.handler import Handler

NGINX_PAGE = (
    "<html><head><title>{s}</title></head><body><center><h1>{s}</h1></center><hr><center>nginx</center></body></html>"
)
DEFAULT_DETAILS = {401: "Invalid API key", 429: "Rate limit exceeded", 500: "Internal server error",
                   502: "Bad gateway", 503: "Service unavailable", 504: "Request timed out"}


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
