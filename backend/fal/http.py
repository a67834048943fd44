"""fal's HTTP answers as our errors, and the fal-client set-up that makes that possible.

fal-client's own retries are switched off (see `NoBlindRetries`): they take up to
10 tries over ~50-75 s and repeat a submit whose reply was lost, which would run
(and bill) the job twice. The backend retries instead, a few times and briefly,
and only what cannot start a second job (retries.py).
"""

from __future__ import annotations

import email.utils
import functools
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any, NoReturn

import fal_client
import fal_client.client as fal_client_module
import httpx
from fal_client.auth import MissingCredentialsError
from httpx_sse import SSEError  # fal-client's SSE library

from ..errors import (
    AuthFailed,
    FieldProblem,
    InvalidInput,
    MissingKey,
    RateLimited,
    ServiceError,
    StudioError,
)
from ..redact import redact
from ..request import describe_location

# The statuses fal-client would retry itself: "not now" answers (408, 409, 429) and a
# proxy's 502-504. The response hook raises them first, so that the backend decides.
NOT_NOW_STATUSES = (408, 409, 429, 502, 503, 504)


def point_fal_client_at(base_url: str) -> None:
    """Send every fal-client call to `base_url` instead of fal's hosts.

    For a fal-compatible gateway, or the test suite's fake fal server. fal-client reads
    these module constants at call time; there is no per-client host setting.
    """
    base = base_url.rstrip("/")
    fal_client_module.QUEUE_URL_FORMAT = base + "/queue/"
    fal_client_module.RUN_URL_FORMAT = base + "/run/"
    fal_client_module.REST_URL = base + "/rest"
    fal_client_module.CDN_URL = base + "/cdn"


def new_client(key: str | None) -> fal_client.SyncClient:
    client = fal_client.SyncClient(key=key, default_timeout=60.0)
    http = client._client
    # fal-client's stream() does not check the HTTP status (an error body surfaces as
    # an opaque SSEError). A response hook on its httpx client reads error bodies
    # first, so a 422 on the stream still names the wrong field; it also raises the
    # "not now" statuses before fal-client's retry loop sees them. Its texts are
    # redacted with the client's own key.
    http.event_hooks["response"].append(functools.partial(on_fal_response, secrets=(key,)))
    http._transport = NoBlindRetries(http._transport)  # no public setter in httpx
    return client


def close_client(client: fal_client.SyncClient) -> None:
    """Close the per-run HTTP connections (fal-client caches its httpx client lazily)."""
    http = client.__dict__.get("_client")
    if http is not None:
        http.close()


class Transient(ServiceError):
    """A failure that may pass: a proxy's 502-504, 408/409, a connection lost or timed
    out. The request may have reached fal: only calls that cannot start a job repeat."""


class NotSent(Transient):
    """No connection was made, so nothing reached fal: even a submit may be sent again."""


class NoBlindRetries(httpx.BaseTransport):
    """fal-client's transport, with network failures raised as StudioErrors.

    fal-client's retry loop repeats httpx errors (and FalClientHTTPErrors it deems
    retryable), a submit's POST included: a submit whose reply was lost would be sent
    again and start a second job. A StudioError passes through that loop untouched,
    so the backend's retry policy (retries.py) decides instead. Replies are read here,
    so that one cut midway fails here too, not later inside fal-client's loop; streams
    are not.
    """

    def __init__(self, inner: httpx.BaseTransport):
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = self._inner.handle_request(request)
            if request.headers.get("accept") != "text/event-stream":
                try:
                    response.read()
                except BaseException:
                    response.close()
                    raise
            return response
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise NotSent(f"Could not reach fal ({type(error).__name__}). Check the connection.") from None
        except httpx.TimeoutException:
            raise Transient("fal did not answer in time. Try again.") from None
        except httpx.TransportError as error:
            raise Transient(
                f"The connection to fal broke off before fal answered ({type(error).__name__}). Run again."
            ) from None

    def close(self) -> None:
        self._inner.close()


# Set by the thread that reads a stream (to its `StreamConnection`, transports.py); the
# response hook runs in that same thread and hands it the response, whose socket a
# Stop shuts down (at once, or as it arrives).
current_stream = threading.local()


def on_fal_response(response: httpx.Response, secrets: Sequence[str | None] = ()) -> None:
    streamed = response.request.url.path.endswith("/stream")
    if streamed:
        connection = getattr(current_stream, "connection", None)
        if connection is not None:
            connection.attach(response)  # dropped at once when the run was stopped meanwhile
    status = response.status_code
    if (streamed and status >= 400) or status in NOT_NOW_STATUSES:
        response.read()
        raise http_error(status, _json_or_text(response), response.headers, secrets) from None


def _json_or_text(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return response.text
    return body.get("detail", body) if isinstance(body, dict) else body


def raise_for_http_status(status: int, detail: Any, headers: Mapping[str, str] | None = None,
                          secrets: Sequence[str | None] = ()) -> NoReturn:
    raise http_error(status, detail, headers, secrets) from None


def http_error(status: int, detail: Any, headers: Mapping[str, str] | None = None,
               secrets: Sequence[str | None] = ()) -> StudioError:
    """fal's answer `status` with its body's `detail` as our error. fal's text is redacted
    with `secrets` (the run's keys) before it goes into the message: a body may echo the
    Authorization header."""
    if status in (401, 403):
        return AuthFailed(status)
    if status == 422:
        return InvalidInput(_problems_from_fal_detail(detail, secrets))
    if status == 429:
        return RateLimited(_retry_after(headers))
    text = detail if isinstance(detail, str) else str(detail)
    # A proxy's error page (HTML) says nothing a person can use: the status says it all.
    # Redacted before it is cut short, so that no half of a key survives the cut.
    text = "" if text.lstrip().startswith("<") else redact(text.strip(), *secrets)[:300]
    said = f": {text}" if text else ""
    if status in (502, 503, 504):
        return Transient(
            f"fal's service is unavailable (HTTP {status} {HTTPStatus(status).phrase}){said}. "
            "The problem is on fal's side or on the way to it; try again in a minute.",
            status_code=status,
        )
    if status in (408, 409):
        return Transient(f"fal could not take the request just now (HTTP {status}){said}. Try again.",
                         status_code=status)
    if status >= 500:
        return ServiceError(f"fal had a problem (HTTP {status}){said}. Try again in a moment.", status_code=status)
    return ServiceError(f"fal refused the request (HTTP {status}){said}", status_code=status, retryable=False)


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """fal's Retry-After in seconds (a number or an HTTP date), None when absent or unreadable."""
    value = (headers or {}).get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time()) if when.tzinfo else None


def _problems_from_fal_detail(detail: Any, secrets: Sequence[str | None] = ()) -> list[FieldProblem]:
    """fal's 422 detail (pydantic's list of {loc, msg, type}) as field problems, redacted."""
    if not isinstance(detail, list):
        return [FieldProblem(field="request", label="Request", message=redact(str(detail), *secrets)[:300])]
    problems = []
    for item in detail:
        if not isinstance(item, dict):
            continue
        loc = tuple(item.get("loc") or ())
        field = redact(next((str(p) for p in loc if p != "body"), "request"), *secrets)
        problems.append(FieldProblem(
            field=field, label=redact(describe_location(loc), *secrets)[:200],
            message=redact(str(item.get("msg", "is not valid")), *secrets)[:500],
        ))
    return problems or [FieldProblem(field="request", label="Request", message="fal refused the request")]


@contextmanager
def fal_errors(secrets: Sequence[str | None] = ()) -> Iterator[None]:
    """Translate fal-client and network exceptions into StudioErrors; fal's text in them
    is redacted with `secrets` (the run's keys)."""
    try:
        yield
    except StudioError:
        raise
    except fal_client.FalClientHTTPError as error:
        raise http_error(error.status_code, error.message, error.response_headers, secrets) from None
    except httpx.HTTPStatusError as error:
        # fal-client's storage token request (uploads of large references) raises httpx's
        # own error: a refused key there is the same 401 as anywhere else.
        response = error.response
        try:
            detail = _json_or_text(response)
        except httpx.ResponseNotRead:
            detail = ""
        raise http_error(response.status_code, detail, response.headers, secrets) from None
    except fal_client.FalClientTimeoutError:
        raise ServiceError("fal did not answer in time. Try again.") from None
    except MissingCredentialsError:
        raise MissingKey() from None
    except SSEError:
        raise ServiceError("fal answered the stream with something that is not a stream.") from None
    except httpx.TimeoutException:
        raise ServiceError("fal did not answer in time. Try again.") from None
    except httpx.RemoteProtocolError:
        raise ServiceError("The connection to fal broke off before the result arrived. Run again.") from None
    except httpx.HTTPError as error:
        raise ServiceError(f"Could not reach fal ({type(error).__name__}). Check the connection.") from None
    except json.JSONDecodeError:  # a reply cut or garbled on the way
        raise ServiceError("fal sent a reply the app could not read. Run again.") from None
