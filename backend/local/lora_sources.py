"""Where a local LoRA comes from, fetched safely: safetensors only, never pickles.

A LoRA path is one of:
- a `.safetensors` file inside the configured LoRA folder (`STUDIO_LORA_DIR`), by a
  path relative to it or absolute; anything outside the folder is refused;
- a Hugging Face repo id, `owner/name` (its one .safetensors file) or
  `owner/name/file.safetensors`;
- an https URL to a `.safetensors` file on a public address, downloaded with a size cap,
  connected to the address that was checked (`guarded_http.py`) and kept in a download cache
  bounded in bytes (`lora_cache.py`, STUDIO_LORA_CACHE_MB).

The result is a local file whose tensors and metadata are then read with
`safetensors` (no code can run while loading).
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ..errors import LoraError
from ..guarded_http import NotPublic, Resolver, declared_size, pinned_get, public_addresses, system_getaddrinfo
from ..lora_header import LoraHeader, NotSafetensors, read_file_header
from ..lora_preflight import REPO_ID, folder_file, looks_local
from .lora_cache import CacheFull, DownloadCache, url_key

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
DOWNLOAD_TIMEOUT = httpx.Timeout(60.0, connect=15.0)  # per connection attempt and per read
DOWNLOAD_SECONDS = 900  # a whole download (a server that trickles bytes would hold the GPU line)


@dataclass(frozen=True)
class LoraFile:
    source: str  # what the person typed
    file: Path = field(repr=False)
    header: LoraHeader = field(repr=False)

    @property
    def trigger_words(self) -> tuple[str, ...]:
        return self.header.trigger_words


@dataclass(frozen=True)
class LoraFetcher:
    """Fetches one LoRA at a time (the local backend's GPU line); a downloaded file stays
    pinned in the download cache until the next fetch, which covers loading it."""

    lora_dir: Path | None = None
    cache_dir: Path = Path(tempfile.gettempdir()) / "flux2-studio-loras"
    max_bytes: int = 2 * 1024**3  # one download
    cache_bytes: int = 8192 * 2**20  # all downloads kept (STUDIO_LORA_CACHE_MB); 0: no downloads
    getaddrinfo: Resolver = field(default=system_getaddrinfo, repr=False, compare=False)
    _held: list[Path] = field(default_factory=list, init=False, repr=False, compare=False)

    @property
    def cache(self) -> DownloadCache:
        return DownloadCache(self.cache_dir, self.cache_bytes)

    def fetch(self, index: int, path: str) -> LoraFile:
        """The LoRA as a local safetensors file; raises LoraError naming LoRA `index`."""
        while self._held:  # the file handed out last has been loaded by now
            DownloadCache.release(self._held.pop())
        path = path.strip()
        lower = path.lower()
        if lower.endswith(PICKLE_SUFFIXES):
            raise LoraError(
                index, path, "only .safetensors files are loaded (pickled .bin/.pt/.ckpt files can run code)",
            )
        if lower.startswith("https://"):
            file = self._download(index, path)
        elif "://" in lower:
            raise LoraError(index, path, "only https:// URLs are fetched")
        elif looks_local(path, self.lora_dir):
            file = self._local(index, path)
        elif REPO_ID.match(path):
            file = self._from_hub(index, path)
        else:
            raise LoraError(index, path, "is not a file in the LoRA folder, a Hugging Face repo id or an https URL")
        try:
            header = read_file_header(file)
        except (NotSafetensors, OSError) as error:
            raise LoraError(index, path, f"is not a readable safetensors file ({error})"[:300]) from None
        return LoraFile(source=path, file=file, header=header)

    def _local(self, index: int, path: str) -> Path:
        if self.lora_dir is None:
            raise LoraError(index, path, "local LoRA files are off: set STUDIO_LORA_DIR to a folder of LoRAs")
        try:
            return folder_file(self.lora_dir, path)
        except ValueError as error:
            raise LoraError(index, path, str(error)) from None

    def _from_hub(self, index: int, path: str) -> Path:
        from huggingface_hub import hf_hub_download, list_repo_files
        from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

        owner, name, *rest = path.split("/")
        repo = f"{owner}/{name}"
        try:
            if rest:
                filename = "/".join(rest)
            else:
                files = [f for f in list_repo_files(repo) if f.endswith(".safetensors")]
                if len(files) != 1:
                    found = ", ".join(files[:5]) or "none"
                    raise LoraError(index, path, f"name the file: owner/name/file.safetensors (found {found})")
                filename = files[0]
            return Path(hf_hub_download(repo, filename))
        except LoraError:
            raise
        except RepositoryNotFoundError:
            raise LoraError(index, path, "no such Hugging Face repo (or it is private: set HF_TOKEN)") from None
        except HfHubHTTPError as error:
            raise LoraError(index, path, f"Hugging Face refused the download ({error.response.status_code})") from None
        except Exception as error:  # offline, DNS, disk: say what happened
            raise LoraError(index, path, f"could not be fetched from Hugging Face ({type(error).__name__})") from None

    def _download(self, index: int, url: str) -> Path:
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            raise LoraError(index, url, "is not a valid URL") from None
        if not parsed.path.lower().endswith(".safetensors"):
            raise LoraError(index, url, "the URL must point to a .safetensors file")
        if not parsed.raw_host:
            raise LoraError(index, url, "the URL names no host")
        if self.cache_bytes <= 0:
            raise LoraError(index, url, "LoRA downloads are off on this server (STUDIO_LORA_CACHE_MB=0)")
        try:  # looked up once: the download connects to these addresses, never to a new answer
            addresses = public_addresses(parsed.raw_host.decode("ascii"), parsed.port or 443, self.getaddrinfo)
        except NotPublic as error:
            raise LoraError(index, url, str(error)) from None
        key = url_key(parsed)
        file = self.cache.lookup(key, hold=True) or self._save(index, url, addresses, key)
        self._held.append(file)  # held (not removed from the cache) until the next fetch
        return file

    def _save(self, index: int, url: str, addresses: tuple[str, ...], key: str) -> Path:
        """Download `url` from the checked `addresses` into the cache; the stored file."""
        cache = self.cache
        limit = min(self.max_bytes, self.cache_bytes)
        too_large = LoraError(index, url, f"is larger than the {_limit_text(limit, self.cache_bytes)}")
        partial = cache.new_partial()
        digest = hashlib.sha256()
        size, deadline = 0, time.monotonic() + DOWNLOAD_SECONDS
        try:
            # No redirects: a redirect could point at a private address after the check.
            with pinned_get(url, addresses, DOWNLOAD_TIMEOUT) as response:
                if response.status_code != 200:
                    raise LoraError(index, url, f"the download failed (HTTP {response.status_code})")
                if declared_size(response) > limit:
                    raise too_large
                with partial.open("wb") as out:
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > limit:
                            raise too_large
                        if time.monotonic() > deadline:
                            raise LoraError(index, url, f"took over {DOWNLOAD_SECONDS // 60} minutes to download")
                        digest.update(chunk)
                        out.write(chunk)
            return cache.store(key, partial, digest.hexdigest(), hold=True)
        except httpx.HTTPError as error:
            raise LoraError(index, url, f"the download failed ({type(error).__name__})") from None
        except CacheFull as error:
            raise LoraError(index, url, f"{error}; try again in a minute") from None
        finally:
            partial.unlink(missing_ok=True)


def _limit_text(limit: int, cache_bytes: int) -> str:
    mb = f"{limit // 2**20} MB"
    return f"{mb} LoRA download cache (STUDIO_LORA_CACHE_MB)" if limit == cache_bytes else f"{mb} download limit"
