"""History and presets as plain data: what the browser keeps."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from ui import history as history_lib
from ui.sweep_view import sweep_cost


@pytest.fixture
def run_file(tmp_path):
    path = tmp_path / "image-1.png"
    Image.new("RGB", (600, 400), (10, 20, 30)).save(path)
    return {"recipe": {"request": {"prompt": "make it blue"}, "seed": 5}, "images": [str(path)], "references": []}


def test_entries_are_newest_first_with_small_thumbnails_and_no_keys(run_file):
    history = history_lib.add_entry([], run_file)
    history = history_lib.add_entry(history, {**run_file, "recipe": {"request": {"prompt": "second"}, "seed": 6}})
    assert [e["recipe"]["request"]["prompt"] for e in history] == ["second", "make it blue"]
    assert history[0]["thumbs"][0].startswith("data:image/jpeg;base64,")
    assert len(history[0]["thumbs"][0]) < 20_000
    [(image, caption)] = history_lib.gallery_items(history[:1])
    assert max(image.size) == history_lib.THUMB_SIDE and caption.endswith("second · seed 6")


def test_starred_runs_survive_clear_and_the_cap(run_file):
    history = history_lib.add_entry([], run_file)
    history = history_lib.toggle_star(history, 0)
    for _ in range(history_lib.MAX_HISTORY + 5):
        history = history_lib.add_entry(history, run_file)
    assert len(history) == history_lib.MAX_HISTORY and history[-1]["starred"]
    assert [e["starred"] for e in history_lib.clear(history)] == [True]


def test_presets_keep_settings_only_and_import_what_export_wrote(tmp_path):
    values = {field: index for index, field in enumerate(history_lib.PRESET_FIELDS)}
    presets = history_lib.save_preset({}, " strong ", {**values, "prompt": "not kept"})
    assert presets == {"strong": values}
    exported = history_lib.export_presets(presets, tmp_path)
    assert history_lib.import_presets({"old": {}}, open(exported, "rb").read()) == {"old": {}, "strong": values}
    with pytest.raises(ValueError, match="not JSON"):
        history_lib.import_presets({}, b"\x89PNG")
    with pytest.raises(ValueError, match="not a presets file"):
        history_lib.import_presets({}, json.dumps([1, 2]).encode())
    with pytest.raises(ValueError, match="name"):
        history_lib.save_preset({}, "  ", values)


def test_the_page_says_what_a_sweep_costs_before_it_starts():
    assert sweep_cost("lora1_scale", "0.4, 0.7, 1.0, 1.3", "seed", "1, 2") == \
        "This sweep makes **8 runs**, one image each."
    assert "at most 16" in sweep_cost("seed", "1,2,3,4,5", "guidance_scale", "1,2,3,4")
    assert "is not a number" in sweep_cost("seed", "1, x", "", "")
