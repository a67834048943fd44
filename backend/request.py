"""The edit request: one pydantic model for what every backend does, in the names,
defaults and limits of fal's input schema for `fal-ai/flux-2/lora/edit`.

It is the single source of truth for validation, defaults and the page's ranges:
the form spec (ui/form.py) reads its limits and help texts from these `Field`s, and
both backends take an `EditRequest`. What only one backend does (fal's sync mode, the
local model) lives in that backend's options model (backend/fal/options.py,
backend/local/options.py); fal's payload is the request plus fal's options.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union
from urllib.parse import parse_qs, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import FieldProblem, InvalidInput

SizePreset = Literal[
    "square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9"
]
# fal's presets, as width x height (from fal's docs for the FLUX.2 family).
PRESET_SIZES: dict[str, tuple[int, int]] = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
OutputFormat = Literal["png", "jpeg", "webp"]

# fal takes 3 reference images; the local pipeline takes more. The request allows
# the largest count any backend takes and each backend checks its own limit.
MAX_REFERENCES_ANY_BACKEND = 6
MAX_ACTIVE_LORAS = 3
MAX_PROMPT_CHARS = 5000
MAX_SEED = 2**32 - 1

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class LoraWeight(BaseModel):
    """One LoRA to apply: where it is and how strongly."""

    model_config = _FROZEN

    path: str = Field(
        min_length=1,
        max_length=2048,
        title="LoRA path",
        description="An https URL to a .safetensors file, a Hugging Face repo id "
        "(owner/name), or a path as fal accepts it.",
    )
    scale: float = Field(
        default=1.0, ge=0.0, le=4.0, title="LoRA scale",
        description="How strongly the LoRA is applied (0 = not at all).",
    )

    @field_validator("path")
    @classmethod
    def _normalised(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        return normalise_lora_path(value)


HF_HOSTS = {"huggingface.co", "www.huggingface.co", "hf.co"}
CIVITAI_HOSTS = {"civitai.com", "www.civitai.com"}
CIVITAI_DOWNLOAD = "https://civitai.com/api/download/models/{version}"
CIVITAI_PAGE = ("that is a Civitai model page; paste its download link "
                "(https://civitai.com/api/download/models/<version id>)")


def normalise_lora_path(path: str) -> str:
    """A LoRA path as people paste it, made into one a backend can download.

    - A Hugging Face file page (`.../owner/repo/blob/main/x.safetensors`) becomes its download
      URL (`.../resolve/main/x.safetensors`): the page is HTML, the LoRA is behind `resolve`.
    - A Civitai model page that names its version (`?modelVersionId=123`) becomes that version's
      download URL (the id says exactly which file); without one it is refused (ValueError),
      since a model page lists several versions and which is meant would be a guess.
    Anything else is returned as it is (stripped).
    """
    path = path.strip()
    parts = urlsplit(path)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https"):
        return path
    segments = parts.path.split("/")
    if host in HF_HOSTS:
        # /owner/repo/blob/..., or /datasets|spaces/owner/repo/blob/...
        at = 4 if len(segments) > 1 and segments[1] in ("datasets", "spaces") else 3
        if len(segments) > at + 1 and segments[at] == "blob":
            segments[at] = "resolve"
            return urlunsplit(("https", parts.netloc, "/".join(segments), parts.query, ""))
    if host in CIVITAI_HOSTS and len(segments) > 2 and segments[1] == "models":
        version = parse_qs(parts.query).get("modelVersionId", [""])[0]
        if version.isdigit():
            return CIVITAI_DOWNLOAD.format(version=version)
        raise ValueError(CIVITAI_PAGE)
    return path


class ImageSize(BaseModel):
    """A custom output size in pixels."""

    model_config = _FROZEN

    width: int = Field(ge=512, le=2048, multiple_of=16, title="Width", description="Output width in pixels.")
    height: int = Field(ge=512, le=2048, multiple_of=16, title="Height", description="Output height in pixels.")


class EditRequest(BaseModel):
    """An image edit: instruction, reference images, LoRAs and sampling settings.

    Field names, defaults and limits are fal's (`fal-ai/flux-2/lora/edit`).
    """

    model_config = _FROZEN

    prompt: str = Field(
        min_length=1, max_length=MAX_PROMPT_CHARS, title="Instruction",
        description="What to change, e.g. 'make this donut realistic'.",
    )
    image_urls: tuple[str, ...] = Field(
        min_length=1, max_length=MAX_REFERENCES_ANY_BACKEND, title="Reference images",
        description="The images to edit, in order: local file paths, https URLs or data URIs.",
    )
    loras: tuple[LoraWeight, ...] = Field(
        default=(), max_length=MAX_ACTIVE_LORAS, title="LoRAs",
        description="Up to 3 LoRAs applied together.",
    )
    guidance_scale: float = Field(
        default=2.5, ge=0.0, le=20.0, title="Guidance",
        description="How closely the result follows the instruction.",
    )
    num_inference_steps: int = Field(
        default=28, ge=4, le=50, title="Steps",
        description="More steps: more detail, slower.",
    )
    image_size: Union[SizePreset, ImageSize, None] = Field(
        default=None, title="Size",
        description="A preset, a custom width and height, or None to match the first image.",
    )
    num_images: int = Field(default=1, ge=1, le=4, title="Images", description="How many images to make.")
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = Field(
        default=None, title="Seed", description="The same seed and inputs give the same image; None = random.",
    )
    output_format: OutputFormat = Field(
        default="png", title="Output format", description="File format of the result images.",
    )

    @field_validator("prompt")
    @classmethod
    def _prompt_has_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        if any(ord(c) < 32 and c not in "\n\t" for c in value):
            raise ValueError("must not contain control characters")
        return value


def field_title(name: str, model: type[BaseModel] = EditRequest) -> str:
    """The human label of a field, e.g. 'guidance_scale' -> 'Guidance'."""
    info = model.model_fields.get(name)
    return info.title if info is not None and info.title else name


def field_limits(name: str, model: type[BaseModel] = EditRequest) -> dict[str, Any]:
    """The numeric limits of a field as {'minimum': .., 'maximum': ..}; the UI uses it for sliders."""
    schema = model.model_json_schema()
    prop = schema["properties"][name]
    if "anyOf" in prop:  # optional fields: the limits sit on the non-null branch
        prop = next(p for p in prop["anyOf"] if p.get("type") != "null")
    return {k: prop[k] for k in ("minimum", "maximum") if k in prop}


def describe_location(loc: tuple[Any, ...] | list[Any], model: type[BaseModel] = EditRequest) -> str:
    """Turn a pydantic/fal error location into a label a person recognises.

    ('loras', 1, 'scale') -> 'LoRA 2 scale'; ('image_urls', 0) -> 'image 1';
    fal's ('body', 'guidance_scale') -> 'Guidance'.
    """
    parts = [p for p in loc if p != "body"]
    if not parts:
        return "request"
    head, rest = parts[0], parts[1:]
    if head == "loras" and rest and isinstance(rest[0], int):
        tail = field_title(str(rest[1]), LoraWeight).replace("LoRA ", "") if len(rest) > 1 else ""
        return f"LoRA {rest[0] + 1} {tail}".strip()
    if head == "image_urls" and rest and isinstance(rest[0], int):
        return f"image {rest[0] + 1}"
    if head == "image_size" and rest:
        last = rest[-1]
        if last in ImageSize.model_fields:
            return field_title(str(last), ImageSize)
    return field_title(str(head), model)


def _is_union_branch(part: Any) -> bool:
    """pydantic names a union's branch in an error's location; the page does not."""
    return isinstance(part, str) and (part.startswith(("literal[", "function-")) or part == "ImageSize")


def problems_from_validation_error(error: ValidationError, model: type[BaseModel] = EditRequest) -> list[FieldProblem]:
    """pydantic's errors as FieldProblems (one per field, the first reason wins)."""
    problems: dict[str, FieldProblem] = {}
    for item in error.errors(include_url=False):
        raw_loc = tuple(item.get("loc", ()))
        branch = next((p for p in raw_loc[1:2] if isinstance(p, str)), "")
        # A union (image_size) reports every branch: keep the one matching the input's type.
        if branch.startswith("literal[") and isinstance(item.get("input"), dict):
            continue
        if branch == "ImageSize" and not isinstance(item.get("input"), (dict, int, float)) and len(raw_loc) == 2:
            continue
        loc = tuple(p for p in raw_loc if not _is_union_branch(p))
        field = str(loc[0]) if loc else "request"
        label = describe_location(loc, model)
        if label in problems:
            continue
        problems[label] = FieldProblem(field=field, label=label, message=_reason(dict(item)))
    return list(problems.values())


_TYPE_WORDS = {
    "int_parsing": "must be a whole number", "int_type": "must be a whole number",
    "int_from_float": "must be a whole number", "float_parsing": "must be a number",
    "float_type": "must be a number", "bool_parsing": "must be true or false",
    "bool_type": "must be true or false", "string_type": "must be text",
    "list_type": "must be a list", "tuple_type": "must be a list", "model_type": "must be an object",
    "dict_type": "must be an object", "missing": "is required", "extra_forbidden": "is not a known setting",
}
_COMPARISONS = {
    "less_than_equal": "at most", "greater_than_equal": "at least",
    "less_than": "less than", "greater_than": "more than",
}


def _reason(item: dict[str, Any]) -> str:
    """A short reason from a pydantic error item, naming the limit."""
    ctx = item.get("ctx") or {}
    kind = item.get("type", "")
    got = item.get("input")
    if kind in _COMPARISONS:
        limit = next(iter(ctx.values()))
        if isinstance(limit, float) and limit.is_integer():
            limit = int(limit)
        return f"must be {_COMPARISONS[kind]} {limit} (got {got})"
    if kind == "multiple_of":
        return f"must be a multiple of {ctx.get('multiple_of')} (got {got})"
    if kind == "too_long":
        return f"takes at most {ctx.get('max_length')} (got {ctx.get('actual_length')})"
    if kind == "too_short":
        return "is required" if ctx.get("min_length") == 1 else f"needs at least {ctx.get('min_length')}"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters (got {len(got) if isinstance(got, str) else '?'})"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}"
    if kind in _TYPE_WORDS:
        return _TYPE_WORDS[kind]
    msg = str(item.get("msg", "is not valid"))
    return msg.removeprefix("Value error, ").rstrip(".")


def build_request(**fields: Any) -> EditRequest:
    """Validate fields into an EditRequest, raising InvalidInput with field labels."""
    try:
        return EditRequest(**fields)
    except ValidationError as error:
        raise InvalidInput(problems_from_validation_error(error)) from None
