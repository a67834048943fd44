"""The outputs folder: atomic saves, the size cap that keeps starred runs, paths from
the browser confined to the folder. The launched app keeping to its cap and never serving
the folder: tests/app/test_outputs.py."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from backend import outputs
from backend.base import Backend
from backend.events import Result, ResultImage
from backend.fal.options import FalOptions
from backend.images import prepare_reference
from backend.recipes import read_mask
from backend.region import Region
from backend.request import build_request
from backend.settings import Settings, SettingsError
from tests.helpers.images import png_bytes
from tests.helpers.outputs import HOUR, make_run
from ui.run import Outputs, RunPlan
from ui.sweep_view import run_sweep_view

ROOT = Path(__file__).resolve().parents[2]


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
    run = make_run(root, "2026-11-28", "100000-abcd", 10, age=HOUR, token="the-token")
    assert outputs.set_starred(root, run / "image-1.png", True, token="the-token")
    assert (run / outputs.STAR_MARKER).exists()
    assert outputs.set_starred(root, run / "image-1.png", False, token="the-token")
    assert not (run / outputs.STAR_MARKER).exists()
    # Paths a browser could send: outside the folder, through "..", the root itself.
    outside = make_run(tmp_path / "elsewhere", "2026-11-28", "100000-abcd", 10, age=HOUR, token="the-token")
    through_dots = root / ".." / "elsewhere" / "2026-11-28" / "100000-abcd"
    for path in (outside / "image-1.png", through_dots, root, "/etc/passwd"):
        assert not outputs.set_starred(root, path, True, token="the-token")
    assert not (outside / outputs.STAR_MARKER).exists()


def reference_png(tmp_path, name="reference.png", size=(2000, 1500)) -> Path:
    """A reference as an upload leaves it: larger than the model's megapixel."""
    path = tmp_path / name
    Image.new("RGB", size, (200, 40, 40)).save(path)
    return path


def fake_result(seed=1) -> Result:
    image = png_bytes(Image.new("RGB", (64, 64), (1, 2, 3)))
    return Result(images=(ResultImage(data=image, content_type="image/png", width=64, height=64),), seed=seed)


def test_only_the_token_issued_with_the_result_stars_a_run(tmp_path, images):
    """The token goes to the session with its result (and into its history), never into the
    run's recipe or PNGs; a star request without it, or with another run's, changes nothing."""
    root = tmp_path / "outputs"
    request = build_request(prompt="p", image_urls=[str(images["red"])])
    first = outputs.save_run(root, request, FalOptions(), fake_result(), "fal", "endpoint")
    second = outputs.save_run(root, request, FalOptions(), fake_result(), "fal", "endpoint")
    assert len(first.token) >= 32 and first.token != second.token and first.token not in repr(first)
    image = first.image_paths[0]
    for token in (None, "", "guess", second.token, first.token[:-1], "é" * 8):
        assert not outputs.set_starred(root, image, True, token=token)
    assert not (first.folder / outputs.STAR_MARKER).exists()
    assert outputs.set_starred(root, image, True, token=first.token)
    assert (first.folder / outputs.STAR_MARKER).exists()
    assert not outputs.set_starred(root, image, False, token=None)  # nor unstarred without it
    assert (first.folder / outputs.STAR_MARKER).exists()
    for path in first.folder.rglob("*"):
        if path.name != outputs.TOKEN_FILE:
            assert first.token.encode() not in path.read_bytes(), path


def test_a_reference_is_kept_once_as_it_was_sent_and_shared_by_runs(tmp_path):
    """Two runs with the same upload keep one file: the prepared copy fal got (about a
    megapixel), not the upload, named by its content hash and listed in each recipe.json."""
    root = tmp_path / "outputs"
    upload = reference_png(tmp_path)
    again = reference_png(tmp_path, "same-picture-uploaded-again.png")
    runs = [
        outputs.save_run(root, build_request(prompt="p", image_urls=[str(source)]), FalOptions(), fake_result(),
                         "fal", "endpoint")
        for source in (upload, upload, again)
    ]
    stored = list((root / outputs.REFERENCES).iterdir())
    assert len(stored) == 1 and all(run.reference_paths == (stored[0],) for run in runs)
    sent = prepare_reference(str(upload), "image 1")
    assert stored[0].read_bytes() == sent.data != upload.read_bytes()
    assert stored[0].name == hashlib.sha256(sent.data).hexdigest() + ".png"
    assert sent.width * sent.height <= 1024 * 1024 * 1.01
    for run in runs:
        assert json.loads((run.folder / "recipe.json").read_text())["references"] == [f"references/{stored[0].name}"]
        assert not list(run.folder.glob("reference-*"))
    # A rerun with the same upload stores nothing and decodes nothing.
    calls = []
    real_prepare = outputs.prepare_reference
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(outputs, "prepare_reference", lambda *a: calls.append(a) or real_prepare(*a))
        outputs.save_run(root, build_request(prompt="p", image_urls=[str(upload)]), FalOptions(), fake_result(),
                         "fal", "endpoint")
    assert calls == [] and len(list((root / outputs.REFERENCES).iterdir())) == 1


def test_a_region_edits_mask_is_saved_at_image_1s_size_whatever_size_it_was_painted_at(tmp_path):
    """The page paints on image 1 shown at most 1536 px a side (and the API takes a mask of any
    size): the saved mask, and the one each PNG carries, is at the images' size (image 1's), so
    that a restore from History or from the PNG finds it the size of image 1."""
    painted = Image.new("L", (16, 16), 0)
    painted.paste(255, (4, 4, 8, 8))
    saved = outputs.save_run(tmp_path / "outputs", build_request(prompt="p", image_urls=[str(reference_png(tmp_path))]),
                             FalOptions(), fake_result(), "fal", "endpoint", region=Region(painted, feather=4))
    with Image.open(saved.folder / outputs.MASK_FILE) as mask:
        assert mask.size == (64, 64) and mask.getbbox() == (16, 16, 32, 32)
    carried = read_mask(saved.image_paths[0].read_bytes())
    assert carried is not None and Image.open(io.BytesIO(carried)).size == (64, 64)


class StubBackend(Backend):
    """A backend whose runs end at once with a real (small) PNG."""

    concurrent_runs = 1

    def run(self, request, options, *, key=None):
        yield fake_result(request.seed)


def test_a_sweep_keeps_its_references_once_not_per_cell(tmp_path, monkeypatch):
    root = tmp_path / "outputs"
    upload = reference_png(tmp_path)
    calls = []
    real_prepare = outputs.prepare_reference
    monkeypatch.setattr(outputs, "prepare_reference", lambda *a: calls.append(a) or real_prepare(*a))
    request = build_request(prompt="p", image_urls=[str(upload), str(upload)], seed=1)
    plan = RunPlan(StubBackend(), request, FalOptions())
    updates = list(run_sweep_view(plan, Outputs(root), "seed", "1, 2, 3, 4", None, ""))
    assert updates[-1][1].startswith("✅ Sweep done: 4 of 4")
    stored = list((root / outputs.REFERENCES).iterdir())
    assert len(stored) == 1 and len(calls) == 1  # one upload, sent twice, in 4 cells: prepared and kept once
    cells = [p.parent for p in root.glob("*/*/recipe.json")]
    assert len(cells) == 4
    for cell in cells:
        assert json.loads((cell / "recipe.json").read_text())["references"] == [f"references/{stored[0].name}"] * 2


def test_the_cap_removes_a_reference_only_when_no_kept_run_uses_it(tmp_path):
    mb = 2**20
    store = tmp_path / outputs.REFERENCES
    store.mkdir()
    for name in ("shared.png", "only-old.png", "orphan.png"):
        (store / name).write_bytes(b"r" * mb)
        finished = time.time() - 6 * HOUR
        os.utime(store / name, (finished, finished))
    old = make_run(tmp_path, "2026-11-01", "100000-aaaa", mb, age=5 * HOUR, references=("shared.png", "only-old.png"))
    kept = make_run(tmp_path, "2026-11-02", "100000-bbbb", mb, age=10, references=("shared.png",))

    assert outputs.enforce_cap(tmp_path, int(2.5 * mb)) == [old]

    assert sorted(p.name for p in store.iterdir()) == ["shared.png"]  # the kept run's reference stays
    assert kept.is_dir()


def test_starred_runs_have_their_own_cap_and_the_oldest_stars_go_first(tmp_path):
    mb = 2**20
    first = make_run(tmp_path, "2026-11-01", "100000-aaaa", mb, age=5 * HOUR, starred=True, starred_age=3 * HOUR)
    second = make_run(tmp_path, "2026-11-01", "110000-bbbb", mb, age=4 * HOUR, starred=True, starred_age=4 * HOUR)
    third = make_run(tmp_path, "2026-11-02", "100000-cccc", mb, age=3 * HOUR, starred=True, starred_age=HOUR)
    plain = make_run(tmp_path, "2026-11-02", "110000-dddd", mb, age=2 * HOUR)

    # 3 MB starred, 2.5 MB allowed: the run starred longest ago (not the oldest run) loses its star,
    # then the general cap may remove it like any other run.
    removed = outputs.enforce_cap(tmp_path, int(2.5 * mb), starred_max_bytes=int(2.5 * mb))

    assert not (second / outputs.STAR_MARKER).exists()
    assert (first / outputs.STAR_MARKER).exists() and (third / outputs.STAR_MARKER).exists()
    assert removed == [second, plain] and first.is_dir() and third.is_dir()
    # Without a general cap, the starred cap still unstars (and removes nothing).
    assert outputs.enforce_cap(tmp_path, 0, starred_max_bytes=int(1.5 * mb)) == []
    assert not (first / outputs.STAR_MARKER).exists() and (third / outputs.STAR_MARKER).exists()


def test_a_crash_while_saving_leaves_no_half_written_file_and_no_recipe(tmp_path, monkeypatch):
    request = build_request(prompt="p", image_urls=["https://example.com/a.png"])
    image = png_bytes(Image.new("RGB", (64, 64), (1, 2, 3)))
    result = Result(
        images=(ResultImage(data=image, content_type="image/png", width=64, height=64),) * 2, seed=1, seeds=(1, 2)
    )
    real_replace = os.replace
    calls = []

    def crash_on_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(outputs.os, "replace", crash_on_second)
    with pytest.raises(OSError, match="disk full"):
        outputs.save_run(tmp_path, request, FalOptions(), result, "fal", "endpoint")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    # The first image is whole; the second never appeared under its name; no temp file is
    # left; and no recipe.json: the run does not count as complete.
    assert [p.name for p in files] == ["image-1.png"]
    assert files[0].read_bytes().startswith(image[:8])


OLD = b"the image saved before " * 1000
NEW_SIZE = 8 * 2**20
NEW = b"n" * NEW_SIZE
WRITERS = {
    "atomic_write": "from backend.outputs import atomic_write as write",
    # What atomic_write must not be: the bytes go straight to the final name. It is here to
    # show that this test catches a torn file.
    "naive": "def write(path, data): path.write_bytes(data)",
}


def write_and_die_half_way(target: Path, writer: str) -> int:
    """Run `writer` in a process that writes NEW over `target` and is killed by the kernel half
    way through: past NEW_SIZE / 2 bytes in any file (RLIMIT_FSIZE), its next write() ends it
    with SIGXFSZ (Python ignores that signal; the process puts back the default, dying). Returns
    the process's return code."""
    code = (
        "import resource, signal\n"
        "from pathlib import Path\n"
        f"{WRITERS[writer]}\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_DFL)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({NEW_SIZE // 2}, resource.RLIM_INFINITY))\n"
        f"write(Path({str(target)!r}), b'n' * {NEW_SIZE})\n"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=120).returncode


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_killed_writer_never_leaves_a_partial_file_under_the_final_name(tmp_path, writer):
    """The writer process dies half way through writing 8 MB over a saved image: the final name
    holds the old image or the new one, whole (or nothing), never a torn file."""
    target = tmp_path / "image-1.png"
    target.write_bytes(OLD)
    assert write_and_die_half_way(target, writer) == -signal.SIGXFSZ  # it died mid-write
    whole = not target.exists() or target.read_bytes() in (OLD, NEW)
    if writer == "atomic_write":
        assert whole
        assert target.read_bytes() == OLD  # the rename never happened: the old image is untouched
    else:  # the naive writer is caught: half the new bytes under the final name
        assert not whole and target.stat().st_size == NEW_SIZE // 2


def test_outputs_must_be_where_gradio_copies_from_not_served_from(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Settings.from_env({"STUDIO_OUTPUTS": "results"}).outputs == Path("results")
    with pytest.raises(SettingsError, match="STUDIO_OUTPUTS '/srv/outputs' must be inside the folder"):
        Settings.from_env({"STUDIO_OUTPUTS": "/srv/outputs"})
    with pytest.raises(SettingsError, match="STUDIO_OUTPUTS_MAX_MB must be a number"):
        Settings.from_env({"STUDIO_OUTPUTS_MAX_MB": "lots"})
