"""The app's settings, read once from the environment at start-up.

Every setting, its default and effect is listed in README.md ("Settings"). A bad
value stops the start with a message naming the variable and what it accepts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .fal_backend import DEFAULT_ENDPOINT


class SettingsError(ValueError):
    """A setting has a value the app cannot use."""


@dataclass(frozen=True)
class Settings:
    fal_key: str | None = field(default=None, repr=False)  # never printed
    fal_endpoint: str = DEFAULT_ENDPOINT
    fal_transport: str = "stream"
    fal_base_url: str | None = None
    outputs: Path = Path("outputs")
    run_timeout: float = 600.0
    max_queue: int = 64
    concurrency: int = 64

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        transport = env.get("STUDIO_FAL_TRANSPORT", "stream").strip().lower()
        if transport not in ("stream", "queue"):
            raise SettingsError(f"STUDIO_FAL_TRANSPORT must be 'stream' or 'queue', not {transport!r}")
        base_url = env.get("STUDIO_FAL_BASE_URL", "").strip() or None
        if base_url and not base_url.startswith(("http://", "https://")):
            raise SettingsError("STUDIO_FAL_BASE_URL must start with http:// or https://")
        return cls(
            fal_key=env.get("FAL_KEY", "").strip() or None,
            fal_endpoint=env.get("STUDIO_FAL_ENDPOINT", DEFAULT_ENDPOINT).strip() or DEFAULT_ENDPOINT,
            fal_transport=transport,
            fal_base_url=base_url,
            outputs=Path(env.get("STUDIO_OUTPUTS", "outputs")),
            run_timeout=_number(env, "STUDIO_RUN_TIMEOUT", 600.0, low=1.0),
            max_queue=int(_number(env, "STUDIO_MAX_QUEUE", 64, low=1)),
            concurrency=int(_number(env, "STUDIO_CONCURRENCY", 64, low=1)),
        )


def _number(env: dict[str, str], name: str, default: float, low: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if value < low:
        raise SettingsError(f"{name} must be at least {low:g}, not {raw!r}")
    return value
