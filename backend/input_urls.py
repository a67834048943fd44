"""Files that an API or MCP caller names by URL, fetched no larger than an upload.

Gradio fetches every http(s) URL it finds in a request's inputs before a handler runs (a
FileData whose path is a URL: gradio_client's `handle_file("https://…")`, an image URL in an
MCP tool call, or such an object put in any JSON input), through
`gradio.processing_utils.async_ssrf_protected_download`. That checks the address, but reads
the whole body into memory and then writes it to Gradio's cache, with no limit on its size or
its time: one call naming a 40 GB file would take the server's memory, a slow one would hold a
worker. app.py puts `fetch_input_url` in its place: https only, the name looked up once and
every address public (backend/guarded_http.py; Gradio's trusted Hugging Face names whatever
they resolve to, as Gradio has them), at most 5 redirects, each checked again, streamed to a
partial file and stopped past `max_bytes` (an upload's own limit, MAX_INPUT_BYTES) or
INPUT_SECONDS. The file lands where Gradio's own would, in its cache, in a folder named from
the URL's hash, so Gradio goes on as before (and the cache's cap covers it).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from .errors import StudioError
from .guarded_http import Resolver, Unfetchable, declared_size, guarded_get, system_getaddrinfo
from .images import MAX_INPUT_BYTES

INPUT_TIMEOUT = httpx.Timeout(20.0, connect=10.0)  # per connection attempt and per read
INPUT_SECONDS = 60  # a whole download: a server that trickles bytes must not hold the request
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class UrlRefused(StudioError):
    """A URL in a request's inputs that is not fetched, or whose download was stopped."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"{url[:200]}: {reason}")


def fetch_input_url(
    url: str, cache_dir: str | Path, *, max_bytes: int = MAX_INPUT_BYTES, trusted: Sequence[str] = (),
    getaddrinfo: Resolver = system_getaddrinfo,
) -> str:
    """`url`'s body as a file in `cache_dir` (its path); raises UrlRefused saying why not."""
    try:
        name = _UNSAFE.sub("_", Path(httpx.URL(url).path).name).strip("._")[:100] or "file"
    except httpx.InvalidURL:
        raise UrlRefused(url, "is not a valid URL") from None
    target = Path(cache_dir) / hashlib.sha256(url.encode()).hexdigest() / name
    if target.is_file():  # fetched before: Gradio too keeps one copy per URL
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{name}.{os.getpid()}.{time.monotonic_ns()}.partial")
    limit = f"{max_bytes // 2**20} MB"
    try:
        with guarded_get(url, INPUT_TIMEOUT, getaddrinfo=getaddrinfo, trusted=trusted) as response:
            if response.status_code != 200:
                raise UrlRefused(url, f"the download failed (HTTP {response.status_code})")
            if declared_size(response) > max_bytes:
                raise UrlRefused(url, f"is larger than the {limit} a file may be")
            size, deadline = 0, time.monotonic() + INPUT_SECONDS
            with partial.open("wb") as out:
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise UrlRefused(url, f"is larger than the {limit} a file may be")
                    if time.monotonic() > deadline:
                        raise UrlRefused(url, f"took over {INPUT_SECONDS} s to download")
                    out.write(chunk)
        partial.replace(target)
        return str(target)
    except Unfetchable as error:
        raise UrlRefused(url, str(error)) from None
    except httpx.HTTPError as error:
        raise UrlRefused(url, f"the download failed ({type(error).__name__})") from None
    finally:
        partial.unlink(missing_ok=True)
        if not target.exists():
            _remove_if_empty(target.parent)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty (another download of the URL), or gone
        pass
