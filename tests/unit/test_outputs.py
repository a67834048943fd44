"""The outputs folder: atomic saves, the size cap that keeps starred runs, paths from
the browser confined to the folder. The launched app keeping to its cap and never serving
the folder: tests/app/test_outputs.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from backend import outputs
from backend.events import Result, ResultImage
from backend.fal.options import FalOptions
from backend.request import build_request
from backend.settings import Settings, SettingsError
from tests.helpers.images import png_bytes
from tests.helpers.outputs import HOUR, make_run

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
    run = make_run(root, "2026-11-28", "100000-abcd", 10, age=HOUR)
    assert outputs.set_starred(root, run / "image-1.png", True)
    assert (run / outputs.STAR_MARKER).exists()
    assert outputs.set_starred(root, run / "image-1.png", False)
    assert not (run / outputs.STAR_MARKER).exists()
    # Paths a browser could send: outside the folder, through "..", the root itself.
    outside = make_run(tmp_path / "elsewhere", "2026-11-28", "100000-abcd", 10, age=HOUR)
    through_dots = root / ".." / "elsewhere" / "2026-11-28" / "100000-abcd"
    for path in (outside / "image-1.png", through_dots, root, "/etc/passwd"):
        assert not outputs.set_starred(root, path, True)
    assert not (outside / outputs.STAR_MARKER).exists()


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
