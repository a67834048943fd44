"""Settings that come back into the form from outside it (a presets file, a PNG's recipe, a
History card) are checked as the form checks them: a bad one is left as it was and named, the
good ones still arrive, and nothing reaches a component that would show a red "Error"."""

from __future__ import annotations

import gradio as gr
import pytest

from backend.request import build_request
from ui import png_restore
from ui import presets as presets_lib
from ui.form import PRESET_FIELDS, RESTORED_FIELDS, SKIP, PageSetup
from ui.restored_values import checked, restore_checked

SETUP = PageSetup(backends=("fal",), default_backend="fal", needs_visitor_key=False, models=("owner/model",),
                  default_model="owner/model", default_memory="gpu")
HAND_EDITED = {"guidance_scale": "high", "num_inference_steps": 1000, "loras": "not a list", "size": "gigantic",
               "width": "1000", "height": -3, "acceleration": "warp", "output_format": "gif",
               "enable_safety_checker": False, "speed": "fast"}


def a_recipe(**request_changes) -> dict:
    request = build_request(prompt="make it a watercolor", image_urls=["red.png"], guidance_scale=4.5,
                            num_inference_steps=20).model_dump(mode="json")
    return {"request": {**request, **request_changes}, "options": {}, "seed": 42, "backend": "fal"}


def test_a_hand_edited_preset_loads_its_good_settings_and_names_the_bad_ones():
    with pytest.warns(UserWarning) as warned:
        *values, version = presets_lib.load_preset({"mine": HAND_EDITED}, "mine", 2, setup=SETUP)
    by_name = dict(zip(PRESET_FIELDS, values))
    assert version == 3
    assert by_name["enable_safety_checker"] is False and by_name["speed"] == "fast"
    for name in ("guidance_scale", "num_inference_steps", "loras", "size", "width", "height", "acceleration",
                 "output_format"):
        assert by_name[name] == gr.skip(), name
    said = str(warned[0].message)
    for named in ("Preset 'mine'", "Guidance: must be a number", "Steps: must be at most 50 (got 1000)",
                  "LoRAs: must be a list", "Size: must be one of", "Width: must be a multiple of 16 (got 1000)",
                  "Height: must be from 512 to 2048 (got -3)",
                  "Acceleration: must be one of", "Output format: must be one of"):
        assert named in said, named


def test_a_preset_saved_by_an_older_studio_loads_without_a_warning(recwarn):
    old = {"guidance_scale": 3, "num_inference_steps": 20.0, "loras": [{"path": "owner/style", "scale": "0.5"}]}
    *values, _version = presets_lib.load_preset({"old": old}, "old", 0, setup=SETUP)
    by_name = dict(zip(PRESET_FIELDS, values))
    assert by_name["guidance_scale"] == 3.0 and by_name["num_inference_steps"] == 20
    assert by_name["loras"] == [{"path": "owner/style", "scale": 0.5, "enabled": True}]
    assert by_name["size"] == gr.skip()  # not in the preset: left as it is
    assert not recwarn.list


def test_loras_past_the_limits_are_left_out_or_switched_off_with_a_note():
    rows = [{"path": f"owner/style-{i}", "scale": 1.0} for i in range(4)]
    values, notes = restore_checked(a_recipe(loras=rows), SETUP)
    assert [row["enabled"] for row in values["loras"]] == [True, True, True, False]
    assert notes == ["LoRAs: only 3 can be on at once: the others were switched off"]
    values, notes = restore_checked(a_recipe(loras=[{"path": "owner/a", "scale": 1}, {"path": "owner/b", "scale": 9}]),
                                    SETUP)
    assert values["loras"] is SKIP and notes == ["LoRA 2 scale: must be at most 4 (got 9)"]
    values, notes = checked({"loras": [{"path": "owner/a", "enabled": "false"}]}, SETUP)
    assert values["loras"] is SKIP and notes == ["LoRA 1 on: must be true or false"]  # not switched on by bool("false")


def test_a_png_recipe_with_bad_values_applies_the_rest_and_says_what_it_left():
    recipe = a_recipe(guidance_scale=1e9, prompt=["not", "text"], loras=[{"scale": 0.5}])
    recipe["seed"] = -5
    with pytest.warns(UserWarning, match="Guidance: must be at most 20"):
        *values, version, status = png_restore.apply_png(recipe, 0, SETUP)
    by_name = dict(zip(RESTORED_FIELDS, values))
    assert by_name["num_inference_steps"] == 20 and by_name["guidance_scale"] == gr.skip()
    assert by_name["prompt"] == gr.skip() and by_name["loras"] == [{"path": "", "scale": 0.5, "enabled": True}]
    assert by_name["seed"] == gr.skip() and by_name["randomize_seed"] is True  # no usable seed: a random one
    assert "Instruction: must be text" in status and "Seed: must be a whole number from 0 to" in status
    assert "(a random seed)" in status and "-5" not in status.split("⚠️")[0]


def test_a_recipe_that_is_not_one_changes_nothing_and_says_so():
    for broken in ([1, 2], {"request": "x"}, {"request": {"image_size": {"width": 1024}}, "backend": "fal"}):
        values, notes = restore_checked(broken, SETUP)
        assert notes, broken
    values, notes = restore_checked([1, 2], SETUP)
    assert all(value is SKIP for value in values.values())
    assert notes == ["the saved settings could not be read"]
    values, notes = restore_checked({"request": {"image_size": {"width": 1024}}, "backend": "fal"}, SETUP)
    assert values["width"] == 1024 and values["size"] == "custom" and "Height: could not be read" in notes


def test_a_speed_this_server_cannot_run_is_left_as_it_was_with_the_reason():
    cpu_only = PageSetup(**{**SETUP.__dict__, "unavailable_speeds": ("fast", "fastest")})
    values, notes = restore_checked({**a_recipe(), "backend": "local", "options": {"speed": "fastest"}}, cpu_only)
    assert values["speed"] is SKIP  # the form keeps the speed it had
    assert notes == ["Speed: fastest cannot run on this server (the Speed setting says why)"]
    assert restore_checked({**a_recipe(), "backend": "local", "options": {"speed": "quality"}}, cpu_only)[0][
        "speed"] == "quality"


def test_a_preset_that_is_not_a_set_of_settings_loads_nothing_and_says_so():
    with pytest.warns(UserWarning, match="Preset 'odd' could not be read"):
        loaded = presets_lib.load_preset({"odd": [1, 2]}, "odd", 0, setup=SETUP)
    assert all(value == gr.skip() for value in loaded)


def test_a_presets_name_with_markup_is_shown_as_text():
    crafted = "<img src=https://evil.example/t.png>"
    with pytest.warns(UserWarning) as warned:
        presets_lib.load_preset({crafted: {"guidance_scale": "high"}}, crafted, 0, setup=SETUP)
    said = str(warned[0].message)
    assert "&lt;img src=https://evil.example/t.png&gt;" in said and "<img" not in said
