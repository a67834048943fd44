"""The project's examples: each fills the whole form (LoRAs included) and runs nothing."""

from __future__ import annotations

import gradio as gr

from ui import examples


def test_an_example_fills_its_loras_and_settings_and_says_to_press_run(monkeypatch):
    listed = [{"name": "Ink", "prompt": "ink it", "images": ["donut.png"], "guidance_scale": 3.5,
               "num_inference_steps": 20, "loras": [{"path": "owner/ink-style", "scale": 0.8}, {"path": "a/b"}]}]
    monkeypatch.setattr(examples, "listed_examples", lambda: listed)
    loras, guidance, steps, version, status = examples.example_settings("ink it", 4)
    assert loras == [{"path": "owner/ink-style", "scale": 0.8, "enabled": True},
                     {"path": "a/b", "scale": 1.0, "enabled": True}]
    assert (guidance, steps, version) == (3.5, 20, 5)  # the LoRA rows are redrawn
    assert "Ink" in status and "press Run" in status
    # An instruction the visitor typed is not an example: nothing changes.
    assert examples.example_settings("my own words", 4) == (gr.skip(),) * 5


def test_every_shipped_example_has_its_images_and_a_valid_form():
    for example in examples.listed_examples():
        assert example["prompt"] and example["images"]
        for name in example["images"]:
            assert (examples.EXAMPLES_DIR / name).is_file(), name
        loras, guidance, steps, _version, _status = examples.example_settings(example["prompt"], 0)
        assert isinstance(loras, list) and 0 <= guidance <= 20 and 4 <= steps <= 50
