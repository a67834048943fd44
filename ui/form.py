"""The form spec: every field of the page declared once, in the order of the API's
arguments.

A `FormField` says how its component is made (labels, limits and help texts come
from the model that owns the field: `EditRequest`, `FalOptions` or `LocalOptions`),
who uses it (`owner`), how it is described to API and MCP callers, whether presets
keep it and how a recipe gives it back. The layout places the components, the
events pass them in this order, the `edit` and `sweep` API functions get their
signature and docs from here, and `request_from_values` / `Backend.options` read the
values by name. Adding a field that goes straight into the request or a backend's
options is one entry here plus its handling in the backend that uses it.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import gradio as gr
from pydantic import BaseModel

from backend.fal.options import FalOptions
from backend.local.options import LocalOptions
from backend.region import DEFAULT_FEATHER, MAX_FEATHER
from backend.request import (
    MAX_ACTIVE_LORAS,
    MAX_PROMPT_CHARS,
    PRESET_SIZES,
    EditRequest,
    ImageSize,
    LoraWeight,
    field_limits,
)
from backend.settings import MEMORY_MODES
from ui import components
from ui.components import ReferenceImage, show_number

Owner = Literal["request", "fal", "local", "page"]
#: the model that declares each owner's fields (labels, limits, defaults)
OWNER_MODELS: dict[str, type[BaseModel]] = {"request": EditRequest, "fal": FalOptions, "local": LocalOptions}
BACKEND_LABELS = {"fal": "fal (hosted)", "local": "this machine's GPU (local)"}
MATCH_FIRST, CUSTOM = "match", "custom"
SIZE_CHOICES = [("Match image 1", MATCH_FIRST)] + [
    (f"{name} ({w}×{h})", name) for name, (w, h) in PRESET_SIZES.items()
] + [("Custom", CUSTOM)]
REQUIRED = inspect.Parameter.empty
SKIP = object()  # a restore that leaves the field as it is


@dataclass(frozen=True)
class PageSetup:
    """What the operator's settings decide about the page."""

    backends: tuple[str, ...]
    default_backend: str
    needs_visitor_key: bool
    models: tuple[str, ...]
    default_model: str
    default_memory: str
    max_references: Mapping[str, int] = field(default_factory=dict)
    require_login: bool = False  # the server's key only for visitors signed in with Hugging Face
    show_login: bool = False  # the page has a "Sign in with Hugging Face" button
    default_speed: str = "quality"  # STUDIO_SPEED
    speed_note: str = ""  # which speed presets this server runs, and why not the others (backend/local/speed.py)
    unavailable_speeds: tuple[str, ...] = ()  # shown disabled (assets/page.js); a run asking for one is refused

    @property
    def local_first(self) -> bool:
        return self.default_backend == "local"


@dataclass(frozen=True)
class FormField:
    name: str  # the API argument, and the key of the field's value
    owner: Owner  # who uses the value; "page": the page itself (key, backend, seed mode)
    doc: str  # the API / MCP description
    build: Callable[[PageSetup], gr.components.Component] | None  # None: the layout builds it
    # The API default; REQUIRED: the owning model's default for a straight field, else none.
    default: Callable[[PageSetup], Any] | Any = REQUIRED
    preset: bool = False  # kept by presets
    straight: bool = True  # the value goes into its owner's model under this name as it is
    restore: Callable[[dict[str, Any], PageSetup], Any] | None = None  # from a recipe; None: by name
    restorable: bool = True  # False: a recipe never sets it (images, the key)

    @property
    def model(self) -> type[BaseModel] | None:
        return OWNER_MODELS.get(self.owner)

    def api_default(self, setup: PageSetup) -> Any:
        if callable(self.default) and self.default is not REQUIRED:
            return self.default(setup)
        if self.default is REQUIRED and self.straight and self.model is not None:
            info = self.model.model_fields.get(self.name)
            if info is not None and not info.is_required():
                return info.default  # the model's own default
        return self.default

    def restored(self, recipe: dict[str, Any], setup: PageSetup) -> Any:
        """This field's value from a recipe, or SKIP."""
        if self.restore is not None:
            return self.restore(recipe, setup)
        if self.owner == "request":
            return recipe["request"].get(self.name, SKIP)
        if self.owner in ("fal", "local") and recipe.get("backend") == self.owner:
            # Older recipes kept fal's options inside the request.
            options = recipe.get("options") or recipe["request"]
            return options.get(self.name, SKIP)
        return SKIP


# -- components from the model's Fields ----------------------------------------------------


def _info(model: type[BaseModel], name: str) -> Any:
    return model.model_fields[name]


def _slider(model: type[BaseModel], name: str, step: float, value: Any = None, **kwargs: Any) -> Callable:
    def build(setup: PageSetup) -> gr.Slider:
        info, limits = _info(model, name), field_limits(name, model)
        return components.Slider(
            minimum=limits["minimum"], maximum=limits["maximum"], step=step,
            value=info.default if value is None else value, label=info.title, info=info.description, **kwargs,
        )
    return build


def _choices(model: type[BaseModel], name: str) -> list[str]:
    return list(typing.get_args(_info(model, name).annotation))


def _radio(model: type[BaseModel], name: str) -> Callable:
    def build(setup: PageSetup) -> gr.Radio:
        info = _info(model, name)
        return components.Radio(_choices(model, name), value=info.default, label=info.title, info=info.description)
    return build


def _checkbox(model: type[BaseModel], name: str) -> Callable:
    def build(setup: PageSetup) -> gr.Checkbox:
        info = _info(model, name)
        return gr.Checkbox(value=info.default, label=info.title, info=info.description)
    return build


def _reference(index: int) -> Callable:
    def build(setup: PageSetup) -> ReferenceImage:
        # 164 px: low enough for a laptop's first screen to reach the examples; Gradio squeezes the
        # slot's "Drop Image Here - or - Click to Upload" into one cut-off line at 160 px or less.
        return ReferenceImage(
            label=f"image {index}", type="filepath", image_mode=None, sources=["upload", "clipboard"],
            height=164, min_width=120, elem_id=f"reference-{index}", buttons=["fullscreen"],
        )
    return build


def _prompt(setup: PageSetup) -> gr.Textbox:
    info = _info(EditRequest, "prompt")
    # Its class carries the request model's limit to page.js, which counts the characters as
    # they are typed once they near it (a long paste was only refused at Run).
    return gr.Textbox(label=info.title, info=info.description, lines=3, placeholder="Type what to change here…",
                      elem_id="prompt", elem_classes=[f"max-chars-{MAX_PROMPT_CHARS}"])


def _size(setup: PageSetup) -> gr.Dropdown:
    return components.Dropdown(choices=SIZE_CHOICES, value=MATCH_FIRST, label=_info(EditRequest, "image_size").title,
                               info="Match the first image, a preset, or a custom width and height.")


def _seed(setup: PageSetup) -> gr.Number:
    info = _info(EditRequest, "seed")
    # Not the schema's "None = random": on the page, Random seed says that (ui/wiring.py unticks it
    # when a seed is typed).
    return components.Number(label=info.title, value=0, precision=0, minimum=0,
                             maximum=field_limits("seed")["maximum"], elem_id="seed",
                             info="The same seed and inputs give the same image; typing one unticks Random seed.")


def _backend(setup: PageSetup) -> gr.Radio:
    return components.Radio([(BACKEND_LABELS[name], name) for name in setup.backends], value=setup.default_backend,
                            label="Backend", visible=len(setup.backends) > 1, elem_id="backend")


def _fal_key(setup: PageSetup) -> gr.Textbox:
    # Hidden: the API's argument, and on the page only its place in the events' inputs: their
    # `js` puts the key the page holds there as they are sent (ui/key_box.py says why).
    return gr.Textbox(value="", label="fal API key", type="password", visible=False, elem_id="fal-key-value")


def _model(setup: PageSetup) -> gr.Dropdown:
    # Custom values reach the backend, which accepts another spelling of an offered
    # folder and refuses everything else, naming what it offers.
    return components.Dropdown(
        list(setup.models), value=setup.default_model, label=_info(LocalOptions, "model").title,
        info="The models this server offers (set by its operator). Loaded at the next run.",
        allow_custom_value=True, elem_id="local-model",
    )


def _memory(setup: PageSetup) -> gr.Dropdown:
    return components.Dropdown([(text, name) for name, text in MEMORY_MODES.items()], value=setup.default_memory,
                               label=_info(LocalOptions, "memory").title, elem_id="local-memory")


def _speed(setup: PageSetup) -> gr.Radio:
    info = _info(LocalOptions, "speed")
    return components.Radio(_choices(LocalOptions, "speed"), value=setup.default_speed, label=info.title,
                            info=f"{info.description} {setup.speed_note}".strip(), elem_id="local-speed",
                            elem_classes=[f"unavailable-{speed}" for speed in setup.unavailable_speeds])


# -- restoring from a recipe ----------------------------------------------------------------


def _restore_loras(recipe: dict[str, Any], setup: PageSetup) -> Any:
    return recipe["request"].get("loras") or []  # [{path, scale}]: checked as the editor's rows (ui/restored_values.py)


def _restore_size(part: str) -> Callable[[dict[str, Any], PageSetup], Any]:
    def restore(recipe: dict[str, Any], setup: PageSetup) -> Any:
        size = recipe["request"].get("image_size")
        if part == "size":
            return CUSTOM if isinstance(size, dict) else size or MATCH_FIRST
        return size[part] if isinstance(size, dict) else SKIP
    return restore


def _recipe_seed(recipe: dict[str, Any]) -> int | None:
    """The recipe's seed when it is one (a whole number); a PNG can carry anything."""
    seed = recipe.get("seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def _restore_backend(recipe: dict[str, Any], setup: PageSetup) -> Any:
    return recipe.get("backend") if recipe.get("backend") in setup.backends else SKIP


def _restore_model(recipe: dict[str, Any], setup: PageSetup) -> Any:
    model = (recipe.get("options") or {}).get("model") if recipe.get("backend") == "local" else None
    return model if model in setup.models else SKIP


# -- the fields, in the API's argument order -------------------------------------------------


def _range(name: str, model: type[BaseModel] = EditRequest) -> str:
    limits = field_limits(name, model)
    return f"{show_number(limits['minimum'])}-{show_number(limits['maximum'])}"


def _default(name: str, model: type[BaseModel] = EditRequest) -> str:
    return f"{model.model_fields[name].default:g}"


def _mask(setup: PageSetup) -> gr.Image:
    # The page paints in an editor (ui/region_editor.py), which writes its strokes here.
    return gr.Image(type="filepath", image_mode="L", visible=False, label="Mask", elem_id="mask")


def _feather(setup: PageSetup) -> gr.Slider:
    return components.Slider(minimum=0, maximum=MAX_FEATHER, step=1, value=DEFAULT_FEATHER, label="Feather (px)",
                             info="Over how many pixels the edit fades out beyond the painted area.",
                             elem_id="mask-feather")


def _image_field(index: int) -> FormField:
    ordinal = ["first", "second", "third", "fourth", "fifth", "sixth"][index - 1]
    if index == 1:
        doc = "first reference image (required): a file upload, an https URL or a data URL."
    else:
        doc = f"optional {ordinal} reference image" + (" (local backend only)." if index > 3 else ".")
    # References are not in recipes (only their names); History gives them back itself.
    return FormField(f"image_{index}", "request", doc, _reference(index), default=REQUIRED if index == 1 else None,
                     straight=False, restorable=False)


FORM: tuple[FormField, ...] = (
    FormField("prompt", "request", f'the edit instruction, e.g. "make this donut realistic" (1-{MAX_PROMPT_CHARS} '
              "characters).", _prompt),
    *(_image_field(i) for i in (1, 2, 3)),
    FormField("loras", "request", (
        f'list of {{"path": https URL to a .safetensors or Hugging Face repo id (a file in the LoRA folder '
        f'locally), "scale": {_range("scale", LoraWeight)}, "enabled": true or false}}; at most '
        f"{MAX_ACTIVE_LORAS} enabled."), None, default=None, preset=True, straight=False, restore=_restore_loras),
    FormField("guidance_scale", "request", f"how closely to follow the instruction, {_range('guidance_scale')}, "
              f"default {_default('guidance_scale')}.", _slider(EditRequest, "guidance_scale", 0.1), preset=True),
    FormField("num_inference_steps", "request", f"{_range('num_inference_steps')}, default "
              f"{_default('num_inference_steps')}.", _slider(EditRequest, "num_inference_steps", 1), preset=True),
    FormField("size", "request", f'"match" (the size of image 1), a preset ({", ".join(PRESET_SIZES)}) or "custom" '
              "(width and height).", _size, default=MATCH_FIRST, preset=True, straight=False,
              restore=_restore_size("size")),
    FormField("width", "request", f"custom width in pixels, {_range('width', ImageSize)}, a multiple of 16 (size "
              '"custom").', _slider(ImageSize, "width", 16, value=1024), default=1024, preset=True, straight=False,
              restore=_restore_size("width")),
    FormField("height", "request", f"custom height in pixels, {_range('height', ImageSize)}, a multiple of 16 (size "
              '"custom").', _slider(ImageSize, "height", 16, value=1024), default=1024, preset=True, straight=False,
              restore=_restore_size("height")),
    FormField("seed", "request", f"the seed, {_range('seed')}, used when randomize_seed is false; image k uses "
              "seed + k - 1.", _seed, default=0, straight=False,
              restore=lambda recipe, setup: SKIP if _recipe_seed(recipe) is None else _recipe_seed(recipe)),
    FormField("randomize_seed", "page", "pick a random seed (the seed used is returned).",
              lambda setup: gr.Checkbox(label="Random seed", value=True), default=True,
              restore=lambda recipe, setup: _recipe_seed(recipe) is None),
    FormField("num_images", "request", f"how many images, {_range('num_images')}.",
              _slider(EditRequest, "num_images", 1),
              restore=lambda recipe, setup: 1),  # the recipe remakes this one image
    FormField("acceleration", "fal", "fal only: none, regular or high (faster, slightly lower quality).",
              _radio(FalOptions, "acceleration"), preset=True),
    FormField("enable_prompt_expansion", "fal", "fal only: let fal rewrite the instruction before the edit.",
              _checkbox(FalOptions, "enable_prompt_expansion"), preset=True),
    FormField("enable_safety_checker", "fal", "fal only: flag NSFW results.",
              _checkbox(FalOptions, "enable_safety_checker"), preset=True),
    FormField("output_format", "request", "png, jpeg or webp.", _radio(EditRequest, "output_format"), preset=True),
    FormField("sync_mode", "fal", "fal only: images come back inline and are not kept in fal's request history.",
              _checkbox(FalOptions, "sync_mode"), preset=True),
    FormField("fal_key", "page", "your own fal key, used for this run only, when the server has none (never stored "
              "or logged).", _fal_key, default="", restorable=False),
    FormField("backend", "page", '"fal" or "local": the backends this server offers are listed in the schema.',
              _backend, default=lambda setup: setup.default_backend, restore=_restore_backend),
    *(_image_field(i) for i in (4, 5, 6)),
    FormField("model", "local", "local backend: one of the models this server offers (its operator's list).",
              _model, default=lambda setup: setup.default_model, restore=_restore_model),
    FormField("memory", "local", "local backend: gpu, model_offload or group_offload.", _memory,
              default=lambda setup: setup.default_memory),
    FormField("speed", "local", "local backend: quality, fast (fp8) or fastest (fp8 and a step cache); a preset "
              "this server cannot run is refused with the reason.", _speed,
              default=lambda setup: setup.default_speed, preset=True),
    FormField("mask", "page", "optional: a mask image for image 1 (white = change, black = keep; scaled to image "
              "1): only the painted area is edited, and outside it (beyond mask_feather pixels) the result is "
              "image 1 pixel for pixel, at image 1's size.", _mask, default=None, restorable=False),
    FormField("mask_feather", "page", f"with a mask: over how many pixels (0-{MAX_FEATHER}) the edit fades out "
              "beyond the painted area.", _feather, default=DEFAULT_FEATHER,
              restore=lambda recipe, setup: (recipe.get("region") or {}).get("feather", SKIP)),
    FormField("mask_invert", "page", "with a mask: edit everything but the painted area.",
              lambda setup: gr.Checkbox(label="Invert: edit everything but the painted area", value=False,
                                        elem_id="mask-invert"), default=False, restorable=False),
)
FIELDS: dict[str, FormField] = {f.name: f for f in FORM}
NAMES: tuple[str, ...] = tuple(FIELDS)
PRESET_FIELDS: tuple[str, ...] = tuple(f.name for f in FORM if f.preset)
RESTORED_FIELDS: tuple[str, ...] = tuple(f.name for f in FORM if f.restorable)
IMAGE_FIELDS: tuple[str, ...] = tuple(f.name for f in FORM if f.name.startswith("image_"))


def options_fields(owner: str) -> tuple[str, ...]:
    """The form fields a backend's options model takes (the page disables them for the others)."""
    return tuple(f.name for f in FORM if f.owner == owner)


def values_of(args: Sequence[Any]) -> dict[str, Any]:
    """The form's values by name, from the event's positional arguments (FORM order)."""
    return dict(zip(NAMES, args))


#: What Gradio passes by itself, by the parameter's type (`__annotations__`): the signed-in
#: Hugging Face user (None when not signed in) and the request (the client's address). Never
#: in the API docs or the MCP schema; in `values` under these names (ui/spending_view.py).
INJECTED: tuple[tuple[str, Any], ...] = (("profile", gr.OAuthProfile | None), ("request", gr.Request))


def api_function(
    name: str, body: Callable[..., Any], setup: PageSetup, doc: str,
    extra: Sequence[tuple[str, Any]] = (),
) -> Callable[..., Any]:
    """A generator function taking the form's fields (then `extra` (name, default)
    pairs) as named arguments, for Gradio to document and call: it passes them on as
    one dict to `body(values)`, with the INJECTED values. Gradio reads `__signature__`,
    `__annotations__` and `__doc__`."""

    def api(*args: Any, **kwargs: Any) -> Any:
        bound = api.__signature__.bind(*args, **kwargs)  # type: ignore[attr-defined]
        bound.apply_defaults()
        yield from body(dict(bound.arguments))

    parameters = [
        inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=f.api_default(setup))
        for f in FORM
    ] + [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=d) for n, d in extra] + [
        inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None) for n, _ in INJECTED
    ]
    api.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    api.__annotations__ = dict(INJECTED)  # how Gradio recognises them
    api.__name__ = api.__qualname__ = name
    api.__doc__ = doc
    return api


def args_doc(extra: Mapping[str, str] = {}) -> str:
    """The `Args:` lines of the API docs: one per form field, then `extra`."""
    lines = {f.name: f.doc for f in FORM} | dict(extra)
    return "\n".join(f"    {name}: {text}" for name, text in lines.items())
