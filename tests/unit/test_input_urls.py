"""A file named by URL in a request's inputs (backend/input_urls.py): fetched from a public
address over https, no larger than an upload, into a folder of its own in the cache, and
refused with the URL and the reason otherwise, leaving nothing behind.

The "public" host is a local TLS server (tests/helpers/tls_site.py) reached through a name
that resolves to a public address; `rebind.test` answers 127.0.0.1 from its second lookup on.
"""

from __future__ import annotations

import io
import socket

import pytest
from PIL import Image

from backend.input_urls import UrlRefused, fetch_input_url
from tests.helpers.tls_site import PUBLIC, Site, Trap, answers, rebinding_name


def png_bytes(side: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 40, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def rebinding(monkeypatch):
    return rebinding_name(monkeypatch)


@pytest.fixture
def site(tmp_path, monkeypatch, rebinding):
    server = Site(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca))  # httpx trusts the test CA
    rebinding["routes"][443] = server.port
    yield server
    server.close()


def files_in(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def fetch(url: str, cache, rebinding, **kwargs) -> str:
    rebinding["lookups"] = 0  # each fetch looks the name up afresh: public to the check
    return fetch_input_url(url, cache, getaddrinfo=rebinding["resolver"], **kwargs)


def test_an_image_url_is_fetched_once_into_a_folder_of_its_own_in_the_cache(tmp_path, rebinding, site):
    site.files["/cat%20photo.png"] = png_bytes()
    path = fetch("https://rebind.test/cat%20photo.png", tmp_path / "cache", rebinding)
    assert open(path, "rb").read() == site.files["/cat%20photo.png"]
    assert path.startswith(str(tmp_path / "cache")) and path.endswith("/cat_photo.png")
    assert fetch("https://rebind.test/cat%20photo.png", tmp_path / "cache", rebinding) == path
    assert [r[0] for r in site.requests] == ["/cat%20photo.png"]  # the second call read the copy
    assert site.requests[0][1:] == ("rebind.test", "rebind.test")  # Host and TLS SNI keep the name


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "no content-length"])
def test_a_file_larger_than_an_upload_is_refused_with_the_limit_and_nothing_is_kept(
    tmp_path, rebinding, site, declared,
):
    site.body, site.declare_length = b"\0" * (2**20 + 1), declared
    with pytest.raises(UrlRefused, match=r"^https://rebind.test/huge.png: is larger than the 1 MB a file may be$"):
        fetch("https://rebind.test/huge.png", tmp_path / "cache", rebinding, max_bytes=2**20)
    assert files_in(tmp_path / "cache") == [] and list((tmp_path / "cache").iterdir()) == []
    site.body = b"\0" * 2**20  # at the limit: fetched
    assert len(open(fetch("https://rebind.test/ok.png", tmp_path / "cache", rebinding, max_bytes=2**20),
                    "rb").read()) == 2**20


@pytest.mark.parametrize("url, reason", [
    ("http://rebind.test/a.png", "only https:// URLs are read"),
    ("https://127.0.0.1/a.png", "only public addresses are fetched (not loopback or private networks)"),
    ("https://[::ffff:10.0.0.1]/a.png", "only public addresses are fetched (not loopback or private networks)"),
])
def test_a_url_that_is_not_fetched_says_why(tmp_path, rebinding, site, url, reason):
    with pytest.raises(UrlRefused) as refused:
        fetch(url, tmp_path / "cache", rebinding)
    assert refused.value.message == f"{url}: {reason}"
    assert not (tmp_path / "cache").exists() or files_in(tmp_path / "cache") == []


def test_a_redirect_is_followed_and_each_new_address_checked_again(tmp_path, rebinding, site):
    site.files["/real.png"] = png_bytes()
    site.redirects = {"/short": "/real.png", "/evil": "https://127.0.0.1/a.png"}

    def public(host, port, *args, **kwargs):  # rebind.test answers PUBLIC at every lookup
        return answers(PUBLIC, port=port) if host == "rebind.test" else socket.getaddrinfo(host, port, *args, **kwargs)

    path = fetch_input_url("https://rebind.test/short", tmp_path / "cache", getaddrinfo=public)
    assert open(path, "rb").read() == site.files["/real.png"]
    assert [r[0] for r in site.requests] == ["/short", "/real.png"]
    with pytest.raises(UrlRefused, match="https://rebind.test/evil: only public addresses are fetched"):
        fetch_input_url("https://rebind.test/evil", tmp_path / "cache", getaddrinfo=public)
    # A name that answers 127.0.0.1 at its second lookup: the redirect's check refuses it.
    with pytest.raises(UrlRefused, match="https://rebind.test/short: only public addresses are fetched"):
        fetch("https://rebind.test/short", tmp_path / "other", rebinding)


def test_a_rebinding_name_is_fetched_from_the_checked_address_only(tmp_path, rebinding):
    trap = Trap()  # 127.0.0.1: what the name answers after its first lookup
    try:
        with pytest.raises(UrlRefused, match=r"the download failed \(ConnectError\)"):
            fetch(f"https://rebind.test:{trap.port}/a.png", tmp_path / "cache", rebinding)
        assert rebinding["connects"] == [(PUBLIC, trap.port)] and trap.accepted == 0
    finally:
        trap.close()


def test_a_trusted_name_is_fetched_whatever_it_resolves_to(tmp_path, monkeypatch):
    """Gradio trusts Hugging Face's names (on a Space they may resolve to its own network)."""
    server = Site(tmp_path, name="cdn.hf.test")
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca))
    server.files["/a.png"] = png_bytes()
    local = lambda host, port, *args, **kwargs: answers("127.0.0.1", port=port)  # noqa: E731
    url = f"https://cdn.hf.test:{server.port}/a.png"
    try:
        with pytest.raises(UrlRefused, match="only public addresses"):
            fetch_input_url(url, tmp_path / "cache", getaddrinfo=local)
        path = fetch_input_url(url, tmp_path / "cache", getaddrinfo=local, trusted=("*.hf.test",))
        assert open(path, "rb").read() == server.files["/a.png"]
    finally:
        server.close()
