"""The form spec (ui/form.py) is the one place a form field is declared: the request,
the backends' options, the API's signature, presets and recipe restore all follow it."""

from __future__ import annotations

import inspect

import pytest
from gradio import utils as gradio_utils

from backend.errors import InvalidInput
from backend.fal import FalBackend, FalOptions
from backend.local.options import LocalOptions
from backend.request import EditRequest
from ui import form
from ui.restored_values import restore_checked
from ui.run import plan_run, request_from_values

SETUP = form.PageSetup(backends=("fal",), default_backend="fal", needs_visitor_key=False,
                       models=("owner/model",), default_model="owner/model", default_memory="gpu")
# The request's fields the page spells differently: images, size and seed come from several fields.
DERIVED = {"image_urls", "image_size", "seed"}
FAL = {"fal": FalBackend(server_key="server-key")}


def _default(field: form.FormField):
    """What the page starts with: the API default, else the owning model's default."""
    default = field.api_default(SETUP)
    if default is form.REQUIRED and field.model is not None and field.name in field.model.model_fields:
        default = field.model.model_fields[field.name].default
    return default


def values(**overrides):
    base = {name: _default(form.FIELDS[name]) for name in form.NAMES}
    base.update(prompt="make it blue", image_1="https://example.com/a.png", image_2=None, image_3=None,
                loras=[], size="match", width=1024, height=1024, seed=0, fal_key="")
    return base | overrides


def test_every_field_of_the_request_and_the_options_has_one_form_field():
    for owner, model in form.OWNER_MODELS.items():
        declared = {f.name for f in form.FORM if f.owner == owner}
        missing = set(model.model_fields) - declared - (DERIVED if model is EditRequest else set())
        # The preview cadence is the operator's setting (STUDIO_PREVIEW_DECODE_EVERY), not a form field.
        missing -= {"preview_decode_every"} if model is LocalOptions else set()
        assert not missing, f"{owner} fields without a form field: {missing}"
    assert len(form.NAMES) == len(set(form.NAMES))


def test_the_api_functions_take_the_form_fields_in_order_then_their_own():
    seen = []
    edit = form.api_function("edit", lambda v: iter([seen.append(v)]), SETUP, "doc",
                             extra=[("x_axis", "seed")])
    # Then what Gradio fills itself (by type), which the API docs and MCP schema leave out.
    assert list(inspect.signature(edit).parameters) == [*form.NAMES, "x_axis", "profile", "request"]
    assert [name for name, *_ in gradio_utils.get_function_params(edit)] == [*form.NAMES, "x_axis"]
    assert inspect.isgeneratorfunction(edit) and edit.__doc__ == "doc"
    list(edit(*[values()[n] for n in form.NAMES]))
    assert seen[0]["prompt"] == "make it blue" and seen[0]["x_axis"] == "seed"
    assert seen[0]["backend"] == "fal" and seen[0]["model"] == "owner/model"


def test_a_new_fal_option_reaches_fal_from_its_spec_entry_alone():
    # Fields that go "straight" are read by name: the request from request_from_values, the
    # options from the backend's options model. Nothing else lists them.
    plan = plan_run(values(sync_mode=True, acceleration="high", guidance_scale=7.0), FAL)
    assert plan.options == FalOptions(sync_mode=True, acceleration="high")
    assert plan.request.guidance_scale == 7.0


def test_every_problem_is_named_at_once_request_and_options_together():
    with pytest.raises(InvalidInput) as caught:
        plan_run(values(prompt="", acceleration="max", num_inference_steps=60), FAL)
    labels = {p.label for p in caught.value.problems}
    assert {"Instruction", "Steps", "Acceleration"} <= labels


def test_a_pasted_key_loses_its_spaces_and_one_that_cannot_be_a_key_is_refused_naming_the_field():
    """A key pasted with a space or a line break around it runs (fal would refuse it as it
    came); one too long or with characters a key never has is refused before anything is
    sent, naming the field and the limit, never the key."""
    assert plan_run(values(fal_key="  abc-1:def2\n"), FAL).key == "abc-1:def2"
    assert plan_run(values(fal_key="   "), FAL).key is None  # none given: the server's key
    for key, said in (("abc:" + "d" * 300, "at most 256 characters (got 304)"),
                      ("abc: def", "printable characters, no spaces or line breaks"),
                      ("abc:dé", "printable characters")):
        with pytest.raises(InvalidInput) as caught:
            plan_run(values(fal_key=key, prompt=""), FAL)
        problems = {p.field: str(p) for p in caught.value.problems}
        assert said in problems["fal_key"] and problems["fal_key"].startswith("Your fal API key")
        assert "prompt" in problems  # named with the form's other problems
        assert key not in str(caught.value) and "def" not in problems["fal_key"]


def test_without_a_key_on_a_keyless_server_the_key_is_named_with_the_forms_other_problems():
    """A visitor who presses Run with nothing filled in on a server without a key learns at
    once all there is to fill in: the image, the instruction and the key (not the key only once
    the rest is right); a space-only key is none; a visitor's key or the server's will do."""
    keyless = {"fal": FalBackend()}
    with pytest.raises(InvalidInput) as caught:
        plan_run(values(prompt="", image_1=None, fal_key="  "), keyless)
    assert [p.field for p in caught.value.problems] == ["image_urls", "prompt", "fal_key"]
    said = str(caught.value.problems[-1])
    assert said.startswith("Your fal API key: none given") and "fal.ai" in said
    with pytest.raises(InvalidInput) as caught:
        plan_run(values(), keyless)  # the form is right: the key alone
    assert [p.field for p in caught.value.problems] == ["fal_key"]
    assert plan_run(values(fal_key="abc:def"), keyless).key == "abc:def"
    assert plan_run(values(), FAL).key is None  # the server's key will do


def test_size_seed_and_images_are_spelled_differently_on_the_page():
    request = request_from_values(values(size="custom", width=768, height=512, seed=5, randomize_seed=False,
                                         image_2="https://example.com/b.png"))
    assert request.image_size.width == 768 and request.image_size.height == 512
    assert request.seed == 5 and request.image_urls == ("https://example.com/a.png", "https://example.com/b.png")
    assert request_from_values(values(seed=5, randomize_seed=True)).seed is None


def test_a_recipe_restores_every_restorable_field_and_nothing_else():
    recipe = {
        "backend": "fal", "seed": 9,
        "request": {"prompt": "p", "loras": [{"path": "a/b", "scale": 0.5}], "guidance_scale": 3.0,
                    "num_inference_steps": 20, "image_size": {"width": 640, "height": 512}, "num_images": 2,
                    "output_format": "webp"},
        "options": {"acceleration": "none", "enable_prompt_expansion": True, "enable_safety_checker": False,
                    "sync_mode": True},
    }
    restored, _notes = restore_checked(recipe, SETUP)
    assert set(restored) == set(form.RESTORED_FIELDS)
    assert "fal_key" not in restored and not any(name.startswith("image_") for name in restored)
    assert restored["loras"] == [{"path": "a/b", "scale": 0.5, "enabled": True}]
    assert (restored["size"], restored["width"], restored["height"]) == ("custom", 640, 512)
    assert restored["seed"] == 9 and restored["randomize_seed"] is False and restored["num_images"] == 1
    assert restored["acceleration"] == "none" and restored["sync_mode"] is True
    assert restored["output_format"] == "webp" and restored["backend"] == "fal"
    # A model is restored only for a local recipe, and only one the server offers.
    assert restored["model"] is form.SKIP


def test_an_older_recipe_with_fal_fields_in_the_request_still_restores_them():
    recipe = {"backend": "fal", "seed": None,
              "request": {"prompt": "p", "guidance_scale": 2.5, "num_inference_steps": 28, "sync_mode": True,
                          "acceleration": "high"}}
    restored, _notes = restore_checked(recipe, SETUP)
    assert restored["sync_mode"] is True and restored["acceleration"] == "high"
    assert restored["seed"] is form.SKIP and restored["randomize_seed"] is True


def test_a_local_recipe_restores_its_model_when_offered():
    recipe = {"backend": "local", "seed": 1, "request": {"prompt": "p"},
              "options": {"model": "owner/model", "memory": "model_offload", "preview_decode_every": 4}}
    offered = form.PageSetup(("fal", "local"), "fal", False, ("owner/model",), "owner/model", "gpu")
    restored, _notes = restore_checked(recipe, offered)
    assert restored["model"] == "owner/model" and restored["memory"] == "model_offload"
    assert restored["backend"] == "local"
    assert restored["sync_mode"] is form.SKIP  # a local recipe has no fal options
    elsewhere, _notes = restore_checked({**recipe, "options": {**recipe["options"], "model": "other/model"}}, offered)
    assert elsewhere["model"] is form.SKIP


def test_presets_keep_the_loras_and_settings_not_the_instruction_images_or_key():
    assert "loras" in form.PRESET_FIELDS and "guidance_scale" in form.PRESET_FIELDS
    assert not {"prompt", "fal_key", "seed", "image_1"} & set(form.PRESET_FIELDS)


def test_the_api_docs_describe_every_argument_with_the_models_limits():
    docs = form.args_doc()
    for name in form.NAMES:
        assert f"    {name}: " in docs
    assert "0-20" in docs and "4-50" in docs and "512-2048" in docs
