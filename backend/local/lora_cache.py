"""The folder of downloaded LoRAs, bounded in bytes, least recently used removed first.

Files are stored by content (`<sha256>.safetensors`); a small index maps each URL's key to
the content it gave. The key is the normalised URL (`url_key`): scheme and host in lower
case, the default port and the fragment dropped, the query KEPT. The query stays in the key
because signed URLs carry their permission there: a copy fetched with one visitor's
signature must not be handed to someone who types the same path without it. Query variants
of one file still share one copy (the content is stored once); each variant downloads the
file once to find out it is the same.

Each use touches the file's modification time; that is the recency order. Files in use are
never removed: those pinned by `hold` (the fetcher pins a file while it reads it and until
its next fetch, which covers the load that follows). A download larger than the cap is
refused by the fetcher before it is stored. The bytes on disk stay under the cap, plus the
download in progress.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

INDEX = "index.json"
MAX_INDEX_ENTRIES = 4096  # URL keys remembered (a few hundred bytes each)
STALE_PARTIAL_SECONDS = 3600  # a .part file not written to for this long is a dead download's

# Pins are per process and per file, whatever cache object asks: two fetchers sharing a
# folder must not remove each other's files in use.
_lock = threading.RLock()
_pins: Counter[Path] = Counter()  # resolved path -> holds
_last_touch = 0  # ns: each touch is later than the one before (the kernel's clock is coarser)


class CacheFull(Exception):
    """The files in use leave no room for a new one."""


def url_key(url: str | httpx.URL) -> str:
    """The normalised URL: lower-case scheme and host, no default port, no fragment, the query kept
    (an empty query dropped)."""
    parsed = httpx.URL(url) if isinstance(url, str) else url
    base = str(parsed.copy_with(query=None, fragment=None))  # httpx lower-cases, drops :443
    query = parsed.query.decode("ascii")
    return f"{base}?{query}" if query else base


class DownloadCache:
    def __init__(self, folder: Path, max_bytes: int):
        self.folder = folder
        self.max_bytes = max_bytes

    # -- lookups ------------------------------------------------------------------------

    def lookup(self, key: str, hold: bool = False) -> Path | None:
        """The file stored for `key`, marked as just used (and held when `hold`: see `hold`);
        None when there is none."""
        with _lock:
            digest = self._read_index().get(_hashed(key))
            file = self.folder / f"{digest}.safetensors" if digest else None
            if file is None or not file.is_file():
                return None
            _touch(file)
            if hold:
                self.hold(file)
            return file

    def new_partial(self) -> Path:
        """A fresh name for a download in progress, inside the folder."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.folder / f"{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}.part"

    # -- storing ------------------------------------------------------------------------

    def store(self, key: str, partial: Path, digest: str, hold: bool = False) -> Path:
        """Move a finished download into the cache under its content hash and remember `key`
        for it, removing least recently used files until it fits; held when `hold`. Raises
        CacheFull when the files in use leave no room (the download is then deleted)."""
        with _lock:
            target = self.folder / f"{digest}.safetensors"
            if target.is_file():  # the same content under another URL: one copy
                partial.unlink(missing_ok=True)
            else:
                try:
                    self._make_room(partial.stat().st_size)
                except CacheFull:
                    partial.unlink(missing_ok=True)
                    raise
                os.replace(partial, target)
                self._remove_stale_partials()
            _touch(target)
            index = self._read_index()
            index.pop(_hashed(key), None)
            index[_hashed(key)] = digest  # newest last
            self._write_index(index)
            if hold:
                self.hold(target)
            return target

    def _make_room(self, size: int) -> None:
        files = self.files()  # oldest first
        used = sum(size_ for _, size_ in files)
        for file, size_ in files:
            if used + size <= self.max_bytes:
                break
            if _pins[file.resolve()]:
                continue
            file.unlink(missing_ok=True)
            used -= size_
        if used + size > self.max_bytes:
            raise CacheFull(f"the LoRA download cache is full of LoRAs in use ({self.max_bytes // 2**20} MB)")

    def files(self) -> list[tuple[Path, int]]:
        """The stored files and their sizes, least recently used first."""
        found = []
        for file in self.folder.glob("*.safetensors") if self.folder.is_dir() else ():
            try:
                stat = file.stat()
            except OSError:  # removed meanwhile
                continue
            found.append((stat.st_mtime_ns, file, stat.st_size))
        return [(file, size) for _, file, size in sorted(found)]

    def _remove_stale_partials(self) -> None:
        now = time.time()
        for partial in self.folder.glob("*.part"):
            try:
                if now - partial.stat().st_mtime > STALE_PARTIAL_SECONDS:
                    partial.unlink()
            except OSError:
                pass

    # -- files in use -------------------------------------------------------------------

    @staticmethod
    def hold(file: Path) -> None:
        """Pin `file`: it is not removed until as many `release` calls."""
        with _lock:
            _pins[file.resolve()] += 1

    @staticmethod
    def release(file: Path) -> None:
        with _lock:
            key = file.resolve()
            _pins[key] -= 1
            if _pins[key] <= 0:
                del _pins[key]

    # -- the index ----------------------------------------------------------------------

    def _read_index(self) -> dict[str, str]:
        try:
            index = json.loads((self.folder / INDEX).read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(index, dict):
            return {}
        return {k: v for k, v in index.items() if isinstance(k, str) and isinstance(v, str) and _is_hex(v)}

    def _write_index(self, index: dict[str, str]) -> None:
        stored = {digest for digest in (f.stem for f, _ in self.files())}
        kept = {k: v for k, v in index.items() if v in stored}
        kept = dict(list(kept.items())[-MAX_INDEX_ENTRIES:])
        temporary = self.folder / f"{INDEX}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps(kept))
        os.replace(temporary, self.folder / INDEX)


def _hashed(key: str) -> str:
    """The key as stored: a hash, so that no URL (nor its signature) is written to disk."""
    return hashlib.sha256(key.encode()).hexdigest()


def _is_hex(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _touch(file: Path) -> None:
    """Mark `file` as just used (called holding the lock)."""
    global _last_touch
    _last_touch = max(time.time_ns(), _last_touch + 1)
    try:
        os.utime(file, ns=(_last_touch, _last_touch))
    except OSError:
        pass
