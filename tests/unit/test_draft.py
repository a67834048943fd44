"""The form kept for a reload the visitor did not ask for (ui/draft.py): the settings a tab kept
come back checked as the form checks them; the key is never among them."""

from __future__ import annotations

import gradio as gr

from ui.draft import RESTORED_NOTE, restore_draft, save_js
from ui.form import RESTORED_FIELDS, PageSetup

SETUP = PageSetup(("fal",), "fal", False, (), "", "gpu")
SKIPPED = type(gr.skip())


def restored(draft, version=3):
    *values, new_version, status = restore_draft(draft, version, SETUP)
    return dict(zip(RESTORED_FIELDS, values, strict=True)), new_version, status


def test_a_kept_form_comes_back_with_its_loras_rows_redrawn():
    values, version, status = restored({
        "prompt": "a long instruction", "num_inference_steps": 12, "guidance_scale": 4.5, "seed": 42,
        "randomize_seed": False, "loras": [{"path": "owner/style", "scale": 0.7, "enabled": True}],
    })
    assert values["prompt"] == "a long instruction"
    assert values["num_inference_steps"] == 12 and values["guidance_scale"] == 4.5
    assert values["seed"] == 42 and values["randomize_seed"] is False
    assert values["loras"] == [{"path": "owner/style", "scale": 0.7, "enabled": True}]
    assert version == 4  # the LoRA rows are drawn again from the restored list
    assert status == RESTORED_NOTE
    assert isinstance(values["size"], SKIPPED)  # what the draft does not hold stays as the page has it


def test_what_the_form_would_refuse_stays_as_a_fresh_page_has_it_and_is_named():
    values, _version, status = restored({
        "prompt": "kept", "num_inference_steps": 999, "backend": "someone-elses", "seed": -5,
        "loras": [{"path": "owner/style", "scale": 40, "enabled": True}], "fal_key": "never-taken",
    })
    assert values["prompt"] == "kept"
    for name in ("num_inference_steps", "backend", "seed", "loras"):
        assert isinstance(values[name], SKIPPED), name
    assert values["randomize_seed"] is True  # a seed that cannot be used is no reason to keep the old one
    assert "Steps" in status and "50" in status and "this server does not offer it" in status
    assert "never-taken" not in status


def test_no_draft_changes_nothing():
    for draft in (None, "a string", [1, 2]):
        *outputs, = restore_draft(draft, 3, SETUP)
        assert len(outputs) == len(RESTORED_FIELDS) + 2 and all(isinstance(o, SKIPPED) for o in outputs)


def test_the_key_is_never_kept():
    assert "fal_key" not in RESTORED_FIELDS
    assert "fal_key" not in save_js([*RESTORED_FIELDS, "image_1"])
