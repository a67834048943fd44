"""The HTTP plumbing of the fake: reading each request into a ``Recorded``, and writing JSON,
bytes, chunked SSE, or nothing (a client that went away is noticed, not crashed on)."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.helpers.fake_fal.records import Recorded


class Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a burst of connections (the load tests) would
    # overflow it and see resets that fal's own servers do not give.
    request_queue_size = 128


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every reply carries Content-Length or is chunked + close
    server_version = "fake-fal/1.0"

    def log_message(self, *args) -> None:  # keep pytest output quiet
        pass

    def _handle(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        rec = Recorded(method=self.command, path=url.path, query=dict(urllib.parse.parse_qsl(url.query)),
                       headers={k.lower(): v for k, v in self.headers.items()},
                       body=self.rfile.read(length) if length else b"", time=time.time())
        try:
            self.server.fake._dispatch(self, rec)  # type: ignore[attr-defined]
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # a bug in the fake should surface as a 500, not a hung client
            self.send_json(500, {"detail": f"fake_fal internal error: {e!r}", "error_type": "internal_error"})

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def send_bytes(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, body: Any, headers: dict | None = None) -> None:
        headers = dict(headers or {})
        ctype = headers.pop("content-type", "application/json")
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_bytes(status, data, ctype, headers)

    def start_sse(self, headers: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.close_connection = True

    def send_chunk(self, data: bytes) -> bool:
        """Write one chunk; False when the client has gone away."""
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            return True
        except (BrokenPipeError, ConnectionResetError, OSError):
            return False

    def end_chunks(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass

    def idle(self, seconds: float, stopping: threading.Event) -> bool:
        """Sleep ``seconds`` while watching the socket; False if the peer hung up (or we are stopping).

        A write to a half-closed socket can still succeed, so watching for EOF is the reliable way to
        notice that a client closed its stream (httpx sends nothing else on this connection meanwhile).
        """
        deadline = time.monotonic() + seconds
        while True:
            if stopping.is_set() or self._peer_closed():
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(0.02, left))

    def _peer_closed(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True
