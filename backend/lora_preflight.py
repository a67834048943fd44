"""A LoRA checked before anything is spent: its safetensors header, read from where it lives.

Only the header is read (a few hundred KB at most), never the weights:
- a Hugging Face repo id (`owner/name`, `owner/name/file.safetensors`) or a Hugging Face
  file URL (`…/owner/name/resolve/<revision>/file.safetensors`): through `huggingface_hub`
  (`parse_safetensors_file_metadata`: ranged requests to the Hub, `HF_ENDPOINT` honoured);
- any other https URL: ranged requests through the guarded downloader (public addresses
  only, connected to the address that was checked, each redirect checked again);
- a file in the LoRA folder (the local backend): read from disk.

`LoraInspector.check` raises LoraError for a LoRA that cannot be read or was made for
another model (FLUX.1, FLUX.2 [klein], SDXL, Qwen-Image…), naming that model. Headers read
are kept (a bounded number) so that a rerun asks nobody again.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from .errors import LoraError
from .guarded_http import Resolver, Unfetchable, guarded_get, system_getaddrinfo
from .lora_header import (
    FLUX2_DEV,
    LoraHeader,
    ModelShape,
    NotSafetensors,
    classify,
    header_length,
    parse_header,
    read_file_header,
)
from .request import HF_HOSTS

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(/[\w./-]+\.safetensors)?$")
FIRST_BYTES = 256 * 1024  # one request reads most LoRA headers whole
HEADER_MAX = 16 * 2**20  # a LoRA header larger than this is not read
REDIRECTS = 5
TIMEOUT = httpx.Timeout(20.0, connect=10.0)
KEPT = 256  # headers remembered


@dataclass
class LoraInspector:
    """Reads LoRA headers (thread-safe; remembers the last KEPT)."""

    lora_dir: Path | None = None  # the local backend's STUDIO_LORA_DIR; None: no local files
    # The Hub's address: huggingface.co, or what HF_ENDPOINT names (as huggingface_hub reads it)
    hub_endpoint: str = field(default_factory=lambda: os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    getaddrinfo: Resolver = field(default=system_getaddrinfo, repr=False)
    _kept: OrderedDict[str, LoraHeader] = field(default_factory=OrderedDict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def check(self, index: int, path: str, model: ModelShape = FLUX2_DEV) -> LoraHeader:
        """LoRA `index`'s header, when it fits `model`; else LoraError saying why."""
        header = self.header(index, path)
        unfit = header.fits(model)
        if unfit:
            raise LoraError(index, path, unfit)
        return header

    def header(self, index: int, path: str) -> LoraHeader:
        path = path.strip()
        with self._lock:
            if path in self._kept:
                self._kept.move_to_end(path)
                return self._kept[path]
        header = self._read(index, path)
        with self._lock:
            self._kept[path] = header
            while len(self._kept) > KEPT:
                self._kept.popitem(last=False)
        return header

    def known(self, path: str) -> LoraHeader | None:
        """The header of `path` if it was read before, or is a file in the LoRA folder; None
        otherwise (nothing is fetched)."""
        path = path.strip()
        with self._lock:
            if path in self._kept:
                return self._kept[path]
        if not self._in_folder(path):
            return None
        try:
            return self.header(0, path)
        except LoraError:
            return None

    def _in_folder(self, path: str) -> bool:
        return self.lora_dir is not None and looks_local(path, self.lora_dir)

    def folder_files(self, limit: int = 200) -> list[str]:
        """The .safetensors files in the LoRA folder (and its subfolders), relative to it."""
        if self.lora_dir is None or not self.lora_dir.is_dir():
            return []
        files = sorted(p.relative_to(self.lora_dir).as_posix() for p in self.lora_dir.rglob("*.safetensors"))
        return files[:limit]

    def _read(self, index: int, path: str) -> LoraHeader:
        fail: Callable[[str], LoraError] = lambda reason: LoraError(index, path, reason)  # noqa: E731
        try:
            if self._in_folder(path):
                return _from_file(self.lora_dir, path)  # type: ignore[arg-type]
            hub = hub_file(path, self.hub_endpoint)
            if hub is not None:
                return _from_hub(self.hub_endpoint, *hub)
            if path.lower().startswith("https://"):
                return self._from_url(path)
            if "://" in path:
                raise fail("only https:// URLs are read")
            if self.lora_dir is not None and not REPO_ID.match(path):
                return _from_file(self.lora_dir, path)
            raise fail("is not an https URL to a .safetensors file or a Hugging Face repo id (owner/name)")
        except LoraError:
            raise
        except NotSafetensors as error:
            raise fail(f"its header could not be read: {error}") from None
        except Unfetchable as error:
            raise fail(str(error)) from None
        except _Refused as error:
            raise fail(str(error)) from None
        except httpx.HTTPError as error:
            raise fail(f"could not be reached to read its header ({type(error).__name__})") from None

    def _from_url(self, url: str) -> LoraHeader:
        """The header from the first bytes of `url` (and the rest of the header, if longer)."""
        first, total = self._bytes(url, 0, FIRST_BYTES - 1)
        length = header_length(first)
        if length > HEADER_MAX:
            raise NotSafetensors(f"its header is larger than {HEADER_MAX // 2**20} MB")
        body = first[8:8 + length]
        if len(body) < length:
            rest, _ = self._bytes(url, 8 + len(body), 8 + length - 1)
            body += rest
        return parse_header(body, total)

    def _bytes(self, url: str, start: int, end: int) -> tuple[bytes, int | None]:
        """Bytes `start`..`end` of `url` (fewer if the file is shorter) and the file's size,
        following redirects (each one's address checked again)."""
        headers = {"Range": f"bytes={start}-{end}"}
        with guarded_get(url, TIMEOUT, getaddrinfo=self.getaddrinfo, headers=headers, redirects=REDIRECTS) as response:
            if response.status_code not in (200, 206):
                raise _Refused(f"its header could not be read (HTTP {response.status_code})")
            skip = start if response.status_code == 200 else 0  # a server that ignores Range
            data = _read_upto(response, skip + end - start + 1)[skip:]
            return data, _file_size(response)


def describe(inspector: LoraInspector, index: int, path: str, model: ModelShape, max_rank: int | None = None) -> str:
    """One line about LoRA `index` for the page: ✓ what it is, ✗ why a run with it would be
    refused, or ⚠️ why its header could not be read."""
    try:
        header = inspector.header(index, path)
    except LoraError as error:
        return f"⚠️ {error.message}"
    problem = header.fits(model)
    if problem is None and max_rank is not None and header.rank > max_rank:
        problem = f"rank {header.rank} is more than this server's limit of {max_rank} (STUDIO_LORA_MAX_RANK)"
    if problem:
        return f"✗ LoRA {index}: {problem}. A run with it is refused before anything is spent."
    return f"✓ LoRA {index}: {header.summary()}"


class _Refused(Exception):
    """A URL that cannot be read, with the reason."""


def hub_file(path: str, hub_endpoint: str) -> tuple[str, str | None, str] | None:
    """(repo, file or None, revision) for a Hugging Face repo id or file URL; None otherwise."""
    if REPO_ID.match(path) and "://" not in path:
        owner, name, *rest = path.split("/")
        return f"{owner}/{name}", "/".join(rest) or None, "main"
    parts = urlsplit(path)
    endpoint = urlsplit(hub_endpoint)
    if parts.hostname in HF_HOSTS or (parts.scheme, parts.netloc) == (endpoint.scheme, endpoint.netloc):
        segments = [unquote(s) for s in parts.path.split("/")[1:]]
        if len(segments) >= 5 and segments[2] == "resolve":
            return f"{segments[0]}/{segments[1]}", "/".join(segments[4:]), segments[3]
    return None


def _from_hub(hub_endpoint: str, repo: str, filename: str | None, revision: str) -> LoraHeader:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        SafetensorsParsingError,
    )

    api = HfApi(endpoint=hub_endpoint.rstrip("/"))
    try:
        if filename is None:
            files = [f for f in api.list_repo_files(repo, revision=revision) if f.endswith(".safetensors")]
            if len(files) != 1:
                found = ", ".join(files[:5]) or "none"
                raise _Refused(f"name the file: owner/name/file.safetensors (found {found})")
            filename = files[0]
        meta = api.parse_safetensors_file_metadata(repo, filename, revision=revision)
    except RepositoryNotFoundError:
        raise _Refused("no such Hugging Face repo (or it is private)") from None
    except EntryNotFoundError:
        raise _Refused(f"no file {filename} in that Hugging Face repo") from None
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else "?"
        raise _Refused(f"Hugging Face refused to show its header (HTTP {status})") from None
    except _Refused:
        raise
    except SafetensorsParsingError as error:
        raise NotSafetensors(f"not a safetensors file ({type(error).__name__})") from None
    except Exception as error:  # offline, DNS, a timeout (huggingface_hub's HTTP client's own errors)
        raise _Refused(f"Hugging Face could not be reached ({type(error).__name__})") from None
    tensors = {name: {"shape": list(info.shape), "data_offsets": list(info.data_offsets)}
               for name, info in meta.tensors.items()}
    ends = [entry["data_offsets"][1] for entry in tensors.values()]
    return classify(tensors, dict(meta.metadata or {}), max(ends, default=0))


def _from_file(lora_dir: Path, path: str) -> LoraHeader:
    try:
        return read_file_header(folder_file(lora_dir, path))
    except ValueError as error:
        raise _Refused(str(error)) from None


def looks_local(path: str, lora_dir: Path | None) -> bool:
    """Whether a LoRA path means a file of the LoRA folder, as the local backend reads it (first,
    before a repo id of the same spelling): a path ("/", "./", "../", "~", or with "..") or a file
    there. Whether it is inside the folder is `folder_file`'s to say."""
    if "://" in path:
        return False
    if path.startswith(("/", "./", "../", "~")) or ".." in Path(path).parts:
        return True
    return lora_dir is not None and (lora_dir / path).exists()


def folder_file(lora_dir: Path, path: str) -> Path:
    """The .safetensors file `path` names inside `lora_dir` (relative to it, or absolute);
    ValueError with the reason for anything else."""
    root = lora_dir.resolve()
    candidate = Path(path).expanduser()
    resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not resolved.is_relative_to(root):
        raise ValueError(f"is outside the LoRA folder ({root})")
    if resolved.suffix.lower() != ".safetensors":
        raise ValueError("only .safetensors files are loaded")
    if not resolved.is_file():
        raise ValueError("no such file in the LoRA folder")
    return resolved


def _read_upto(response: httpx.Response, limit: int) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def _file_size(response: httpx.Response) -> int | None:
    """The whole file's size: Content-Range's total (a 206), or Content-Length (a 200)."""
    content_range = response.headers.get("content-range", "")
    total = content_range.rpartition("/")[2]
    if total.isdigit():
        return int(total)
    length = response.headers.get("content-length", "")
    return int(length) if response.status_code == 200 and length.isdigit() else None
