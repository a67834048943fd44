"""The API's argument descriptions, built from the request model (its limits and
defaults), so the `/edit` and `/sweep` docs, the MCP tools' schemas and the
validation never disagree. Gradio reads them from the functions' docstrings."""

from __future__ import annotations

from backend.request import (
    MAX_ACTIVE_LORAS, MAX_PROMPT_CHARS, EditRequest, ImageSize, LoraWeight, PRESET_SIZES, field_limits,
)
from ui.components import show_number


def _range(name: str, model=EditRequest) -> str:
    limits = field_limits(name, model)
    return f"{show_number(limits['minimum'])}-{show_number(limits['maximum'])}"


def _default(name: str) -> str:
    return f"{EditRequest.model_fields[name].default:g}"


def edit_args_doc() -> str:
    """The `Args:` lines every run endpoint shares, one per parameter of `edit`."""
    presets = ", ".join(PRESET_SIZES)
    lines = {
        "prompt": f'the edit instruction, e.g. "make this donut realistic" (1-{MAX_PROMPT_CHARS} characters).',
        "image_1": "first reference image (required): a file upload, an https URL or a data URL.",
        "image_2": "optional second reference image.",
        "image_3": "optional third reference image.",
        "loras": (
            f'list of {{"path": https URL to a .safetensors or Hugging Face repo id (a file in the LoRA folder '
            f'locally), "scale": {_range("scale", LoraWeight)}, "enabled": true or false}}; at most '
            f"{MAX_ACTIVE_LORAS} enabled."
        ),
        "guidance_scale": f"how closely to follow the instruction, {_range('guidance_scale')}, "
                          f"default {_default('guidance_scale')}.",
        "num_inference_steps": f"{_range('num_inference_steps')}, default {_default('num_inference_steps')}.",
        "size": f'"match" (the size of image 1), a preset ({presets}) or "custom" (width and height).',
        "width": f"custom width in pixels, {_range('width', ImageSize)}, a multiple of 16 (size \"custom\").",
        "height": f"custom height in pixels, {_range('height', ImageSize)}, a multiple of 16 (size \"custom\").",
        "seed": f"the seed, {_range('seed')}, used when randomize_seed is false; image k uses seed + k - 1.",
        "randomize_seed": "pick a random seed (the seed used is returned).",
        "num_images": f"how many images, {_range('num_images')}.",
        "acceleration": "fal only: none, regular or high (faster, slightly lower quality).",
        "enable_prompt_expansion": "fal only: let fal rewrite the instruction before the edit.",
        "enable_safety_checker": "fal only: flag NSFW results.",
        "output_format": "png, jpeg or webp.",
        "sync_mode": "fal only: images come back inline and are not kept in fal's request history.",
        "fal_key": "your own fal key, used for this run only, when the server has none (never stored or logged).",
        "backend": '"fal" or "local": the backends this server offers are listed in the schema.',
        "image_4": "optional fourth reference image (local backend only).",
        "image_5": "optional fifth reference image (local backend only).",
        "image_6": "optional sixth reference image (local backend only).",
        "model": "local backend: a Hugging Face repo id or a folder with the FLUX.2 [dev] pipeline.",
        "memory": "local backend: gpu, model_offload or group_offload.",
    }
    return "\n".join(f"    {name}: {text}" for name, text in lines.items())


EDIT_DOC = f"""Edit reference images (1-3 on fal, 1-6 locally) with FLUX.2 [dev] and up to {MAX_ACTIVE_LORAS} LoRAs.

Args:
{edit_args_doc()}
Returns:
    the result images, a status line, the run's log lines, a summary (seed, timings, safety flags, where
    it was saved) and the seed used.
"""

SWEEP_DOC = f"""Run a grid of edits that vary one or two settings (at most 16 cells, one image each).

Args:
{edit_args_doc()}
    x_axis: the setting to vary: seed, guidance_scale, num_inference_steps, lora1_scale, lora2_scale or lora3_scale.
    x_values: its values, comma-separated, e.g. "0.4, 0.7, 1.0".
    y_axis: a second setting to vary, or "" for none.
    y_values: its values, comma-separated.
Returns:
    the cells as they finish (captioned with their values), a status line, the labelled grid image and a zip
    of the cells and the grid.
"""
