"""The app's settings, read once from the environment at start-up.

Every setting, its default and effect is listed in README.md ("Settings") and
docs/configuration.md. pydantic-settings reads and checks each variable (`_Environment`,
`_Variables`); `Settings.from_env` then works out what depends on several of them (the
backends, the default backend). A bad value stops the start with a `SettingsError` naming
the variable and what it accepts; pydantic's own errors are turned into such messages.

This module imports nothing from the rest of the `backend` package (nor fal-client,
torch or gradio), so that anything may read the settings cheaply.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, SettingsConfigDict

# SettingsError is raised here and imported from here by callers (hence the re-export).
from .setting_checks import SettingsError as SettingsError
from .setting_checks import (
    backend_list,
    comma_split,
    flag,
    http_url,
    lora_folder,
    lower,
    one_of,
    outputs_folder,
    zerogpu_flag,
)

DEFAULT_FAL_ENDPOINT = "fal-ai/flux-2/lora/edit"
DEFAULT_MODEL = "black-forest-labs/FLUX.2-dev"

# The local backend's memory modes and what each needs (README: "Local GPU").
MEMORY_MODES: dict[str, str] = {
    "gpu": "all on the GPU (quickest; > 80 GB)",  # not "fastest": that names a speed preset
    "model_offload": "model CPU offload (~62 GB GPU)",
    "group_offload": "group offload (~8 GB GPU + 32 GB RAM; slowest)",
}
# The local backend's speed presets (README: "Local GPU"; backend/local/speed.py applies them).
SPEEDS: dict[str, str] = {
    "quality": "bf16 with regional compile",
    "fast": "fp8 linear layers (torchao) with regional compile",
    "fastest": "fast plus a step cache (most steps predicted from the computed ones)",
}


@dataclass(frozen=True)
class Settings:
    fal_key: str | None = field(default=None, repr=False)  # never printed
    fal_endpoint: str = DEFAULT_FAL_ENDPOINT
    fal_transport: str = "stream"
    fal_base_url: str | None = None
    outputs: Path = Path("outputs")
    outputs_max_mb: int = 2000  # size cap of the outputs folder; 0: no cap
    starred_max_mb: int = 500  # size cap of the starred runs in it (the oldest stars go first); 0: no cap
    cache_max_mb: int = 4000  # size cap of Gradio's cache (uploads, previews, results: backend/cache_room.py); 0: none
    # What one address may upload in 10 minutes (with the cache's cap); 0: no limit. Unset on a
    # Space, none: every visitor there has the Space proxy's address, so it would bound them all.
    upload_mb_per_visitor: int = 1000
    # Three references of 64 MB sent inline as base64 (3 x 64 x 4/3 = 256 MB) plus the JSON around them.
    max_body_mb: float = 260.0  # the largest HTTP request body, checked before it is parsed
    max_image_mp: float = 25.0  # the largest image decoded at all, in megapixels
    run_timeout: float = 600.0
    max_queue: int = 64
    concurrency: int = 64
    visitor_runs_per_hour: int = 20  # on the server's key, per visitor and rolling hour (backend/spending.py); 0: none
    visitor_concurrency: int = 2  # runs and sweeps of one visitor at once (any key); 0: no limit
    daily_budget_usd: float = 20.0  # estimated spend on the server's key per UTC day, everyone; 0: no cap
    price_per_mp: float = 0.021  # fal's price per megapixel, for the estimates
    require_login: bool = False  # the server's key only for visitors signed in with Hugging Face
    on_space: bool = False  # on a Hugging Face Space (SPACE_ID is set): a sign-in button is shown
    backends: tuple[str, ...] = ("fal",)
    default_backend: str = "fal"
    # local backend
    model: str = DEFAULT_MODEL  # the default model, one of `models`
    models: tuple[str, ...] = (DEFAULT_MODEL,)  # the models a visitor may pick, canonical (`canonical_model`)
    memory: str = "gpu"
    device: str | None = None
    lora_dir: Path | None = None
    lora_cache_mb: int = 8192  # size cap of the LoRA download cache; 0: no LoRA downloads
    decode_every: int = 4
    text_encoder_layers: tuple[int, ...] = (10, 20, 30)
    max_sequence_length: int = 512
    compile_blocks: bool = True
    speed: str = "quality"  # the default speed preset, one of SPEEDS
    step_cache_interval: int = 4  # the step cache of "fastest": the transformer runs fully every k-th step
    lora_max_rank: int = 128  # the largest LoRA rank accepted (LoRA slots are padded to it under compile)
    lora_check: bool = True  # read each LoRA's header before a run: one made for another model is refused
    zerogpu: bool = False  # on a ZeroGPU Space (SPACES_ZERO_GPU=true): GPU work in `spaces` slots
    # ZeroGPU: one step's seconds at the reference size on the Space's card; None: measured at start-up
    step_seconds: float | None = None
    # The variables among STUDIO_MEMORY and STUDIO_SPEED the operator set: a ZeroGPU plan keeps them if they fit
    explicit: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings from `env` (os.environ when None); a bad value raises SettingsError."""
        env = os.environ if env is None else env
        values = _read(env)  # each variable's checked value, by the variable's name
        fal_key = _plain(values["FAL_KEY"])
        zerogpu = values["SPACES_ZERO_GPU"]
        backends = values["STUDIO_BACKENDS"]
        if backends is None and zerogpu:  # a ZeroGPU Space is for the local backend; fal too when the Space has a key
            backends = ("local", "fal") if fal_key else ("local",)
        elif backends is None:
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
        if "fal" in backends and (fal_key or "local" not in backends) and not zerogpu:
            default_backend = "fal"
        else:
            default_backend = "local" if "local" in backends else "fal"
        return cls(
            backends=backends,
            default_backend=default_backend,
            model=values["STUDIO_MODEL"],  # STUDIO_MODEL, else the first of STUDIO_MODELS (see _Variables)
            models=values["STUDIO_MODELS"] or (values["STUDIO_MODEL"],),
            memory=values["STUDIO_MEMORY"],
            device=values["STUDIO_DEVICE"],
            lora_dir=values["STUDIO_LORA_DIR"],
            lora_cache_mb=values["STUDIO_LORA_CACHE_MB"],
            decode_every=values["STUDIO_PREVIEW_DECODE_EVERY"],
            text_encoder_layers=values["STUDIO_TEXT_ENCODER_LAYERS"],
            max_sequence_length=values["STUDIO_MAX_SEQUENCE_LENGTH"],
            compile_blocks=values["STUDIO_COMPILE"],
            speed=values["STUDIO_SPEED"],
            step_cache_interval=values["STUDIO_STEP_CACHE_INTERVAL"],
            lora_max_rank=values["STUDIO_LORA_MAX_RANK"],
            lora_check=values["STUDIO_LORA_CHECK"],
            fal_key=fal_key,
            fal_endpoint=values["STUDIO_FAL_ENDPOINT"],
            fal_transport=values["STUDIO_FAL_TRANSPORT"],
            fal_base_url=values["STUDIO_FAL_BASE_URL"],
            outputs=values["STUDIO_OUTPUTS"],
            outputs_max_mb=values["STUDIO_OUTPUTS_MAX_MB"],
            starred_max_mb=values["STUDIO_STARRED_MAX_MB"],
            cache_max_mb=values["STUDIO_CACHE_MAX_MB"],
            upload_mb_per_visitor=_upload_share(values["STUDIO_UPLOAD_MB_PER_VISITOR"], values["SPACE_ID"]),
            max_body_mb=values["STUDIO_MAX_BODY_MB"],
            max_image_mp=values["STUDIO_MAX_IMAGE_MP"],
            run_timeout=values["STUDIO_RUN_TIMEOUT"],
            max_queue=values["STUDIO_MAX_QUEUE"],
            concurrency=values["STUDIO_CONCURRENCY"],
            visitor_runs_per_hour=values["STUDIO_VISITOR_RUNS_PER_HOUR"],
            visitor_concurrency=values["STUDIO_VISITOR_CONCURRENCY"],
            daily_budget_usd=values["STUDIO_DAILY_BUDGET_USD"],
            price_per_mp=values["STUDIO_PRICE_PER_MP"],
            require_login=values["STUDIO_REQUIRE_LOGIN"],
            on_space=values["SPACE_ID"] is not None,
            zerogpu=zerogpu,
            step_seconds=values["STUDIO_STEP_SECONDS"],
            explicit=tuple(name for name in ("STUDIO_MEMORY", "STUDIO_SPEED") if env.get(name, "").strip()),
        )


def _upload_share(value: int | None, space_id: str | None) -> int:
    """STUDIO_UPLOAD_MB_PER_VISITOR as set; unset: the default, except on a Space (no limit)."""
    if value is not None:
        return value
    return 0 if space_id is not None else _DEFAULT.upload_mb_per_visitor


def canonical_model(name: str) -> str:
    """One spelling per model, to compare a visitor's pick with STUDIO_MODELS.

    Whitespace and trailing slashes go. A name that is an existing folder, or is written as
    a path ('/', './', '../', '~'), becomes its absolute resolved path; anything else is a
    Hugging Face repo id, kept as written. So 'tiny/', './tiny' and '/abs/tiny' are one model."""
    name = name.strip()
    trimmed = name.rstrip("/") or name  # "/" stays "/"
    if not trimmed:
        return ""
    if trimmed in (".", "..") or trimmed.startswith(("/", "./", "../", "~")) or _is_folder(trimmed):
        path = Path(trimmed)
        try:
            path = path.expanduser()
        except RuntimeError:  # '~someone' with no such user: a folder of that name
            pass
        return str(path.resolve())
    return trimmed


def on_zerogpu(env: Mapping[str, str] | None = None) -> bool:
    """On a Hugging Face ZeroGPU Space (it sets SPACES_ZERO_GPU=true)."""
    env = os.environ if env is None else env
    return zerogpu_flag(env.get("SPACES_ZERO_GPU", ""))


def local_packages_present() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "diffusers", "transformers"))


def local_gpu_present() -> bool:
    """An NVIDIA GPU and the local packages, found without importing torch (slow to import)."""
    return Path("/proc/driver/nvidia/version").exists() and local_packages_present()


# -- reading the variables ------------------------------------------------------------------


def _is_folder(name: str) -> bool:
    try:
        return Path(name).expanduser().is_dir()
    except (OSError, ValueError, RuntimeError):  # a name too long, a NUL byte, an unknown ~user
        return False


def _model_list(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    return tuple(dict.fromkeys(canonical_model(name) for name in raw.split(",") if name.strip()))


# A number setting may be written with a fraction ('64.0', '1e3'); the whole-number ones
# are truncated. Each field adds its lowest value (ge=), checked before the truncation.
_Number = Annotated[float, Field(allow_inf_nan=False)]
_Whole = Annotated[_Number, AfterValidator(int)]
_Model = Annotated[str, AfterValidator(canonical_model)]

_DEFAULT = Settings()

# What a variable accepts, for pydantic's own errors on it: "NAME <this>, not 'value'".
# (Number settings get "must be a number / a finite number / at least N" instead.)
_ACCEPTS = {
    "STUDIO_FAL_TRANSPORT": "must be 'stream' or 'queue'",
    "STUDIO_BACKENDS": "takes 'fal', 'local' or 'fal,local'",
    "STUDIO_MEMORY": "must be gpu, model_offload or group_offload",
    "STUDIO_TEXT_ENCODER_LAYERS": "must be numbers like 10,20,30",
    "STUDIO_COMPILE": "must be 1 or 0",
    "STUDIO_LORA_CHECK": "must be 1 or 0",
    "STUDIO_SPEED": "must be quality, fast or fastest",
    "STUDIO_REQUIRE_LOGIN": "must be 1 or 0",
}
# Read whatever their case: their messages show the value in lower case, as it was read.
_CASE_FREE = {"STUDIO_FAL_TRANSPORT", "STUDIO_BACKENDS", "STUDIO_COMPILE", "STUDIO_LORA_CHECK", "STUDIO_REQUIRE_LOGIN",
              "STUDIO_SPEED"}


class _Variables(BaseSettings):
    """Each variable's name (the alias), type, default and checks.

    An unset or blank variable takes the `Settings` default. Every field that holds several
    values is NoDecode: pydantic-settings would otherwise read it as JSON."""

    # validate_default=False: the defaults are Settings' own values, not text to read.
    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", validate_default=False)

    fal_key: SecretStr | None = Field(None, alias="FAL_KEY")
    fal_endpoint: str = Field(_DEFAULT.fal_endpoint, alias="STUDIO_FAL_ENDPOINT")
    fal_transport: Annotated[str, BeforeValidator(lower), one_of("stream", "queue")] = Field(
        _DEFAULT.fal_transport, alias="STUDIO_FAL_TRANSPORT"
    )
    fal_base_url: Annotated[str, AfterValidator(http_url)] | None = Field(None, alias="STUDIO_FAL_BASE_URL")
    outputs: Annotated[Path, BeforeValidator(outputs_folder)] = Field(_DEFAULT.outputs, alias="STUDIO_OUTPUTS")
    outputs_max_mb: _Whole = Field(_DEFAULT.outputs_max_mb, ge=0, alias="STUDIO_OUTPUTS_MAX_MB")
    starred_max_mb: _Whole = Field(_DEFAULT.starred_max_mb, ge=0, alias="STUDIO_STARRED_MAX_MB")
    cache_max_mb: _Whole = Field(_DEFAULT.cache_max_mb, ge=0, alias="STUDIO_CACHE_MAX_MB")
    upload_mb_per_visitor: _Whole | None = Field(None, ge=0, alias="STUDIO_UPLOAD_MB_PER_VISITOR")  # _upload_share
    max_body_mb: _Number = Field(_DEFAULT.max_body_mb, ge=1, alias="STUDIO_MAX_BODY_MB")
    max_image_mp: _Number = Field(_DEFAULT.max_image_mp, ge=1, alias="STUDIO_MAX_IMAGE_MP")
    run_timeout: _Number = Field(_DEFAULT.run_timeout, ge=1, alias="STUDIO_RUN_TIMEOUT")
    max_queue: _Whole = Field(_DEFAULT.max_queue, ge=1, alias="STUDIO_MAX_QUEUE")
    concurrency: _Whole = Field(_DEFAULT.concurrency, ge=1, alias="STUDIO_CONCURRENCY")
    visitor_runs_per_hour: _Whole = Field(_DEFAULT.visitor_runs_per_hour, ge=0, alias="STUDIO_VISITOR_RUNS_PER_HOUR")
    visitor_concurrency: _Whole = Field(_DEFAULT.visitor_concurrency, ge=0, alias="STUDIO_VISITOR_CONCURRENCY")
    daily_budget_usd: _Number = Field(_DEFAULT.daily_budget_usd, ge=0, alias="STUDIO_DAILY_BUDGET_USD")
    price_per_mp: _Number = Field(_DEFAULT.price_per_mp, ge=0, alias="STUDIO_PRICE_PER_MP")
    require_login: Annotated[bool, BeforeValidator(flag)] = Field(_DEFAULT.require_login, alias="STUDIO_REQUIRE_LOGIN")
    space_id: str | None = Field(None, alias="SPACE_ID")  # set by Hugging Face on a Space
    # None: worked out in Settings.from_env from the machine, FAL_KEY and SPACES_ZERO_GPU
    backends: Annotated[
        Annotated[tuple[Literal["fal", "local"], ...], Field(min_length=1)] | None,
        NoDecode, BeforeValidator(backend_list),
    ] = Field(None, alias="STUDIO_BACKENDS")
    zerogpu: Annotated[bool, BeforeValidator(zerogpu_flag)] = Field(_DEFAULT.zerogpu, alias="SPACES_ZERO_GPU")
    model: _Model | None = Field(None, alias="STUDIO_MODEL")  # None: see _default_model
    models: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_model_list)] = Field((), alias="STUDIO_MODELS")
    memory: Annotated[str, one_of(*MEMORY_MODES)] = Field(_DEFAULT.memory, alias="STUDIO_MEMORY")
    device: str | None = Field(_DEFAULT.device, alias="STUDIO_DEVICE")
    lora_dir: Annotated[Path | None, BeforeValidator(lora_folder)] = Field(_DEFAULT.lora_dir, alias="STUDIO_LORA_DIR")
    lora_cache_mb: _Whole = Field(_DEFAULT.lora_cache_mb, ge=0, alias="STUDIO_LORA_CACHE_MB")
    decode_every: _Whole = Field(_DEFAULT.decode_every, ge=0, alias="STUDIO_PREVIEW_DECODE_EVERY")
    text_encoder_layers: Annotated[tuple[int, ...], NoDecode, BeforeValidator(comma_split)] = Field(
        _DEFAULT.text_encoder_layers, alias="STUDIO_TEXT_ENCODER_LAYERS"
    )
    max_sequence_length: _Whole = Field(_DEFAULT.max_sequence_length, ge=16, alias="STUDIO_MAX_SEQUENCE_LENGTH")
    compile_blocks: Annotated[bool, BeforeValidator(flag)] = Field(_DEFAULT.compile_blocks, alias="STUDIO_COMPILE")
    lora_check: Annotated[bool, BeforeValidator(flag)] = Field(_DEFAULT.lora_check, alias="STUDIO_LORA_CHECK")
    speed: Annotated[str, BeforeValidator(lower), one_of(*SPEEDS)] = Field(_DEFAULT.speed, alias="STUDIO_SPEED")
    step_cache_interval: _Whole = Field(_DEFAULT.step_cache_interval, ge=2, alias="STUDIO_STEP_CACHE_INTERVAL")
    lora_max_rank: _Whole = Field(_DEFAULT.lora_max_rank, ge=1, alias="STUDIO_LORA_MAX_RANK")
    step_seconds: _Number | None = Field(None, ge=0.01, alias="STUDIO_STEP_SECONDS")

    @model_validator(mode="after")
    def _default_model(self) -> _Variables:
        """The default model is STUDIO_MODEL, which must then be among STUDIO_MODELS when both
        are set; else the first of STUDIO_MODELS; else DEFAULT_MODEL."""
        if self.model is not None and self.models and self.model not in self.models:
            raise SettingsError(
                f"STUDIO_MODEL {self.model!r} must be one of STUDIO_MODELS ({', '.join(self.models)}): "
                "add it to STUDIO_MODELS or unset STUDIO_MODEL"
            )
        if self.model is None:
            self.model = self.models[0] if self.models else canonical_model(_DEFAULT.model)
        return self

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings,
    ):
        # Only what `_read` passes in (from `_Environment`): never os.environ behind
        # from_env's back, nor a .env file or a secrets folder.
        return (init_settings,)


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (os.environ or a test's
    dict), with names matched exactly, values stripped and blank ones left unset."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]):
        self._env = env
        super().__init__(settings_cls, case_sensitive=True)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name: value.strip() for name, value in self._env.items() if value and value.strip()}


def _read(env: Mapping[str, str]) -> dict[str, Any]:
    """Each variable's checked value (its default when unset), by the variable's name."""
    try:
        variables = _Variables(**_Environment(_Variables, env)())
    except ValidationError as error:
        raise _settings_error(error, env) from None
    return {info.alias or name: getattr(variables, name) for name, info in _Variables.model_fields.items()}


def _settings_error(error: ValidationError, env: Mapping[str, str]) -> SettingsError:
    """pydantic's error as a SettingsError that names the variable and what it accepts."""
    problem = error.errors(include_url=False)[0]
    raised = (problem.get("ctx") or {}).get("error")
    if isinstance(raised, SettingsError):  # a check of ours, its message already written
        return raised
    name = str(problem["loc"][0]) if problem["loc"] else "a setting"
    raw = (env.get(name) or "").strip()
    shown = raw.lower() if name in _CASE_FREE else raw
    kind = problem["type"]
    if name in _ACCEPTS:
        return SettingsError(f"{name} {_ACCEPTS[name]}, not {shown!r}")
    if kind == "finite_number":
        return SettingsError(f"{name} must be a finite number, not {raw!r}")
    if kind == "greater_than_equal":
        return SettingsError(f"{name} must be at least {problem['ctx']['ge']:g}, not {raw!r}")
    if kind in ("float_parsing", "float_type", "int_parsing", "int_type"):
        return SettingsError(f"{name} must be a number, not {raw!r}")
    return SettingsError(f"{name} cannot be {raw!r}: {problem['msg']}")


def _plain(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None
