"""The operator's settings of the fal backend (the same for every run); a visitor's
choices for one run are `FalOptions` (options.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..settings import DEFAULT_FAL_ENDPOINT as DEFAULT_ENDPOINT

FAL_MAX_REFERENCES = 3


@dataclass(frozen=True)
class FalSettings:
    endpoint: str = DEFAULT_ENDPOINT
    transport: Literal["stream", "queue"] = "stream"
    poll_interval: float = 0.5
    run_timeout: float = 600.0
    # References at most this big travel inline as data URIs (no upload round trips);
    # larger ones go through fal's storage.
    inline_max_bytes: int = 512 * 1024
    download_max_bytes: int = 64 * 1024 * 1024
    # Retries of a call fal answered "not now" (429, a proxy's 502-504, a dropped
    # connection): at most `retry_attempts` tries, waiting `retry_backoff` s, doubled
    # each time, never more than `retry_max_wait` s. A Retry-After above that ends the
    # run at once ("try again in ..."): a person should not watch a spinner for minutes.
    retry_attempts: int = 3
    retry_backoff: float = 1.0
    retry_max_wait: float = 8.0
    # Each LoRA's header is read before anything is sent to fal (backend/lora_preflight.py):
    # one made for another model, or that cannot be read, is refused without spending.
    lora_check: bool = True
