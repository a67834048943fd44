"""Sweeps through the launched app: cells, their values, order, concurrency and the grid
(planning a sweep: tests/unit/test_sweep.py)."""

from __future__ import annotations

import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from backend.recipes import read_recipe
from tests.helpers.api import edit_args, local_args
from tests.helpers.app import connect


def sweep(app, images, **overrides):
    client = connect(app)
    return client.predict(**edit_args(images, **overrides), api_name="/sweep")


def test_a_hosted_sweep_runs_its_cells_at_once_and_labels_them(app, fake, images):
    fake.job_seconds = 0.8
    cells, status, grid, _zip = sweep(
        app, images, x_axis="guidance_scale", x_values="2, 5", y_axis="seed", y_values="11, 12",
    )
    assert status == "✅ Sweep done: 4 of 4 cells"
    assert sorted(c["caption"] for c in cells) == sorted(
        ["guidance 2 · seed 11", "guidance 5 · seed 11", "guidance 2 · seed 12", "guidance 5 · seed 12"])
    for cell in cells:  # each cell's image was made with the values in its caption
        recipe = read_recipe(open(cell["image"], "rb").read())
        guidance, seed = cell["caption"].replace("guidance ", "").replace("seed ", "").split(" · ")
        assert recipe["request"]["guidance_scale"] == float(guidance) and recipe["seed"] == int(seed)
    sent = sorted((j.input["guidance_scale"], j.input["seed"]) for j in fake.jobs.values())
    assert sent == [(2.0, 11), (2.0, 12), (5.0, 11), (5.0, 12)]
    jobs = list(fake.jobs.values())  # hosted cells overlap in time at fal
    assert any(a.started < b.finished and b.started < a.finished for a in jobs for b in jobs if a is not b)
    # Two columns and two rows of cells in the results' 4:3 shape (384 x 288 px), plus labels.
    width, height = Image.open(grid).size
    assert width > 2 * 384 and 2 * 288 < height < 2 * 384


def test_a_sweep_that_is_too_big_is_refused_before_any_run(app, fake, images):
    with pytest.raises(AppError, match="at most 16 cells per sweep"):
        sweep(app, images, x_axis="seed", x_values="1,2,3,4,5", y_axis="guidance_scale", y_values="1,2,3,4")
    assert not fake.jobs


def test_a_local_sweep_gives_one_cell_per_lora_scale_in_order(local_app, images):
    client = connect(local_app)
    cells, status, grid, _zip = client.predict(
        **local_args(images, loras=[{"path": "style.safetensors", "scale": 1.0, "enabled": True}],
                     randomize_seed=False, seed=3),
        x_axis="lora1_scale", x_values="0, 0.5, 1", api_name="/sweep",
    )
    assert status == "✅ Sweep done: 3 of 3 cells"
    assert [c["caption"] for c in cells] == ["lora1 0", "lora1 0.5", "lora1 1"]
    pixels = [Image.open(c["image"]).tobytes() for c in cells]
    assert len(set(pixels)) == 3
