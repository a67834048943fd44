"""The outputs folder: atomic saves, the size cap that keeps starred runs, paths from
the browser confined to the folder, and the folder never served."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from backend import outputs
from backend.events import Result, ResultImage
from backend.request import build_request
from backend.settings import Settings, SettingsError
from tests.conftest import launch_app, png_bytes, stop_app
from tests.test_app_hosted import edit_args
from PIL import Image

HOUR = 3600.0


def make_run(root: Path, day: str, name: str, size: int, *, age: float, starred=False, complete=True) -> Path:
    """A run folder as save_run leaves it, `size` bytes of image, finished `age` seconds ago."""
    folder = root / day / name
    folder.mkdir(parents=True)
    (folder / "image-1.png").write_bytes(b"x" * size)
    if complete:
        (folder / "recipe.json").write_text("{}")
    if starred:
        (folder / outputs.STAR_MARKER).touch()
    finished = time.time() - age
    os.utime(folder, (finished, finished))
    return folder


def test_the_cap_removes_the_oldest_runs_first_and_keeps_starred_recent_and_unfinished(tmp_path):
    mb = 2**20
    oldest = make_run(tmp_path, "2026-11-01", "100000-aaaa", mb, age=5 * HOUR)
    starred = make_run(tmp_path, "2026-11-01", "110000-bbbb", mb, age=4 * HOUR, starred=True)
    unfinished = make_run(tmp_path, "2026-11-02", "090000-cccc", mb, age=3 * HOUR, complete=False)
    older = make_run(tmp_path, "2026-11-02", "100000-dddd", mb, age=2 * HOUR)
    newer = make_run(tmp_path, "2026-11-03", "100000-eeee", mb, age=1 * HOUR)
    recent = make_run(tmp_path, "2026-11-28", "100000-ffff", mb, age=10)

    removed = outputs.enforce_cap(tmp_path, int(4.5 * mb))

    # 6 MB held, 4.5 allowed: the two oldest removable runs go, oldest first.
    assert removed == [oldest, older]
    assert starred.is_dir() and unfinished.is_dir() and newer.is_dir() and recent.is_dir()
    assert not (tmp_path / "2026-11-01" / "100000-aaaa").exists()
    # Nothing more is removed once the folder fits.
    assert outputs.enforce_cap(tmp_path, int(4.5 * mb)) == []
    # Starred and recent runs stay even when the cap cannot be met.
    outputs.enforce_cap(tmp_path, 1)
    assert starred.is_dir() and recent.is_dir() and not newer.exists()
    # No cap: nothing is touched.
    assert outputs.enforce_cap(tmp_path, 0) == []


def test_starring_marks_only_run_folders_inside_the_outputs_folder(tmp_path):
    root = tmp_path / "outputs"
    run = make_run(root, "2026-11-28", "100000-abcd", 10, age=HOUR)
    assert outputs.set_starred(root, run / "image-1.png", True)
    assert (run / outputs.STAR_MARKER).exists()
    assert outputs.set_starred(root, run / "image-1.png", False)
    assert not (run / outputs.STAR_MARKER).exists()
    # Paths a browser could send: outside the folder, through "..", the root itself.
    outside = make_run(tmp_path / "elsewhere", "2026-11-28", "100000-abcd", 10, age=HOUR)
    for path in (outside / "image-1.png", root / ".." / "elsewhere" / "2026-11-28" / "100000-abcd", root, "/etc/passwd"):
        assert not outputs.set_starred(root, path, True)
    assert not (outside / outputs.STAR_MARKER).exists()


def test_a_crash_while_saving_leaves_no_half_written_file_and_no_recipe(tmp_path, monkeypatch):
    request = build_request(prompt="p", image_urls=["https://example.com/a.png"])
    image = png_bytes(Image.new("RGB", (64, 64), (1, 2, 3)))
    result = Result(images=(ResultImage(data=image, content_type="image/png", width=64, height=64),) * 2, seed=1, seeds=(1, 2))
    real_replace = os.replace
    calls = []

    def crash_on_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(outputs.os, "replace", crash_on_second)
    with pytest.raises(OSError, match="disk full"):
        outputs.save_run(tmp_path, request, result, "fal", "endpoint")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    # The first image is whole; the second never appeared under its name; no temp file is
    # left; and no recipe.json: the run does not count as complete.
    assert [p.name for p in files] == ["image-1.png"]
    assert files[0].read_bytes().startswith(image[:8])


def test_a_killed_writer_never_leaves_a_partial_file_under_the_final_name(tmp_path):
    """The writer process is killed while it writes 200 MB; the target is whole or absent."""
    target = tmp_path / "image-1.png"
    code = (
        "import sys; from pathlib import Path; from backend.outputs import atomic_write;\n"
        "print('go', flush=True)\n"
        f"atomic_write(Path({str(target)!r}), b'z' * (200 * 2**20))\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=Path(__file__).parent.parent)
    assert process.stdout.readline().strip() == b"go"
    while not list(tmp_path.glob(".tmp-*")) and process.poll() is None:
        time.sleep(0.001)
    process.kill()
    process.wait()
    assert not target.exists() or target.stat().st_size == 200 * 2**20


def test_outputs_must_be_where_gradio_copies_from_not_served_from(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Settings.from_env({"STUDIO_OUTPUTS": "results"}).outputs == Path("results")
    with pytest.raises(SettingsError, match="STUDIO_OUTPUTS '/srv/outputs' must be inside the folder"):
        Settings.from_env({"STUDIO_OUTPUTS": "/srv/outputs"})
    with pytest.raises(SettingsError, match="STUDIO_OUTPUTS_MAX_MB must be a number"):
        Settings.from_env({"STUDIO_OUTPUTS_MAX_MB": "lots"})


def test_the_app_keeps_its_outputs_under_the_cap_and_never_serves_the_folder(fake, images, tmp_path):
    root = tmp_path / "outputs"
    old = make_run(root, "2026-01-01", "100000-0001", 3 * 2**20, age=48 * HOUR)
    kept = make_run(root, "2026-01-01", "100000-0002", 3 * 2**20, age=47 * HOUR, starred=True)
    app = launch_app(tmp_path, fake, STUDIO_OUTPUTS_MAX_MB="4")
    try:
        client = Client(app.url, verbose=False, download_files=False)
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
