"""The app's settings, read once from the environment at start-up.

Every setting, its default and effect is listed in README.md ("Settings"). A bad
value stops the start with a message naming the variable and what it accepts.
"""

from __future__ import annotations

import importlib.util
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .fal_backend import DEFAULT_ENDPOINT
from .zerogpu import on_zerogpu


# The local backend's memory modes and what each needs (README: "Local GPU").
MEMORY_MODES: dict[str, str] = {
    "gpu": "everything on the GPU (fastest; > 80 GB)",
    "model_offload": "model CPU offload (~62 GB GPU)",
    "group_offload": "group offload (~8 GB GPU + 32 GB RAM; slowest)",
}


class SettingsError(ValueError):
    """A setting has a value the app cannot use."""


@dataclass(frozen=True)
class Settings:
    fal_key: str | None = field(default=None, repr=False)  # never printed
    fal_endpoint: str = DEFAULT_ENDPOINT
    fal_transport: str = "stream"
    fal_base_url: str | None = None
    outputs: Path = Path("outputs")
    outputs_max_mb: int = 2000  # size cap of the outputs folder; 0: no cap
    run_timeout: float = 600.0
    max_queue: int = 64
    concurrency: int = 64
    backends: tuple[str, ...] = ("fal",)
    default_backend: str = "fal"
    # local backend
    model: str = "black-forest-labs/FLUX.2-dev"
    memory: str = "gpu"
    device: str | None = None
    lora_dir: Path | None = None
    decode_every: int = 4
    text_encoder_layers: tuple[int, ...] = (10, 20, 30)
    max_sequence_length: int = 512
    compile_blocks: bool = True
    zerogpu: bool = False  # on a ZeroGPU Space (SPACES_ZERO_GPU=true): GPU work in `spaces` slots

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        transport = env.get("STUDIO_FAL_TRANSPORT", "stream").strip().lower()
        if transport not in ("stream", "queue"):
            raise SettingsError(f"STUDIO_FAL_TRANSPORT must be 'stream' or 'queue', not {transport!r}")
        base_url = env.get("STUDIO_FAL_BASE_URL", "").strip() or None
        if base_url and not base_url.startswith(("http://", "https://")):
            raise SettingsError("STUDIO_FAL_BASE_URL must start with http:// or https://")
        fal_key = env.get("FAL_KEY", "").strip() or None
        raw_backends = env.get("STUDIO_BACKENDS", "").strip().lower()
        zerogpu = on_zerogpu(env)
        if raw_backends:
            backends = tuple(dict.fromkeys(b.strip() for b in raw_backends.split(",") if b.strip()))
            unknown = [b for b in backends if b not in ("fal", "local")]
            if unknown or not backends:
                raise SettingsError(f"STUDIO_BACKENDS takes 'fal', 'local' or 'fal,local', not {raw_backends!r}")
        elif zerogpu:  # a ZeroGPU Space is for the local backend; fal too when the Space has a key
            backends = ("local", "fal") if fal_key else ("local",)
        else:
            backends = ("fal", "local") if local_gpu_present() else ("fal",)
        if zerogpu and "local" in backends and importlib.util.find_spec("spaces") is None:
            raise SettingsError(
                "on a ZeroGPU Space the local backend needs the spaces package: add spaces to requirements.txt "
                "(or set STUDIO_BACKENDS=fal)"
            )
        if "local" in backends and not local_packages_present():
            raise SettingsError(
                "the local backend needs torch, diffusers and transformers: pip install -r requirements-local.txt "
                "(or set STUDIO_BACKENDS=fal)"
            )
        memory = env.get("STUDIO_MEMORY", "gpu").strip() or "gpu"
        if memory not in MEMORY_MODES:
            raise SettingsError(f"STUDIO_MEMORY must be gpu, model_offload or group_offload, not {memory!r}")
        lora_dir = env.get("STUDIO_LORA_DIR", "").strip()
        if lora_dir and not Path(lora_dir).is_dir():
            raise SettingsError(f"STUDIO_LORA_DIR {lora_dir!r} is not a folder")
        layers = env.get("STUDIO_TEXT_ENCODER_LAYERS", "").strip()
        try:
            text_layers = tuple(int(x) for x in layers.split(",")) if layers else (10, 20, 30)
        except ValueError:
            raise SettingsError(f"STUDIO_TEXT_ENCODER_LAYERS must be numbers like 10,20,30, not {layers!r}") from None
        if "fal" in backends and (fal_key or "local" not in backends) and not zerogpu:
            default_backend = "fal"
        else:
            default_backend = "local" if "local" in backends else "fal"
        return cls(
            backends=backends,
            default_backend=default_backend,
            model=env.get("STUDIO_MODEL", "").strip() or "black-forest-labs/FLUX.2-dev",
            memory=memory,
            device=env.get("STUDIO_DEVICE", "").strip() or None,
            lora_dir=Path(lora_dir) if lora_dir else None,
            decode_every=int(_number(env, "STUDIO_PREVIEW_DECODE_EVERY", 4, low=0)),
            text_encoder_layers=text_layers,
            max_sequence_length=int(_number(env, "STUDIO_MAX_SEQUENCE_LENGTH", 512, low=16)),
            compile_blocks=_flag(env, "STUDIO_COMPILE", True),
            fal_key=fal_key,
            fal_endpoint=env.get("STUDIO_FAL_ENDPOINT", DEFAULT_ENDPOINT).strip() or DEFAULT_ENDPOINT,
            fal_transport=transport,
            fal_base_url=base_url,
            outputs=_outputs_folder(env.get("STUDIO_OUTPUTS", "").strip() or "outputs"),
            outputs_max_mb=int(_number(env, "STUDIO_OUTPUTS_MAX_MB", 2000, low=0)),
            run_timeout=_number(env, "STUDIO_RUN_TIMEOUT", 600.0, low=1.0),
            max_queue=int(_number(env, "STUDIO_MAX_QUEUE", 64, low=1)),
            concurrency=int(_number(env, "STUDIO_CONCURRENCY", 64, low=1)),
            zerogpu=zerogpu,
        )


def _outputs_folder(raw: str) -> Path:
    """The outputs folder must lie in the working directory or the temp folder.

    Gradio hands a browser only copies of files from there (in its cache, under names
    made from a secret hash of their content); the outputs folder itself is never
    served, so one visitor cannot fetch another's results by guessing their names.
    Serving a folder elsewhere would need it in launch(allowed_paths=...), which
    serves every file in it to anyone who knows the path."""
    folder = Path(raw).expanduser()
    places = [Path.cwd().resolve(), Path(tempfile.gettempdir()).resolve()]
    resolved = folder.absolute().resolve()
    if not any(resolved == place or place in resolved.parents for place in places):
        raise SettingsError(
            f"STUDIO_OUTPUTS {raw!r} must be inside the folder the app is started from ({places[0]}) "
            f"or the temp folder ({places[1]}); start the app from a folder that contains it"
        )
    return folder


def _number(env: dict[str, str], name: str, default: float, low: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if not math.isfinite(value):
        raise SettingsError(f"{name} must be a finite number, not {raw!r}")
    if value < low:
        raise SettingsError(f"{name} must be at least {low:g}, not {raw!r}")
    return value


def local_packages_present() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "diffusers", "transformers"))


def local_gpu_present() -> bool:
    """An NVIDIA GPU and the local packages, found without importing torch (slow to import)."""
    return Path("/proc/driver/nvidia/version").exists() and local_packages_present()


def _flag(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be 1 or 0, not {raw!r}")
