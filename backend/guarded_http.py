"""HTTPS downloads from public addresses only, connected to the very address that was checked.

A name is looked up once (`public_addresses`); every address it gives must be public
(`is_public_address`), else nothing is fetched. The connection then goes to those addresses
themselves (`PinnedTransport`): the request's URL names the IP, while the Host header and the
TLS SNI and certificate check keep the name. No second lookup happens, so a name that
answers a public address to the check and 127.0.0.1 to the connection (DNS rebinding) never
reaches 127.0.0.1. `pinned_get` follows no redirect; `guarded_get` follows a few, each new
name looked up and checked again. Proxies from the environment are not used (a proxy would
make its own lookup).

This follows the pattern of the `safehttpx` package (a transport that rewrites the URL's host
and sets `sni_hostname`) without using it: safehttpx is async only (the LoRA fetcher runs in
a worker thread), asks Google's DNS over HTTPS for a second answer when the system's has no
public address, accepts a name when any one of its addresses is public (here all must be),
and its `is_public_ip` passes IPv4-compatible, NAT64 and 6to4 forms of 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin

import httpx

# socket.getaddrinfo's signature: (host, port, family=0, type=0, proto=0, flags=0) -> [(family, ..., sockaddr)]
Resolver = Callable[..., Sequence[tuple[Any, ...]]]

# IPv6 forms that stand for an IPv4 address in their last 32 bits. The IPv4-compatible
# (::a.b.c.d, deprecated), SIIT (::ffff:0:a.b.c.d) and local-use NAT64 forms are never routed
# to a public host: refused whatever they hold. The well-known NAT64 prefix is how IPv6-only
# networks with DNS64 reach IPv4 hosts: judged by the IPv4 address it holds.
_NEVER_PUBLIC_V6 = tuple(ipaddress.IPv6Network(n) for n in ("::/96", "::ffff:0:0:0/96", "64:ff9b:1::/48"))
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class Unfetchable(Exception):
    """A URL that is not fetched, with the reason (its text is shown to the person)."""


class NotPublic(Unfetchable):
    """A name that does not resolve, or resolves to an address that is not public."""


def system_getaddrinfo(*args: Any, **kwargs: Any) -> Sequence[tuple[Any, ...]]:
    """socket.getaddrinfo, looked up at each call (tests replace it)."""
    return socket.getaddrinfo(*args, **kwargs)


def is_public_address(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether `address` is a public unicast address, judging each IPv4 address an IPv6 form
    holds (IPv4-mapped, 6to4, NAT64) by itself. Teredo (2001::/32: a server and a client
    address), IPv4-compatible, SIIT, local-use NAT64 and site-local addresses are refused."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv4Address):
        return ip.is_global and not ip.is_multicast  # is_global passes 224.0.0.0/4
    if ip.ipv4_mapped is not None:  # Python versions judge ::ffff:a.b.c.d differently: judge a.b.c.d
        return is_public_address(ip.ipv4_mapped)
    if ip.teredo is not None or ip.is_site_local or any(ip in net for net in _NEVER_PUBLIC_V6):
        return False
    if ip.sixtofour is not None:
        return is_public_address(ip.sixtofour)
    if ip in _NAT64:
        return is_public_address(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def public_addresses(
    host: str, port: int, getaddrinfo: Resolver = system_getaddrinfo, *, any_address: bool = False,
) -> tuple[str, ...]:
    """Every address `host` resolves to, in the resolver's order, looked up once.

    Raises NotPublic when the name does not resolve or any of its addresses is not public
    (a name with both is refused: one of them could be picked by whoever connects), unless
    `any_address` (a name trusted whatever it resolves to)."""
    try:
        infos = getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        raise NotPublic(f"{host} does not resolve") from None
    found = [str(info[4][0]) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]
    addresses = tuple(dict.fromkeys(found))
    if not addresses:
        raise NotPublic(f"{host} does not resolve")
    if not any_address and not all(is_public_address(a) for a in addresses):
        raise NotPublic("only public addresses are fetched (not loopback or private networks)")
    return addresses


class PinnedTransport(httpx.HTTPTransport):
    """Connects only to `addresses` (checked already), trying them in order when a connection
    cannot be made; the URL's name stays the Host header, the TLS SNI and the name the
    server's certificate must match."""

    def __init__(self, addresses: Sequence[str], **kwargs: Any):
        super().__init__(**kwargs)
        if not addresses:
            raise ValueError("no address to connect to")
        self.addresses = tuple(addresses)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        request.headers["Host"] = url.netloc.decode("ascii")  # host[:port], the name in IDNA form
        request.extensions = {**request.extensions, "sni_hostname": url.raw_host.decode("ascii")}
        failed: httpx.ConnectError | None = None
        for address in self.addresses:
            request.url = url.copy_with(host=address)
            try:
                return super().handle_request(request)
            except httpx.ConnectError as error:  # nothing was sent: the next address may answer
                failed = error
        assert failed is not None
        raise failed


@contextmanager
def pinned_get(url: str, addresses: Sequence[str], timeout: httpx.Timeout,
               headers: dict[str, str] | None = None) -> Iterator[httpx.Response]:
    """A streamed GET of `url` from the checked `addresses`: no redirects, no proxy."""
    transport = PinnedTransport(addresses)
    with httpx.Client(transport=transport, trust_env=False, follow_redirects=False, timeout=timeout) as client:
        with client.stream("GET", url, headers=headers) as response:
            yield response


def declared_size(response: httpx.Response) -> int:
    """The Content-Length the server announces (0 when none or not a number)."""
    try:
        return int(response.headers.get("content-length") or 0)
    except ValueError:
        return 0


def is_trusted(host: str, trusted: Sequence[str]) -> bool:
    """Whether `host` is one of `trusted`: names, or "*.name" for any name under it."""
    host = host.lower().rstrip(".")
    return any(host == t or (t.startswith("*.") and host.endswith(t[1:])) for t in trusted)


@contextmanager
def guarded_get(
    url: str, timeout: httpx.Timeout, *, getaddrinfo: Resolver = system_getaddrinfo,
    headers: dict[str, str] | None = None, redirects: int = 5, trusted: Sequence[str] = (),
) -> Iterator[httpx.Response]:
    """A streamed GET of an https `url` from public addresses only (`pinned_get`), following
    at most `redirects` redirects, each new name looked up and checked again. Names matching
    `trusted` (is_trusted) may resolve to any address. Raises Unfetchable for a URL it will
    not fetch, httpx.HTTPError when the connection fails."""
    for _ in range(redirects + 1):
        parts = httpx.URL(url)
        if parts.scheme != "https" or not parts.raw_host:
            raise Unfetchable("only https:// URLs are read")
        host = parts.raw_host.decode("ascii")
        addresses = public_addresses(host, parts.port or 443, getaddrinfo, any_address=is_trusted(host, trusted))
        with pinned_get(url, addresses, timeout, headers=headers) as response:
            if response.is_redirect and response.headers.get("location"):
                url = urljoin(url, response.headers["location"])
                continue
            yield response
            return
    raise Unfetchable(f"more than {redirects} redirects")
