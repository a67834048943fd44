"""Through the launched app: an API caller may name a reference image by its https URL (as
gradio_client's `handle_file(url)` and MCP clients do). The server fetches it from a public
address within an upload's limit (64 MB): Gradio's own fetch read any size into memory.
A local TLS server stands for the public host (tests/helpers/stand_ins/public_name).
"""

from __future__ import annotations

import io
import random

import anyio
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client
from PIL import Image

from backend.images import MAX_INPUT_BYTES
from tests.helpers.api import edit_args, sent_image
from tests.helpers.app import connect, launch_app, stop_app
from tests.helpers.tls_site import Site


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    server = Site(tmp_path_factory.mktemp("image-site"), name="images.test")
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (30, 140, 200)).save(buffer, format="PNG")
    noise = io.BytesIO()
    Image.frombytes("RGB", (400, 400), random.Random(7).randbytes(400 * 400 * 3)).save(noise, format="PNG")
    server.files = {"/photo.png": buffer.getvalue(), "/huge.png": b"\0" * (MAX_INPUT_BYTES + 1),
                    "/noise.png": noise.getvalue(), "/noise-2.png": noise.getvalue()}  # about 0.46 MB
    server.declare_length = False  # the body's size is known only by reading it
    yield server
    server.close()


@pytest.fixture(scope="module")
def url_app(fake, site, tmp_path_factory):
    launched = launch_app(tmp_path_factory.mktemp("input-url-app"), fake, **site.app_env())
    yield launched
    stop_app(launched)


def edit(app, images, url: str, headers: dict | None = None):
    return connect(app, headers=headers or {}).predict(**edit_args(images, image_1=handle_file(url)), api_name="/edit")


def test_an_image_named_by_its_url_is_fetched_and_edited(url_app, fake, images, site):
    _gallery, status, _logs, _details, _seed = edit(url_app, images, "https://images.test/photo.png")
    assert status.startswith("✅ Done")
    [job] = fake.jobs.values()
    sent = sent_image(job.input["image_urls"][0], fake)
    assert sent.size == (320, 240) and sent.convert("RGB").getpixel((5, 5)) == (30, 140, 200)


def test_an_mcp_client_names_its_image_by_url(url_app, fake, site):
    """What an agent does: the image as a URL string; a URL past the limit gets the reason."""

    async def call(image_url: str):
        async with streamablehttp_client(f"{url_app.url}gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await session.call_tool("edit", {"prompt": "make it teal", "image_1": image_url})

    fake.jobs.clear()
    result = anyio.run(call, "https://images.test/photo.png")
    assert not result.isError, result.content
    [job] = fake.jobs.values()
    assert job.input["prompt"] == "make it teal" and sent_image(job.input["image_urls"][0], fake).size == (320, 240)
    result = anyio.run(call, "https://images.test/huge.png")
    assert result.isError and "https://images.test/huge.png: is larger than the 64 MB a file may be" in str(
        result.content)


@pytest.mark.parametrize("url, refusal", [
    ("https://images.test/huge.png", "is larger than the 64 MB a file may be"),
    ("https://127.0.0.1/a.png", "only public addresses are fetched (not loopback or private networks)"),
])
def test_a_url_past_an_uploads_limits_is_refused_with_the_reason_and_the_server_goes_on(
    url_app, fake, images, url, refusal,
):
    fake.jobs.clear()
    with pytest.raises(AppError) as raised:
        edit(url_app, images, url)
    assert f"{url}: {refusal}" in str(raised.value)
    assert fake.jobs == {}
    _gallery, status, _logs, _details, _seed = edit(url_app, images, "https://images.test/photo.png")
    assert status.startswith("✅ Done")


def test_a_url_is_not_fetched_when_the_cache_has_no_room_for_it(fake, site, images, tmp_path_factory):
    """The fetch takes room in Gradio's cache as an upload does (STUDIO_CACHE_MAX_MB): a
    cache capped below one file's 64 MB refuses it before anything is read."""
    launched = launch_app(tmp_path_factory.mktemp("input-url-room"), fake, STUDIO_CACHE_MAX_MB="32", **site.app_env())
    try:
        site.requests.clear()
        with pytest.raises(AppError, match="The server has no room for uploads right now"):
            edit(launched, images, "https://images.test/photo.png")
        assert site.requests == []
    finally:
        stop_app(launched)


def test_files_fetched_by_url_count_against_the_callers_upload_share(fake, site, images, tmp_path_factory):
    """A URL's file takes cache room as an upload does, so it counts in the caller's share
    (STUDIO_UPLOAD_MB_PER_VISITOR) as an upload would: a caller past it is refused before
    anything is fetched, while another caller's URL is still fetched. Each caller comes through
    a proxy on this machine (trusted by default) that names it in X-Forwarded-For."""
    launched = launch_app(tmp_path_factory.mktemp("input-url-share"), fake, STUDIO_UPLOAD_MB_PER_VISITOR="1",
                          **site.app_env())
    first, second = {"X-Forwarded-For": "203.0.113.1"}, {"X-Forwarded-For": "203.0.113.2"}
    try:
        assert edit(launched, images, "https://images.test/noise.png", first)[1].startswith("✅ Done")
        site.requests.clear()
        with pytest.raises(AppError) as raised:  # 0.46 MB taken; the next URL may bring up to 1 MB
            edit(launched, images, "https://images.test/noise-2.png", first)
        assert ("The file at https://images.test/noise-2.png (counted as 1 MB, the most it may be, until it "
                "is fetched) would take you past what one visitor may upload 1 MB every 10 minutes "
                "(STUDIO_UPLOAD_MB_PER_VISITOR)") in str(raised.value)
        assert site.requests == []
        assert edit(launched, images, "https://images.test/noise-2.png", second)[1].startswith("✅ Done")
        with pytest.raises(AppError, match="is larger than the 1 MB a file may be"):
            edit(launched, images, "https://images.test/huge.png", {"X-Forwarded-For": "203.0.113.3"})
    finally:
        stop_app(launched)
