"""A fake of fal's hosted API for ``fal-ai/flux-2/lora/edit``, spoken over real HTTP.

The unmodified ``fal_client`` talks to it once its module constants point here
(see :func:`point_fal_client_at`); one port serves every host under a path prefix:

  queue   POST /queue/fal-ai/flux-2/lora/edit                 submit -> {request_id, status_url, response_url,
                                                              cancel_url}
          GET  /queue/fal-ai/flux-2/requests/{id}/status?logs=1   IN_QUEUE / IN_PROGRESS / COMPLETED
          GET  /queue/fal-ai/flux-2/requests/{id}             result (200 output | 400 still running | 422 | 499)
          PUT  /queue/fal-ai/flux-2/requests/{id}/cancel      202 CANCELLATION_REQUESTED | 400 ALREADY_COMPLETED
  run     POST /run/fal-ai/flux-2/lora/edit/stream            SSE: `steps` progress events, then the output
          POST /run/fal-ai/flux-2/lora/edit                   synchronous run (waits job_seconds)
  rest    POST /rest/storage/auth/token?storage_type=fal-cdn-v3   CDN upload token (needs the fal key)
          POST /rest/storage/upload/initiate                  the client's fallback upload path ("fal" repository)
  cdn     POST /cdn/files/upload                              raw bytes, `Authorization: Bearer <token>`
          GET  /cdn/files/{name}                              uploads and generated images (no auth)
          PUT  /cdn/put/{name}                                target of the fallback upload

Every route but the CDN ones wants ``Authorization: Key <k>`` (missing -> 401; with ``keys`` set, a key
not in it -> 401 ``{"detail": "Invalid API key"}``). Unknown routes and apps -> 404 JSON.

Behaviour (as close to fal as we can tell):
  * Validation is asynchronous in queue mode: submit always succeeds; an invalid job is COMPLETED at
    once (status carries ``error``/``error_type: "validation_error"``) and its result answers
    422 ``{"detail": [{loc, msg, type, ctx?, input?}]}`` (pydantic style). In stream/run mode the
    422 comes back at once as a JSON response (not SSE), as do 401s and ``fail`` errors.
  * Cancel (queue): the job becomes state CANCELLED / ``cancelled=True``; status answers
    ``COMPLETED`` with ``error: "Request cancelled by client", error_type: "client_cancelled"``,
    and the result answers 499 ``{"detail": "Request cancelled by client", "error_type": "client_cancelled"}``.
    Repeating the cancel answers 202 again; cancelling a finished job answers 400 ALREADY_COMPLETED.
  * Stream: intermediate events are ``{"images": [previews], "seed", "prompt", "has_nsfw_concepts",
    "progress": {"step": i, "total": steps}, "logs": [log]}`` where previews are small blurred, darker
    JPEG ``data:`` URIs of the final images; with ``stream_previews = False`` only
    ``{"progress", "logs"}``. The final event is the plain output (no "progress" key). The body is
    chunked; ``cut_stream_after=N`` drops the connection after N events without the closing chunk, so
    httpx raises ``httpx.RemoteProtocolError``. A client that goes away mid-stream cancels the job.
  * Output size: ``image_size`` if given, else the first input's size scaled into 512..2048 (aspect
    kept; the long side wins when both limits bite). Pixels are the first input fitted to that size,
    tinted by a colour from sha256(prompt, seed, index, loras, input pixels), other inputs as corner
    thumbnails, and a bottom band with index+1 white squares, ending in 8 pixels coloured by
    more of that hash (no two jobs show the same picture). Same inputs -> same bytes.
  * "nsfw" as a word in the prompt flags image 1 in ``has_nsfw_concepts``.

Knobs (plain attributes; set them between runs): ``job_seconds``, ``queue_polls``, ``steps``,
``stream_previews``, ``cut_stream_after``, ``reply_delay`` (a run/stream POST's job starts, then its
reply waits that long; a client that hangs up meanwhile cancels it), ``keys``, ``submit_reply_lost`` and ``fail``:
``{"status": 401|422|429|500|502|503|504, "detail": ..., "times": n | None, "on": "submit"|"status"|
"result"|"cancel"|"stream"|"run"|"upload"|"token"|"download"|"any", "error_type": str?, "ingress": bool?,
"retry_after": str?}`` (``times=None``: forever; "download": a GET of a generated image on the CDN;
``retry_after`` becomes a ``Retry-After`` header). A failed submit or stream POST creates no job (the
rate limiter or proxy in front of fal refused it).
A JSON 502-504 carries ``x-fal-request-id`` so fal_client does NOT retry it; ``"ingress": True`` sends
an nginx HTML page instead, which fal_client retries (up to 10 times, ~50 s: use ``times=1``). 429 is
always retried. ``submit_reply_lost`` (None | 502 | 503 | 504 | "drop"): every queue submit and
run/stream POST is accepted (the job exists) but its reply is lost on the way back: a proxy answers its
HTML error page, or ("drop") the connection closes without a reply. A streamed job is then cancelled
(its client is gone); a queued one stays, as nobody learned its id; a client that sends the POST again
makes a second job. ``submits()`` (the POSTs that can start a job) and ``cancels()`` (queue cancels)
filter ``requests``. ``fail["echo_key"]`` puts the request's credentials into the error body (``{auth}``,
``{key}`` in the detail); ``unloadable_loras`` (a set of LoRA paths) fails a job with fal's 422 on that path
(in the queue: COMPLETED with ``error``, the result answers the 422).
``max_output_side`` (default None) shrinks every output to fit that long side, aspect
kept, so that load tests stay cheap. Records: ``requests``, ``jobs``, ``uploads`` (client uploads),
``outputs`` (generated).
Only the first 3 image_urls are used (fal ignores extras); request bodies must carry Content-Length.

Modules: ``schema`` (the endpoint's input checks), ``render`` (result images, previews, events),
``faults`` (the fault knobs), ``records`` (what is recorded), ``server`` (the server and its routes),
``handler`` (reading requests and writing replies, chunks and SSE).
"""

from tests.helpers.fake_fal.records import HTTPError, Job, Recorded
from tests.helpers.fake_fal.render import data_uri, decode_data_uri, encode_image, output_size, render_image
from tests.helpers.fake_fal.schema import APP, FORMATS, PRESETS, SUPPORTED_APPS, ValidationFailed, validate_input
from tests.helpers.fake_fal.server import FakeFal, point_fal_client_at

__all__ = [
    "APP", "FORMATS", "PRESETS", "SUPPORTED_APPS", "FakeFal", "HTTPError", "Job", "Recorded", "ValidationFailed",
    "data_uri", "decode_data_uri", "encode_image", "output_size", "point_fal_client_at", "render_image",
    "validate_input",
]
