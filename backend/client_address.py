"""Every request's `X-Forwarded-For` replaced by the address uvicorn found for its client.

The run quotas and the upload share tell visitors apart by address: the connection's, or
`X-Forwarded-For`'s when the connection comes from a proxy uvicorn trusts (`FORWARDED_ALLOW_IPS`,
by default this machine). Gradio's MCP server runs a queued tool by calling the app again from
this machine (a `gradio_client` on loopback) with the caller's own headers. Loopback is trusted,
so a header the MCP caller wrote itself would name the visitor: measured on 2026-12-06, an MCP
caller from another machine with a new `X-Forwarded-For` on each call ran 5 edits on the
server's key with a quota of 2 an hour.

`PinnedForwardedFor` runs inside uvicorn's own proxy-header handling, when the client's address
is already settled (from the connection, or from a trusted proxy's header), and writes that
address as the request's only `X-Forwarded-For`. Whatever copies the headers onward (the MCP
loopback) then carries the address the visitor really came from, and nothing the client wrote.

`visitor_address` is what the quotas and the upload share count by. An IPv6 host is given a
whole /64 by its network, and picks a new address in it at will (privacy addresses rotate by
themselves): counted by address, it would have 2^64 hourly quotas. So an IPv6 address counts by
its /64 network, as rate limiters commonly do; an IPv4 address (or one written as IPv6, ::ffff:a.b.c.d)
by itself.
"""

from __future__ import annotations

import ipaddress

from backend.body_limit import ASGIApp, Receive, Scope, Send

HEADER = b"x-forwarded-for"
IPV6_PREFIX = 64  # what one IPv6 subscriber is given, and so one visitor


def visitor_address(host: str | None) -> str:
    """The address one visitor is counted by: an IPv4 address, an IPv6 address's /64 network
    ("2001:db8:1:2::/64"), or `host` as it is when it is not an address ("unknown" for none)."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


class PinnedForwardedFor:
    """Set `X-Forwarded-For` to the client's address as resolved (see the module's docstring)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            headers = [(name, value) for name, value in scope.get("headers", ()) if name.lower() != HEADER]
            if client:  # none on a Unix socket: then no client may name itself either
                headers.append((HEADER, str(client[0]).encode("latin-1")))
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)
