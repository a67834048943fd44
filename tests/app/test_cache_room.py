"""A stranger uploading file after file cannot fill the server's disk: Gradio's cache stays
under STUDIO_CACHE_MAX_MB (here 100 MB), uploads past it are refused with a message naming the
setting, the server stays up, and once the stranger's files are old a visitor's run makes room
(the mechanism: backend/cache_room.py)."""

from __future__ import annotations

import os
import time

import httpx

from tests.helpers.api import edit_args
from tests.helpers.app import connect, launch_app, stop_app

MB = 2**20


def folder_size(folder) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def test_uploads_past_the_cap_are_refused_and_old_files_make_room(fake, images, tmp_path):
    cache = tmp_path / "gradio-cache"
    app = launch_app(tmp_path, fake, GRADIO_TEMP_DIR=str(cache), STUDIO_CACHE_MAX_MB="100")
    try:
        answers = []
        for n in range(8):  # 8 x 30 MB, each file different (Gradio keeps one copy of equal files)
            data = os.urandom(30 * MB)
            answers.append(httpx.post(app.url + "gradio_api/upload", files={"files": (f"{n}.bin", data)},
                                      timeout=120))
        statuses = [answer.status_code for answer in answers]
        assert statuses[:3] == [200] * 3 and set(statuses[3:]) == {507}, statuses
        assert "100 MB cap (STUDIO_CACHE_MAX_MB)" in answers[-1].text
        assert folder_size(cache) <= 100 * MB
        assert httpx.get(app.url, timeout=30).status_code == 200  # still up

        # An hour later (the stranger's files are old): an upload makes room (the oldest file
        # goes), and a visitor's run works.
        stranger = sorted(cache.rglob("*.bin"))
        an_hour_ago = time.time() - 3600
        for n, path in enumerate(stranger):
            os.utime(path, (an_hour_ago + n, an_hour_ago + n))
        later = httpx.post(app.url + "gradio_api/upload", files={"files": ("later.bin", os.urandom(30 * MB))},
                           timeout=120)
        assert later.status_code == 200
        assert [path.exists() for path in stranger] == [False, True, True]
        assert connect(app).predict(**edit_args(images), api_name="/edit")[1].startswith("✅ Done")
        assert folder_size(cache) <= 100 * MB
    finally:
        stop_app(app)
