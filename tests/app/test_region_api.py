"""Region edits through the launched app's API (gradio_client) and its MCP tool: a `mask` (white
= change) edits only that area of image 1; the run is saved with its mask and the recipe says
so; a mask with nothing painted is refused naming the field."""

from __future__ import annotations

import base64
import json
import re

import anyio
import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client
from PIL import Image, ImageDraw

from backend.region import working_size
from tests.helpers.api import edit_args
from tests.helpers.app import connect

SIZE, PAINTED, FEATHER = (640, 480), (100, 120, 260, 300), 10


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("region-api")
    noise = np.random.default_rng(1).integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "image-1.png")
    mask = Image.new("RGB", SIZE, "black")
    ImageDraw.Draw(mask).rectangle((PAINTED[0], PAINTED[1], PAINTED[2] - 1, PAINTED[3] - 1), fill="white")
    mask.save(folder / "mask.png")
    Image.new("RGB", SIZE, "black").save(folder / "empty.png")
    return folder


def test_the_api_mask_edits_only_that_area_and_the_run_keeps_its_mask(app, fake, images, files):
    gallery, status, _logs, details, _seed = connect(app).predict(**edit_args(
        images, image_1=handle_file(str(files / "image-1.png")), mask=handle_file(str(files / "mask.png")),
        mask_feather=FEATHER), api_name="/edit")
    assert status.startswith("✅ Done")
    got = np.asarray(Image.open(gallery[0]["image"]).convert("RGB"))
    original = np.asarray(Image.open(files / "image-1.png").convert("RGB"))
    near = np.zeros(original.shape[:2], dtype=bool)
    near[PAINTED[1] - FEATHER:PAINTED[3] + FEATHER, PAINTED[0] - FEATHER:PAINTED[2] + FEATHER] = True
    assert got.shape == original.shape and np.array_equal(got[~near], original[~near])
    inside = got[PAINTED[1]:PAINTED[3], PAINTED[0]:PAINTED[2]] != original[PAINTED[1]:PAINTED[3], PAINTED[0]:PAINTED[2]]
    assert inside.any(axis=-1).mean() > 0.9
    folder = app.outputs / re.search(r"\*\*Saved as:\*\* `([^`]+)`", details).group(1)
    assert json.loads((folder / "recipe.json").read_text())["region"] == {"mask": "mask.png", "feather": FEATHER}
    assert Image.open(folder / "mask.png").getbbox() == PAINTED


def test_a_mask_with_nothing_painted_is_refused_naming_it(app, fake, images, files):
    with pytest.raises(AppError, match="Mask: nothing is painted"):
        connect(app).predict(**edit_args(images, mask=handle_file(str(files / "empty.png"))), api_name="/edit")
    assert fake.jobs == {}


def test_the_mcp_edit_tool_takes_a_mask(app, fake, images, files):
    def data_url(path) -> str:
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()

    async def call():
        async with streamablehttp_client(f"{app.url}gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = {tool.name: tool for tool in (await session.list_tools()).tools}
                assert "white = change" in tools["edit"].inputSchema["properties"]["mask"]["description"]
                return await session.call_tool("edit", {
                    "prompt": "make it blue", "image_1": data_url(files / "image-1.png"),
                    "mask": data_url(files / "mask.png"), "mask_feather": FEATHER})

    result = anyio.run(call)
    assert not result.isError, result.content
    [job] = fake.jobs.values()
    margin = max(48, 2 * FEATHER)  # the crop fal was sent: the painted box and its margin
    crop = (PAINTED[2] - PAINTED[0] + 2 * margin, PAINTED[3] - PAINTED[1] + 2 * margin)
    assert job.input["image_size"] == dict(zip(("width", "height"), working_size(*crop)))


def test_a_sweep_keeps_the_mask_in_every_cell(app, fake, images, files):
    cells, status, _grid, _zip = connect(app).predict(**edit_args(
        images, image_1=handle_file(str(files / "image-1.png")), mask=handle_file(str(files / "mask.png")),
        mask_feather=FEATHER, randomize_seed=False), x_axis="seed", x_values="1, 2", api_name="/sweep")
    assert status.startswith("✅ Sweep done: 2 of 2")
    original = np.asarray(Image.open(files / "image-1.png").convert("RGB"))
    near = np.zeros(original.shape[:2], dtype=bool)
    near[PAINTED[1] - FEATHER:PAINTED[3] + FEATHER, PAINTED[0] - FEATHER:PAINTED[2] + FEATHER] = True
    outputs = [np.asarray(Image.open(cell["image"]).convert("RGB")) for cell in cells]
    for got in outputs:
        assert got.shape == original.shape and np.array_equal(got[~near], original[~near])
    assert not np.array_equal(outputs[0], outputs[1])  # two seeds, two edits of the painted area
