"""A stranger uploading file after file cannot fill the server's disk: Gradio's cache stays
under STUDIO_CACHE_MAX_MB (here 100 MB), uploads past it are refused with a message naming the
setting, the server stays up, and once the stranger's files are old a visitor's run makes room
(the mechanism: backend/cache_room.py); and one address may upload only its share every 10
minutes (STUDIO_UPLOAD_MB_PER_VISITOR), so it cannot keep the others' uploads refused."""

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


def test_a_visitor_past_its_upload_share_is_refused_while_another_uploads(fake, tmp_path):
    # One stranger's recent uploads could otherwise fill the cap (they are never removed to make
    # room) and keep every other visitor's refused. Two addresses on loopback: two visitors.
    app = launch_app(tmp_path, fake, GRADIO_TEMP_DIR=str(tmp_path / "gradio-cache"), STUDIO_CACHE_MAX_MB="200",
                     STUDIO_UPLOAD_MB_PER_VISITOR="50")
    stranger = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.1"), timeout=120)
    visitor = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=120)
    try:
        def upload(client: httpx.Client, megabytes: int) -> httpx.Response:
            return client.post(app.url + "gradio_api/upload", files={"files": ("x.bin", os.urandom(megabytes * MB))})

        assert upload(stranger, 30).status_code == 200
        refused = upload(stranger, 30)
        assert refused.status_code == 429
        assert "upload 50 MB every 10 minutes" in refused.text and "you have uploaded 30 MB of it" in refused.text
        assert "STUDIO_UPLOAD_MB_PER_VISITOR" in refused.text
        assert upload(visitor, 30).status_code == 200  # the other visitor's upload goes on
        assert upload(stranger, 10).status_code == 200  # what is left of the stranger's share
        assert httpx.get(app.url, timeout=30).status_code == 200  # still up
    finally:
        stranger.close()
        visitor.close()
        stop_app(app)
