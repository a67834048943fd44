"""The launched app keeps its outputs folder under the cap and never serves it (the folder
itself, atomic saves and the cap in-process: tests/unit/test_outputs.py)."""

from __future__ import annotations

import json

import httpx

from tests.helpers.api import edit_args
from tests.helpers.app import connect, launch_app, stop_app
from tests.helpers.outputs import HOUR, make_run


def test_the_app_keeps_its_outputs_under_the_cap_and_never_serves_the_folder(fake, images, tmp_path):
    root = tmp_path / "outputs"
    old = make_run(root, "2026-01-01", "100000-0001", 3 * 2**20, age=48 * HOUR)
    kept = make_run(root, "2026-01-01", "100000-0002", 3 * 2**20, age=47 * HOUR, starred=True)
    app = launch_app(tmp_path, fake, STUDIO_OUTPUTS_MAX_MB="4")
    try:
        client = connect(app, download_files=False)
        result = client.predict(**edit_args(images), api_name="/edit")
        assert result[1].startswith("✅ Done")
        assert not old.exists() and kept.is_dir()
        runs = [p.parent for p in root.rglob("recipe.json")]
        assert len(runs) == 2 and kept in runs
        new_image = next(p for run in runs if run != kept for p in run.glob("image-1.*"))
        # The result reaches the visitor (from Gradio's cache) ...
        served = result[0][0]["image"]["url"]
        assert httpx.get(served).content == new_image.read_bytes()
        # ... but no file of the outputs folder is served by its path.
        for path in (new_image, kept / "image-1.png", new_image.parent / "recipe.json"):
            response = httpx.get(f"{app.url}gradio_api/file={path}")
            assert response.status_code == 403, path
        assert json.loads((new_image.parent / "recipe.json").read_text())["backend"] == "fal"
    finally:
        stop_app(app)
