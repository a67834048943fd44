"""Gradio's cache under a size cap, so that a stranger cannot fill the server's disk.

Gradio writes every upload into its cache (`GRADIO_TEMP_DIR`) and keeps it a day (ui/page.py's
`delete_cache`): any number of files a request, each up to `max_file_size`, from anyone who can
open the page. Measured with curl on loopback: 60 MB written every 0.2 s by one anonymous
client, which fills a Space's 50 GB disk in under three minutes, and the app with it (no run
could be saved). Runs write there too (every preview and result passes through the cache).

`CacheRoom` keeps the folder under `max_bytes`:

- an upload that would take the folder past the cap first makes room: the oldest files go,
  but only files older than `keep_seconds` (a page still shows and sends back what it got in
  the last minutes: a reference just uploaded, the results on screen);
- if there is still no room, the upload is refused with HTTP 507 and a message naming the
  setting; nothing is written, and the server stays up;
- a sweep every 10 s (`start_sweeping`) does the same for what the app itself wrote there
  (previews and results, History's thumbnails, downloads); past `hard_factor` times the cap
  (a flood of events that each write a little) it removes the oldest files whatever their age,
  down to the cap: a page may then lose a recent file, the disk is not filled.

Files of the last `keep_seconds` are never removed to make room, so one stranger uploading the
cap's worth of them would have every other visitor's upload refused for that long. `UploadShare`
bounds what one visitor (one address) may upload in that window: it then takes cap / share
addresses to do it, and a visitor past its share is refused (HTTP 429, naming the setting) while
the others' uploads go on.

`UploadRoom` is the ASGI middleware that asks both before Gradio's upload route reads a byte.
Uploads in flight count as taken from the moment they are admitted until they are done, so
many at once cannot all pass the same check.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from backend.body_limit import ASGIApp, Receive, Scope, Send, content_length
from backend.client_address import visitor_address

log = logging.getLogger(__name__)

KEEP_SECONDS = 600.0  # a file younger than this is not removed to make room (below the hard limit)
SWEEP_SECONDS = 10.0
HARD_FACTOR = 1.25  # past this many times the cap, the sweep removes files whatever their age


class CacheRoom:
    """The cache folder `folder` kept under `max_bytes` (see the module's docstring)."""

    def __init__(self, folder: Path, max_bytes: int, keep_seconds: float = KEEP_SECONDS,
                 hard_factor: float = HARD_FACTOR, clock: Callable[[], float] = time.time):
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.keep_seconds = keep_seconds
        self.hard_factor = hard_factor
        self.clock = clock
        self._lock = threading.Lock()
        self._in_flight = 0  # bytes admitted for uploads not yet done
        self._used: int | None = None  # the folder's size at the last look (None: not looked yet)
        self._unseen = 0  # bytes admitted since the last look (in flight or written)

    def admit(self, incoming: int) -> bool:
        """Room for an upload of `incoming` bytes (made if need be); True: it is now counted as
        taken until `done(incoming)`. False: there is no room, even after removing old files.
        The folder is looked at again only when the last look plus what was admitted since would
        not leave room: a page sends many uploads at once (the region editor three a stroke),
        and walking a folder of thousands of files for each kept every one of them waiting. What
        the app writes itself between two sweeps (10 s) is seen at the next look."""
        with self._lock:
            if self._used is not None and self._used + self._unseen + incoming <= self.max_bytes:
                fits = True
            else:
                fits = self._make_room(incoming + self._in_flight)
            if fits:
                self._in_flight += incoming
                self._unseen += incoming
            return fits

    def done(self, incoming: int) -> None:
        with self._lock:
            self._in_flight = max(0, self._in_flight - incoming)

    def sweep(self) -> None:
        """Bring the folder back under the cap (what the app wrote), removing old files, and
        past `hard_factor` times the cap, any file (the oldest first)."""
        with self._lock:
            if not self._make_room(self._in_flight) and (self._used or 0) > self.hard_factor * self.max_bytes:
                log.warning("Gradio's cache is at %.0f MB, past its %g MB cap (STUDIO_CACHE_MAX_MB) with recent "
                            "files: removing the oldest of them", (self._used or 0) / 2**20, self.max_bytes / 2**20)
                self._make_room(self._in_flight, keep_seconds=0)

    def _make_room(self, wanted: int, keep_seconds: float | None = None) -> bool:
        files = self._files()
        used = self._used = sum(size for _, size, _ in files)
        self._unseen = self._in_flight  # what is done is in the folder now
        if used + wanted <= self.max_bytes:
            return True
        cutoff = self.clock() - (self.keep_seconds if keep_seconds is None else keep_seconds)
        removed = 0
        for modified, size, path in sorted(files):  # the oldest first
            if used + wanted <= self.max_bytes or modified > cutoff:
                break
            try:
                path.unlink()
            except OSError:
                continue
            used -= size
            removed += 1
            _remove_empty_parent(path.parent, self.folder)
        self._used = used
        if removed:
            log.info("Gradio's cache was over its cap (STUDIO_CACHE_MAX_MB): removed its %d oldest files", removed)
        return used + wanted <= self.max_bytes

    def _files(self) -> list[tuple[float, int, Path]]:
        """(modified, size, path) of every file under the folder."""
        found: list[tuple[float, int, Path]] = []
        for root, _dirs, names in os.walk(self.folder):
            for name in names:
                path = Path(root) / name
                try:
                    stat = path.stat()
                except OSError:  # removed meanwhile (Gradio's own cleaning, a finished upload)
                    continue
                found.append((stat.st_mtime, stat.st_size, path))
        return found

    def message(self) -> str:
        return (f"The server has no room for uploads right now: its cache is at its {self.max_bytes / 2**20:g} MB "
                f"cap (STUDIO_CACHE_MAX_MB). Try again in a few minutes.")

    def start_sweeping(self, every: float = SWEEP_SECONDS) -> threading.Thread:
        def loop() -> None:
            while True:
                time.sleep(every)
                try:
                    self.sweep()
                except Exception:  # a sweep that fails is tried again at the next one
                    log.exception("Gradio's cache could not be brought under its cap")

        thread = threading.Thread(target=loop, name="cache-room", daemon=True)
        thread.start()
        return thread


def _remove_empty_parent(folder: Path, root: Path) -> None:
    """Gradio keeps each file in a folder of its own: remove that folder once it is empty."""
    if folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (another file), or already gone
            pass


class UploadShare:
    """What one visitor may upload in `window` seconds: at most `max_bytes` (see the module's
    docstring). Visitors are told apart by address: the connection's, or X-Forwarded-For's
    from a proxy that uvicorn trusts (FORWARDED_ALLOW_IPS), as the run quotas do."""

    def __init__(self, max_bytes: int, window: float = KEEP_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.max_bytes = max_bytes
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._taken: dict[str, deque[tuple[float, int]]] = {}  # address: (when, bytes) of its uploads

    def admit(self, address: str, incoming: int) -> bool:
        """True, and `incoming` counted for `address`; False: that would take it past its share."""
        with self._lock:
            now = self.clock()
            self._forget_before(now - self.window)
            taken = self._taken.setdefault(address, deque())
            if sum(size for _, size in taken) + incoming > self.max_bytes:
                return False
            taken.append((now, incoming))
            return True

    def give_back(self, address: str, incoming: int) -> None:
        """An admitted upload that wrote nothing (the cache had no room) does not count."""
        self.settle(address, incoming, 0)

    def settle(self, address: str, admitted: int, taken: int) -> None:
        """An upload admitted for `admitted` bytes counts `taken` (a URL's file, once fetched)."""
        with self._lock:
            entries = self._taken.get(address, deque())
            for index in range(len(entries) - 1, -1, -1):
                if entries[index][1] == admitted:
                    if taken:
                        entries[index] = (entries[index][0], taken)
                    else:
                        del entries[index]
                    break

    def _forget_before(self, cutoff: float) -> None:
        for address in list(self._taken):
            taken = self._taken[address]
            while taken and taken[0][0] < cutoff:
                taken.popleft()
            if not taken:
                del self._taken[address]

    def message(self, address: str, incoming: int, what: str | None = None) -> str:
        """Why `address` may not upload `incoming` bytes now (`what`: the upload as the visitor knows it)."""
        with self._lock:
            used = sum(size for _, size in self._taken.get(address, ()))
        limit = (f"one visitor may upload {_mb(self.max_bytes)} every {self.window / 60:g} minutes "
                 f"(STUDIO_UPLOAD_MB_PER_VISITOR)")
        if incoming > self.max_bytes:
            return f"This upload is {_mb(incoming)}, and {limit}: send a smaller file."
        return (f"{what or f'This upload ({_mb(incoming)})'} would take you past what {limit}: you have uploaded "
                f"{_mb(used)} of it in the last {self.window / 60:g} minutes. Try again in a few minutes.")


def _mb(size: int) -> str:
    return f"{size / 2**20:.3g} MB"


class UploadRoom:
    """ASGI middleware: a POST to Gradio's upload route is admitted by `share` (429 past the
    visitor's share; None: no share) and `room` (507 if there is no room) first.
    `max_bytes_unknown` is what a body without a Content-Length counts as."""

    def __init__(self, app: ASGIApp, room: CacheRoom, max_bytes_unknown: int, share: UploadShare | None = None):
        self.app = app
        self.room = room
        self.share = share
        self.max_bytes_unknown = max_bytes_unknown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or not scope.get("path", "").endswith("/upload"):
            await self.app(scope, receive, send)
            return
        incoming = content_length(scope) or self.max_bytes_unknown
        address = visitor_address(str((scope.get("client") or ("unknown",))[0]))
        if self.share and not self.share.admit(address, incoming):
            await _refuse(send, 429, self.share.message(address, incoming))
            return
        if not await run_in_threadpool(self.room.admit, incoming):
            if self.share:
                self.share.give_back(address, incoming)
            await _refuse(send, 507, self.room.message())
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.room.done(incoming)


async def _refuse(send: Send, status: int, message: str) -> None:
    # Plain text, as Gradio's own upload errors: the page shows "HTTP <status>: <message>".
    body = message.encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
