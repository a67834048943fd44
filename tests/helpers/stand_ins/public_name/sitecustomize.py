"""A public host name for an app under test (put this folder on its PYTHONPATH).

Python imports `sitecustomize` at start-up. When STANDIN_PUBLIC_HOST is set, that name
resolves to a public address (8.8.8.8, never really connected to), and a connection to that
address on port 443 reaches 127.0.0.1:STANDIN_PUBLIC_PORT instead: a local https server
(whose CA the app trusts through SSL_CERT_FILE) stands for a LoRA host on the internet,
reached through the app's own guarded downloader, which checks the name, pins the address and
keeps the name for TLS. Every other name and address is left alone.
"""

from __future__ import annotations

import os
import socket

_HOST = os.environ.get("STANDIN_PUBLIC_HOST")
_PUBLIC = "8.8.8.8"

if _HOST:
    _port = int(os.environ["STANDIN_PUBLIC_PORT"])
    _real_getaddrinfo, _real_connect = socket.getaddrinfo, socket.create_connection

    def _getaddrinfo(host, port, *args, **kwargs):
        if host == _HOST:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (_PUBLIC, port))]
        return _real_getaddrinfo(host, port, *args, **kwargs)

    def _create_connection(address, *args, **kwargs):
        if tuple(address[:2]) == (_PUBLIC, 443):
            address = ("127.0.0.1", _port)
        return _real_connect(address, *args, **kwargs)

    socket.getaddrinfo = _getaddrinfo
    socket.create_connection = _create_connection
