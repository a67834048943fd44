"""The request model: every default, every limit, and the messages people see."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from backend.errors import InvalidInput
from backend.fal import FalOptions, fal_arguments
from backend.request import EditRequest, build_request, field_limits

BASE = {"prompt": "make this donut realistic", "image_urls": ["donut.png"]}


def make(**changes):
    return build_request(**{**BASE, **changes})


def test_defaults_are_fals():
    request = make()
    assert request.guidance_scale == 2.5
    assert request.num_inference_steps == 28
    assert request.num_images == 1
    assert request.loras == ()
    assert request.seed is None
    assert request.image_size is None
    assert request.output_format == "png"
    options = FalOptions()  # fal's own fields, and fal's defaults
    assert options.acceleration == "regular"
    assert options.enable_prompt_expansion is False
    assert options.enable_safety_checker is True
    assert options.sync_mode is False


def test_fal_arguments_omit_unset_seed_and_size():
    args = fal_arguments(make(), FalOptions(), ["https://cdn/x.png"])
    assert args["image_urls"] == ["https://cdn/x.png"]
    assert "seed" not in args and "image_size" not in args
    assert set(args) == {
        "prompt", "image_urls", "loras", "guidance_scale", "num_inference_steps", "num_images",
        "acceleration", "enable_prompt_expansion", "enable_safety_checker", "output_format", "sync_mode",
    }


def test_fal_arguments_carry_loras_size_and_seed():
    request = make(
        loras=[{"path": "owner/style", "scale": 0.7}], seed=42, image_size={"width": 1024, "height": 768},
    )
    args = fal_arguments(request, FalOptions(), ["u"])
    assert args["loras"] == [{"path": "owner/style", "scale": 0.7}]
    assert args["seed"] == 42
    assert args["image_size"] == {"width": 1024, "height": 768}
    assert fal_arguments(make(image_size="landscape_16_9"), FalOptions(), ["u"])["image_size"] == "landscape_16_9"


def test_fal_arguments_carry_the_options_and_are_the_json_fal_always_got():
    request = make(loras=[{"path": "owner/style", "scale": 0.7}], seed=42)
    options = FalOptions(acceleration="high", enable_prompt_expansion=True, enable_safety_checker=False, sync_mode=True)
    args = fal_arguments(request, options, ["u"])
    assert (args["acceleration"], args["enable_prompt_expansion"]) == ("high", True)
    assert (args["enable_safety_checker"], args["sync_mode"]) == (False, True)
    # Byte for byte the JSON sent before fal's options moved out of EditRequest (same keys, same order).
    assert json.dumps(args) == (
        '{"prompt": "make this donut realistic", "image_urls": ["u"], '
        '"loras": [{"path": "owner/style", "scale": 0.7}], "guidance_scale": 2.5, "num_inference_steps": 28, '
        '"num_images": 1, "seed": 42, "acceleration": "high", "enable_prompt_expansion": true, '
        '"enable_safety_checker": false, "output_format": "png", "sync_mode": true}'
    )


def test_request_is_frozen_and_forbids_extra_fields():
    request = make()
    with pytest.raises(ValidationError):
        request.prompt = "other"  # type: ignore[misc]
    with pytest.raises(InvalidInput, match="colour: is not a known setting"):
        make(colour="red")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"guidance_scale": 20.01}, "Guidance: must be at most 20 (got 20.01)"),
        ({"guidance_scale": -0.1}, "Guidance: must be at least 0 (got -0.1)"),
        ({"num_inference_steps": 3}, "Steps: must be at least 4 (got 3)"),
        ({"num_inference_steps": 51}, "Steps: must be at most 50 (got 51)"),
        ({"num_inference_steps": 10.5}, "Steps: must be a whole number"),
        ({"num_images": 0}, "Images: must be at least 1 (got 0)"),
        ({"num_images": 5}, "Images: must be at most 4 (got 5)"),
        ({"seed": -1}, "Seed: must be at least 0 (got -1)"),
        ({"seed": 2**32}, "Seed: must be at most 4294967295"),
        ({"image_size": {"width": 496, "height": 1024}}, "Width: must be at least 512 (got 496)"),
        ({"image_size": {"width": 1024, "height": 2064}}, "Height: must be at most 2048 (got 2064)"),
        ({"image_size": {"width": 1000, "height": 1024}}, "Width: must be a multiple of 16 (got 1000)"),
        ({"image_size": "huge"}, "Size: must be one of 'square_hd'"),
        ({"loras": [{"path": "a", "scale": 4.5}]}, "LoRA 1 scale: must be at most 4 (got 4.5)"),
        ({"loras": [{"path": "a", "scale": -1}]}, "LoRA 1 scale: must be at least 0 (got -1)"),
        ({"loras": [{"path": "a"}, {"path": "   "}]}, "LoRA 2 path: must not be empty"),
        ({"loras": [{"path": "a"}] * 4}, "LoRAs: takes at most 3 (got 4)"),
        ({"prompt": ""}, "Instruction: must not be empty"),
        ({"prompt": "   "}, "Instruction: must not be empty"),
        ({"prompt": "x" * 5001}, "Instruction: must be at most 5000 characters (got 5001)"),
        ({"prompt": "a\x07b"}, "Instruction: must not contain control characters"),
        ({"image_urls": []}, "Reference images: is required"),
        ({"image_urls": ["a"] * 7}, "Reference images: takes at most 6 (got 7)"),
        ({"output_format": "gif"}, "Output format: must be one of 'png', 'jpeg' or 'webp'"),
    ],
)
def test_each_limit_is_named_in_the_message(changes, message):
    with pytest.raises(InvalidInput) as caught:
        make(**changes)
    assert message in caught.value.message
    assert caught.value.problems[0].field == next(iter(changes))


def test_fal_options_name_their_limits_too():
    with pytest.raises(InvalidInput) as caught:
        FalOptions.from_values({"acceleration": "max"})
    assert "Acceleration: must be one of 'none', 'regular' or 'high'" in caught.value.message
    assert caught.value.problems[0].field == "acceleration"


def test_edges_are_accepted():
    make(guidance_scale=0, num_inference_steps=4, num_images=4, seed=0)
    make(guidance_scale=20, num_inference_steps=50, seed=2**32 - 1,
         image_size={"width": 2048, "height": 512}, loras=[{"path": "a", "scale": 4}] * 3)
    assert make(loras=[{"path": "  owner/style  "}]).loras[0].path == "owner/style"


def test_ui_ranges_come_from_the_model():
    assert field_limits("guidance_scale") == {"minimum": 0.0, "maximum": 20.0}
    assert field_limits("num_inference_steps") == {"minimum": 4, "maximum": 50}
    assert field_limits("seed") == {"minimum": 0, "maximum": 2**32 - 1}
    assert EditRequest.model_fields["guidance_scale"].default == 2.5
