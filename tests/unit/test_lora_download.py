"""LoRA downloads: public addresses only (every special-use IPv6 form of a private address
refused), connected to the address that was checked (a rebinding name never reaches
127.0.0.1), TLS and Host kept on the name, and a download cache bounded in bytes (LRU).

Offline: "public" hosts are local TLS servers reached through a patched
`socket.create_connection`, with a certificate authority made here for `rebind.test`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
from pathlib import Path

import httpx
import pytest

from backend.guarded_http import NotPublic, PinnedTransport, is_public_address, public_addresses
from backend.local.lora_cache import CacheFull, DownloadCache, url_key
from backend.local.lora_sources import LoraError, LoraFetcher
from backend.settings import Settings, SettingsError
from tests.helpers.tls_site import PUBLIC, Site, Trap, rebinding_name, tiny_safetensors
from tests.helpers.tls_site import answers as _answers

# -- which addresses are public ---------------------------------------------------------

REFUSED = {
    "127.0.0.1": "loopback", "10.0.0.5": "private", "172.16.0.1": "private", "192.168.1.1": "private",
    "169.254.169.254": "link-local (cloud metadata)", "100.64.0.1": "shared (CGNAT)", "0.0.0.0": "unspecified",
    "255.255.255.255": "broadcast", "224.0.0.1": "multicast", "240.0.0.1": "reserved", "192.0.2.1": "documentation",
    "::1": "IPv6 loopback", "::": "IPv6 unspecified", "fe80::1": "IPv6 link-local", "fe80::1%2": "with a scope",
    "fc00::1": "unique local", "fd12:3456::1": "unique local", "fec0::1": "site-local", "ff02::1": "multicast",
    "ff0e::1": "global multicast", "2001:db8::1": "documentation", "100::1": "discard",
    "::ffff:127.0.0.1": "IPv4-mapped loopback", "::ffff:10.0.0.1": "IPv4-mapped private",
    "::ffff:169.254.169.254": "IPv4-mapped link-local",
    "::127.0.0.1": "IPv4-compatible loopback", "::10.0.0.1": "IPv4-compatible private",
    "::8.8.8.8": "IPv4-compatible (deprecated, never routed)", "::ffff:0:7f00:1": "SIIT loopback",
    "64:ff9b::7f00:1": "NAT64 of loopback", "64:ff9b::a00:1": "NAT64 of private",
    "64:ff9b::a9fe:a9fe": "NAT64 of link-local",
    "64:ff9b:1::7f00:1": "local-use NAT64", "64:ff9b:1::808:808": "local-use NAT64 of a public address",
    "2002:7f00:1::": "6to4 of loopback", "2002:a00:1::1": "6to4 of private", "2002:c0a8:101::1": "6to4 of private",
    "2001:0:808:808::80ff:fffe": "Teredo: public server, loopback client",
    "2001:0:a00:1::f7f7:f7f7": "Teredo: private server, public client",
    "2001::1": "Teredo", "not an address": "not an address", "": "empty",
}
PASSED = [
    "8.8.8.8", "1.1.1.1", "151.101.1.69", "2606:4700:4700::1111", "2001:4860:4860::8888",
    "::ffff:8.8.8.8",  # IPv4-mapped public: that IPv4 address
    "64:ff9b::808:808",  # NAT64 of a public address (IPv6-only networks with DNS64)
    "2002:808:808::1",  # 6to4 of a public address
]


def test_teredo_addresses_in_the_table_hold_what_they_say():
    server, client = ipaddress.IPv6Address("2001:0:808:808::80ff:fffe").teredo
    assert (str(server), str(client)) == ("8.8.8.8", "127.0.0.1")
    server, client = ipaddress.IPv6Address("2001:0:a00:1::f7f7:f7f7").teredo
    assert (str(server), str(client)) == ("10.0.0.1", "8.8.8.8")


@pytest.mark.parametrize("address", list(REFUSED))
def test_special_use_addresses_are_not_public(address):
    assert not is_public_address(address), REFUSED[address]


@pytest.mark.parametrize("address", PASSED)
def test_public_addresses_pass(address):
    assert is_public_address(address)


def test_a_name_is_looked_up_once_and_every_address_must_be_public():
    calls = []

    def resolver(host, port, *args):
        calls.append(host)
        return _answers("1.1.1.1", "2606:4700:4700::1111", "1.1.1.1")

    assert public_addresses("lora.test", 443, resolver) == ("1.1.1.1", "2606:4700:4700::1111")
    assert calls == ["lora.test"]
    with pytest.raises(NotPublic, match="only public addresses"):  # one private answer spoils the name
        public_addresses("mixed.test", 443, lambda *a: _answers("1.1.1.1", "::ffff:127.0.0.1"))
    with pytest.raises(NotPublic, match="nowhere.test does not resolve"):
        public_addresses("nowhere.test", 443, lambda *a: (_ for _ in ()).throw(socket.gaierror(-2, "unknown")))


# -- the transport: the IP in the URL, the name in Host and TLS -----------------------------


def test_the_transport_connects_to_the_checked_ip_and_keeps_the_name_for_host_and_sni(monkeypatch):
    seen: list[tuple[httpx.URL, str, str]] = []  # what reached httpx's own transport, per attempt

    def answer(self, request):
        seen.append((request.url, request.headers["host"], request.extensions["sni_hostname"]))
        if request.url.host == "2606:4700:4700::1111":  # the first address cannot be reached
            raise httpx.ConnectError("unreachable", request=request)
        return httpx.Response(200, content=b"ok")

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", answer)
    transport = PinnedTransport(["2606:4700:4700::1111", "93.184.215.14"])
    with httpx.Client(transport=transport) as client:
        response = client.get("https://LoRA.Example.com:8443/a/b.safetensors?sig=x%2By")
    assert response.content == b"ok" and len(seen) == 2
    for (url, host, sni), ip in zip(seen, ("2606:4700:4700::1111", "93.184.215.14")):
        assert url.host == ip and url.port == 8443 and url.raw_path == b"/a/b.safetensors?sig=x%2By"
        assert (host, sni) == ("lora.example.com:8443", "lora.example.com")
    assert str(seen[0][0]).startswith("https://[2606:4700:4700::1111]:8443/")
    with httpx.Client(transport=PinnedTransport(["93.184.215.14"])) as client:
        client.get("https://bücher.example/x.safetensors")
    assert seen[-1][1:] == ("xn--bcher-kva.example", "xn--bcher-kva.example")
    with pytest.raises(httpx.ConnectError), httpx.Client(transport=PinnedTransport(["2606:4700:4700::1111"])) as client:
        client.get("https://lora.example.com/x.safetensors")


@pytest.fixture
def rebinding(monkeypatch):
    return rebinding_name(monkeypatch)


@pytest.fixture
def trap():
    listener = Trap()
    yield listener
    listener.close()


@pytest.fixture
def site(tmp_path, monkeypatch):
    server = Site(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca))  # httpx trusts the test CA
    yield server
    server.close()


def fetcher(tmp_path, rebinding, **fields) -> LoraFetcher:
    return LoraFetcher(cache_dir=tmp_path / "cache", getaddrinfo=rebinding["resolver"], **fields)


# -- the rebinding name ------------------------------------------------------------------


def test_a_rebinding_name_is_fetched_from_the_checked_address_only(tmp_path, rebinding, trap):
    url = f"https://rebind.test:{trap.port}/lora.safetensors"
    with pytest.raises(LoraError, match=r"the download failed \(ConnectError\)"):
        fetcher(tmp_path, rebinding).fetch(1, url)
    assert rebinding["lookups"] == 1
    assert rebinding["connects"] == [(PUBLIC, trap.port)]
    assert trap.accepted == 0


def test_a_download_over_tls_checks_the_name_and_never_reaches_the_rebound_address(
    tmp_path, rebinding, trap, site,
):
    rebinding["routes"][trap.port] = site.port  # PUBLIC:trap.port is the "public" server
    url = f"https://rebind.test:{trap.port}/lora.safetensors"
    lora = fetcher(tmp_path, rebinding).fetch(1, url)
    assert lora.file.read_bytes() == site.body and lora.trigger_words == ("sks style",)
    assert site.requests == [("/lora.safetensors", f"rebind.test:{trap.port}", "rebind.test")]
    assert (rebinding["lookups"], trap.accepted) == (1, 0)


def test_a_certificate_for_another_name_is_refused(tmp_path, rebinding, monkeypatch):
    other = Site(tmp_path, name="other.test")
    monkeypatch.setenv("SSL_CERT_FILE", str(other.ca))
    rebinding["routes"][443] = other.port
    try:
        with pytest.raises(LoraError, match=r"the download failed \(ConnectError\)"):
            fetcher(tmp_path, rebinding).fetch(1, "https://rebind.test/lora.safetensors")
        assert other.requests == []
    finally:
        other.close()


# -- the download cache ------------------------------------------------------------------

KEYS = {
    "HTTPS://Example.COM:443/LoRA.safetensors#part": "https://example.com/LoRA.safetensors",
    "https://example.com:8443/a.safetensors": "https://example.com:8443/a.safetensors",
    "https://example.com/a.safetensors?": "https://example.com/a.safetensors",
    "https://example.com/a.safetensors?sig=1&x=2#f": "https://example.com/a.safetensors?sig=1&x=2",
    "https://EXAMPLE.com./a.safetensors": "https://example.com./a.safetensors",
}


@pytest.mark.parametrize("url", list(KEYS))
def test_url_keys_are_normalised_with_the_query_kept(url):
    assert url_key(url) == KEYS[url]


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _store(cache: DownloadCache, key: str, content: bytes) -> Path:
    partial = cache.new_partial()
    partial.write_bytes(content)
    return cache.store(key, partial, _digest(content))


def test_the_cache_keeps_under_its_byte_cap_least_recently_used_first(tmp_path):
    cache = DownloadCache(tmp_path, max_bytes=250)
    a, b = _store(cache, "a", b"a" * 100), _store(cache, "b", b"b" * 100)
    _store(cache, "c", b"c" * 100)  # 300 > 250: a, the oldest, goes
    assert not a.exists() and cache.lookup("a") is None and b.exists()
    assert cache.lookup("b") == b  # b is now the most recently used
    _store(cache, "d", b"d" * 100)  # c goes, not b
    assert cache.lookup("c") is None and cache.lookup("b") == b and cache.lookup("d") is not None
    assert sum(size for _, size in cache.files()) <= 250
    assert list(tmp_path.glob("*.part")) == []
    # Another cache object on the folder (a restart) knows the same keys.
    assert DownloadCache(tmp_path, max_bytes=250).lookup("b") == b


def test_files_in_use_are_not_removed(tmp_path):
    cache = DownloadCache(tmp_path, max_bytes=250)
    a = _store(cache, "a", b"a" * 100)
    DownloadCache.hold(a)
    try:
        _store(cache, "b", b"b" * 100)
        _store(cache, "c", b"c" * 100)  # b goes, a is in use
        assert a.exists() and cache.lookup("b") is None
        DownloadCache.hold(cache.lookup("c"))
        with pytest.raises(CacheFull, match="in use"):
            _store(cache, "d", b"d" * 100)
        assert list(tmp_path.glob("*.part")) == [] and cache.lookup("d") is None
    finally:
        DownloadCache.release(a)
        DownloadCache.release(tmp_path / f"{_digest(b'c' * 100)}.safetensors")
    _store(cache, "d", b"d" * 100)  # released: a, the oldest, goes
    assert not a.exists()


def test_query_variants_of_one_file_share_one_copy_but_keep_their_own_key(tmp_path):
    cache = DownloadCache(tmp_path, max_bytes=10_000)
    first = _store(cache, url_key("https://h.test/x.safetensors?sig=1"), b"same" * 10)
    second = _store(cache, url_key("https://h.test/x.safetensors?sig=2"), b"same" * 10)
    assert first == second and len(cache.files()) == 1
    assert cache.lookup(url_key("https://h.test/x.safetensors?sig=2#f")) == first
    assert cache.lookup(url_key("https://h.test/x.safetensors")) is None  # no signature, no copy
    assert "sig=" not in (tmp_path / "index.json").read_text()  # keys are stored hashed


def test_the_fetcher_caches_downloads_and_dedupes_query_variants(tmp_path, rebinding, site):
    rebinding["routes"][443] = site.port
    fetch = fetcher(tmp_path, rebinding)
    first = fetch.fetch(1, "https://rebind.test/lora.safetensors?sig=1")
    rebinding["lookups"] = 0  # the name answers PUBLIC again (a fresh name for the next check)
    again = fetch.fetch(1, "https://REBIND.test:443/lora.safetensors?sig=1#x")
    rebinding["lookups"] = 0
    variant = fetch.fetch(1, "https://rebind.test/lora.safetensors?sig=2")
    assert first.file == again.file == variant.file
    assert len(site.requests) == 2 and len(list((tmp_path / "cache").glob("*.safetensors"))) == 1


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "no content-length"])
def test_a_download_larger_than_the_cache_is_refused_with_the_limit(tmp_path, rebinding, site, declared):
    rebinding["routes"][443] = site.port
    site.body, site.declare_length = tiny_safetensors(size=2**20 + 64), declared
    with pytest.raises(LoraError, match=r"is larger than the 1 MB LoRA download cache \(STUDIO_LORA_CACHE_MB\)"):
        fetcher(tmp_path, rebinding, cache_bytes=2**20).fetch(1, "https://rebind.test/big.safetensors")
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []  # no partial left behind
    rebinding["lookups"] = 0
    with pytest.raises(LoraError, match=r"is larger than the 1 MB download limit"):
        fetcher(tmp_path, rebinding, max_bytes=2**20).fetch(1, "https://rebind.test/big.safetensors")
    with pytest.raises(LoraError, match="LoRA downloads are off"):
        fetcher(tmp_path, rebinding, cache_bytes=0).fetch(1, "https://rebind.test/big.safetensors")


def test_the_file_a_fetcher_handed_out_stays_until_its_next_fetch(tmp_path, rebinding, site):
    """The backend loads a LoRA right after fetching it: another fetcher's download must not
    remove it meanwhile; once the first fetcher moves on, it may go."""
    rebinding["routes"][443] = site.port
    size = len(site.body)
    first, second = (fetcher(tmp_path, rebinding, cache_bytes=size * 3 // 2) for _ in range(2))
    loading = first.fetch(1, "https://rebind.test/a.safetensors").file
    site.body = tiny_safetensors(trigger="another")  # same size, other content
    rebinding["lookups"] = 0
    with pytest.raises(LoraError, match="the LoRA download cache is full of LoRAs in use"):
        second.fetch(1, "https://rebind.test/b.safetensors")
    assert loading.exists()
    with pytest.raises(LoraError):  # the first fetcher's next fetch (of anything) releases its file
        first.fetch(1, "https://example.com/next.bin")
    rebinding["lookups"] = 0
    assert second.fetch(1, "https://rebind.test/b.safetensors").trigger_words == ("another",)
    assert not loading.exists()


def test_the_cache_size_setting():
    assert Settings.from_env({}).lora_cache_mb == Settings().lora_cache_mb == 8192
    assert Settings.from_env({"STUDIO_LORA_CACHE_MB": "100"}).lora_cache_mb == 100
    with pytest.raises(SettingsError, match="STUDIO_LORA_CACHE_MB must be at least 0"):
        Settings.from_env({"STUDIO_LORA_CACHE_MB": "-1"})
