"""A LoRA's header read from where it lives, and nothing more: from a stand-in Hugging Face Hub
(repo ids and file URLs), from an https server through the guarded downloader (ranged
requests, each redirect checked again), from the LoRA folder. What cannot be read is named.
"""

from __future__ import annotations

import socket

import pytest

from backend.errors import LoraError
from backend.lora_preflight import FIRST_BYTES, LoraInspector
from tests.helpers.lora_headers import declared_size, lora_header_file
from tests.helpers.stand_ins.hub import StandInHub
from tests.helpers.tls_site import PUBLIC, Site, answers

DEV = lora_header_file("flux2-dev", "ai-toolkit", rank=16, metadata={"trigger_word": "wtrclr"})
FLUX1 = lora_header_file("flux1", "kohya")


@pytest.fixture
def hub(monkeypatch):
    from huggingface_hub import constants

    server = StandInHub()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    yield server
    server.close()


@pytest.fixture
def site(tmp_path, monkeypatch):
    """An https server for `loras.test`, a name that resolves to a public address; a connection
    to that address reaches the server."""
    server = Site(tmp_path, name="loras.test")
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca))
    real_connect = socket.create_connection
    server.connects = []

    def create_connection(address, *args, **kwargs):
        server.connects.append(tuple(address[:2]))
        if tuple(address[:2]) == (PUBLIC, 443):
            address = ("127.0.0.1", server.port)
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    yield server
    server.close()


def public(host, port, *args, **kwargs):
    """The resolver: loras.test is public; every other name as the system answers."""
    return answers(PUBLIC, port=port) if host == "loras.test" else socket.getaddrinfo(host, port, *args, **kwargs)


def test_a_hub_repo_id_and_a_hub_file_url_read_the_header_only(hub):
    hub.add("owner/watercolor", "watercolor.safetensors", DEV, declared_size(DEV))
    inspector = LoraInspector()
    header = inspector.check(1, "owner/watercolor")
    assert (header.made_for, header.rank, header.trigger_words) == ("FLUX.2 [dev]", 16, ("wtrclr",))
    assert header.size_bytes // 2**20 == declared_size(DEV) // 2**20  # the tensors' bytes, in MB as shown
    url = f"{hub.url}/owner/watercolor/resolve/main/watercolor.safetensors"
    assert LoraInspector().check(1, url) == header
    # Only ranged reads of the file; none of them beyond the first FIRST_BYTES.
    reads = [r for r in hub.requests if "/resolve/" in r[1]]
    assert reads and all(r[2] and r[2].startswith("bytes=0-") for r in reads)
    # Asked again: no new request.
    before = len(hub.requests)
    inspector.check(1, "owner/watercolor")
    assert len(hub.requests) == before


def test_a_hub_lora_for_another_model_is_refused_naming_it(hub):
    hub.add("someone/flux1-style", "style.safetensors", FLUX1, declared_size(FLUX1))
    with pytest.raises(LoraError, match=r"LoRA 2 \(someone/flux1-style\): was made for FLUX.1, not FLUX.2 \[dev\]"):
        LoraInspector().check(2, "someone/flux1-style")


@pytest.mark.parametrize("path, message", [
    ("nobody/missing", "no such Hugging Face repo"),
    ("owner/two/b.safetensors", "no file b.safetensors"),
    ("owner/two", r"name the file: owner/name/file.safetensors \(found a.safetensors, c.safetensors\)"),
    ("owner/html/page.safetensors", "its header could not be read: not a safetensors file"),
    ("ftp://example.com/x.safetensors", "only https:// URLs are read"),
    ("just words", "is not an https URL to a .safetensors file or a Hugging Face repo id"),
])
def test_what_cannot_be_read_is_named(hub, path, message):
    hub.add("owner/two", "a.safetensors", DEV)
    hub.add("owner/two", "c.safetensors", DEV)
    hub.add("owner/html", "page.safetensors", b"<!DOCTYPE html><html><body>Sign in</body></html>")
    with pytest.raises(LoraError, match=message):
        LoraInspector().check(1, path)


def test_an_https_lora_is_read_with_ranged_requests_from_the_checked_address(site):
    big = lora_header_file("flux2-dev", "kohya", rank=8, metadata={"instance_prompt": "ink" * 120_000})
    assert len(big) > FIRST_BYTES  # its header needs a second read
    site.files = {"/dev.safetensors": DEV, "/big.safetensors": big, "/flux1.safetensors": FLUX1}
    inspector = LoraInspector(getaddrinfo=public)
    assert inspector.check(1, "https://loras.test/dev.safetensors").made_for == "FLUX.2 [dev]"
    assert inspector.check(1, "https://loras.test/big.safetensors").rank == 8
    with pytest.raises(LoraError, match="was made for FLUX.1"):
        inspector.check(3, "https://loras.test/flux1.safetensors")
    assert [path for path, _, _ in site.requests] == [
        "/dev.safetensors", "/big.safetensors", "/big.safetensors", "/flux1.safetensors"]
    assert {(host, sni) for _, host, sni in site.requests} == {("loras.test", "loras.test")}
    assert set(site.connects) == {(PUBLIC, 443)}


def test_a_redirect_is_followed_only_to_a_public_address(site):
    site.files = {"/dev.safetensors": DEV}
    site.redirects = {"/civitai/123": "https://loras.test/dev.safetensors", "/evil": "https://127.0.0.1/x"}
    inspector = LoraInspector(getaddrinfo=public)
    assert inspector.check(1, "https://loras.test/civitai/123").made_for == "FLUX.2 [dev]"
    with pytest.raises(LoraError, match="only public addresses"):
        inspector.check(1, "https://loras.test/evil")


def test_a_server_that_ignores_range_is_read_only_as_far_as_the_header(site):
    site.ranges = False
    site.files = {"/dev.safetensors": DEV + b"\0" * (4 * 2**20)}
    header = LoraInspector(getaddrinfo=public).check(1, "https://loras.test/dev.safetensors")
    assert header.made_for == "FLUX.2 [dev]"


def test_a_private_address_is_never_read():
    with pytest.raises(LoraError, match="only public addresses"):
        LoraInspector().check(1, "https://127.0.0.1/x.safetensors")


def test_a_lora_folder_file_is_read_from_disk_and_nothing_outside_the_folder(tmp_path):
    (tmp_path / "loras").mkdir()
    (tmp_path / "loras" / "dev.safetensors").write_bytes(DEV)
    (tmp_path / "outside.safetensors").write_bytes(DEV)
    inspector = LoraInspector(lora_dir=tmp_path / "loras")
    assert inspector.check(1, "dev.safetensors").made_for == "FLUX.2 [dev]"
    with pytest.raises(LoraError, match="is outside the LoRA folder"):
        inspector.check(1, "../outside.safetensors")
