"""Where a local LoRA comes from, fetched safely: safetensors only, never pickles.

A LoRA path is one of:
- a `.safetensors` file inside the configured LoRA folder (`STUDIO_LORA_DIR`), by a
  path relative to it or absolute; anything outside the folder is refused;
- a Hugging Face repo id, `owner/name` (its one .safetensors file) or
  `owner/name/file.safetensors`;
- an https URL to a `.safetensors` file on a public address, downloaded with a size cap.

The result is a local file whose tensors and metadata are then read with
`safetensors` (no code can run while loading).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx

from ..errors import StudioError

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(/[\w./-]+\.safetensors)?$")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
TRIGGER_KEYS = ("trigger_word", "trigger_words", "instance_prompt", "activation_text")


class LoraError(StudioError):
    """A LoRA could not be used; the message names it and says why."""

    def __init__(self, index: int, path: str, reason: str):
        super().__init__(f"LoRA {index} ({_short(path)}): {reason}")
        self.index = index
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class LoraFile:
    source: str  # what the person typed
    file: Path = field(repr=False)
    trigger_words: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoraFetcher:
    lora_dir: Path | None = None
    cache_dir: Path = Path(tempfile.gettempdir()) / "flux2-studio-loras"
    max_bytes: int = 2 * 1024**3

    def fetch(self, index: int, path: str) -> LoraFile:
        """The LoRA as a local safetensors file; raises LoraError naming LoRA `index`."""
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
        elif self._looks_local(path):
            file = self._local(index, path)
        elif REPO_ID.match(path):
            file = self._from_hub(index, path)
        else:
            raise LoraError(index, path, "is not a file in the LoRA folder, a Hugging Face repo id or an https URL")
        try:
            triggers = read_trigger_words(file)
        except Exception as error:  # safetensors raises its own error type for a bad header
            raise LoraError(index, path, f"is not a readable safetensors file ({error})"[:300]) from None
        return LoraFile(source=path, file=file, trigger_words=triggers)

    def _looks_local(self, path: str) -> bool:
        if path.startswith(("/", "./", "../", "~")) or ".." in Path(path).parts:
            return True
        return self.lora_dir is not None and (self.lora_dir / path).exists()

    def _local(self, index: int, path: str) -> Path:
        if self.lora_dir is None:
            raise LoraError(index, path, "local LoRA files are off: set STUDIO_LORA_DIR to a folder of LoRAs")
        root = self.lora_dir.resolve()
        candidate = Path(path).expanduser()
        resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
        if not resolved.is_relative_to(root):
            raise LoraError(index, path, f"is outside the LoRA folder ({root})")
        if resolved.suffix.lower() != ".safetensors":
            raise LoraError(index, path, "only .safetensors files are loaded")
        if not resolved.is_file():
            raise LoraError(index, path, "no such file in the LoRA folder")
        return resolved

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
        parsed = urlparse(url)
        if not parsed.path.lower().endswith(".safetensors"):
            raise LoraError(index, url, "the URL must point to a .safetensors file")
        if not parsed.hostname or not _is_public(parsed.hostname, parsed.port or 443):
            raise LoraError(index, url, "only public addresses are fetched (not loopback or private networks)")
        target = self.cache_dir / (hashlib.sha256(url.encode()).hexdigest()[:32] + ".safetensors")
        if target.is_file():
            return target
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        size = 0
        try:
            # No redirects: a redirect could point at a private address after the check.
            with httpx.stream("GET", url, timeout=60.0, follow_redirects=False) as response:
                if response.status_code != 200:
                    raise LoraError(index, url, f"the download failed (HTTP {response.status_code})")
                with partial.open("wb") as out:
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise LoraError(index, url, f"is larger than {self.max_bytes // 2**20} MB")
                        out.write(chunk)
            os.replace(partial, target)
        except httpx.HTTPError as error:
            raise LoraError(index, url, f"the download failed ({type(error).__name__})") from None
        finally:
            partial.unlink(missing_ok=True)
        return target


def _is_public(host: str, port: int) -> bool:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    addresses = {ipaddress.ip_address(info[4][0]) for info in infos}
    return bool(addresses) and all(a.is_global for a in addresses)


def read_trigger_words(file: Path) -> tuple[str, ...]:
    """Trigger words from a LoRA's safetensors metadata (trainers store them differently)."""
    from safetensors import safe_open

    with safe_open(str(file), framework="pt") as handle:
        metadata = handle.metadata() or {}
    words: list[str] = []
    for key in TRIGGER_KEYS:
        value = metadata.get(key)
        if value:
            words += [w.strip() for w in re.split(r"[,\n]", value) if w.strip()]
    if not words and metadata.get("ss_tag_frequency"):  # kohya: the most frequent tags
        try:
            counts: dict[str, int] = {}
            for tags in json.loads(metadata["ss_tag_frequency"]).values():
                for tag, n in tags.items():
                    counts[tag.strip()] = counts.get(tag.strip(), 0) + int(n)
            words = sorted(counts, key=lambda tag: counts[tag], reverse=True)[:3]
        except (ValueError, AttributeError, TypeError):
            pass
    return tuple(dict.fromkeys(words))


def _short(path: str) -> str:
    return path if len(path) <= 60 else path[:28] + "…" + path[-28:]
