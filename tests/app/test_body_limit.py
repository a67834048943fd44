"""Every request body is bounded before it is parsed (STUDIO_MAX_BODY_MB, here 1 MB): each
kind of endpoint answers 413 naming the limit, whether the body declares its size or is
streamed without one (chunked), and a normal run still works (the middleware itself:
backend/body_limit.py)."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from tests.helpers.api import edit_args
from tests.helpers.app import connect, launch_app, stop_app

LIMIT = 2**20
ENDPOINTS = {
    "queue/join (every page event)": ("/gradio_api/queue/join", "application/json"),
    "call (the API)": ("/gradio_api/call/edit", "application/json"),
    "run (the API)": ("/gradio_api/run/edit", "application/json"),
    "upload": ("/gradio_api/upload", "multipart/form-data; boundary=x"),
    "mcp": ("/gradio_api/mcp/", "application/json"),
}
# How each body starts: a JSON prompt, or a file part, that goes on and on.
STARTS = {
    "application/json": b'{"data": ["',
    "multipart/form-data; boundary=x": (
        b'--x\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n"
    ),
}


@pytest.fixture(scope="module")
def small_app(fake, tmp_path_factory):
    launched = launch_app(tmp_path_factory.mktemp("small-body-app"), fake, STUDIO_MAX_BODY_MB="1")
    yield launched
    stop_app(launched)


def post(url: str, path: str, content_type: str, *, declared: int | None = None,
         chunks: list[bytes] = (), end: bool = True) -> tuple[int, bytes]:
    """A POST over a plain socket: headers declaring `declared` bytes and no body (the server
    must answer without waiting for it), or `chunks` sent with Transfer-Encoding: chunked
    (and the last, empty chunk when `end`). Returns the status and the body of the answer."""
    address = urlsplit(url)
    head = [f"POST {path} HTTP/1.1", f"Host: {address.netloc}", f"Content-Type: {content_type}"]
    head.append(f"Content-Length: {declared}" if declared is not None else "Transfer-Encoding: chunked")
    with socket.create_connection((address.hostname, address.port), timeout=60) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        for chunk in chunks:
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        if chunks and end:
            sock.sendall(b"0\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        head_bytes, _, body = answer.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        while len(body) < int(headers.get("content-length", 0)):
            body += sock.recv(65536)
    return int(lines[0].split()[1]), body


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_a_body_declared_over_the_limit_is_refused_before_it_is_read(small_app, fake, name):
    path, content_type = ENDPOINTS[name]
    status, body = post(small_app.url, path, content_type, declared=LIMIT + 1)
    assert status == 413
    assert json.loads(body)["error"] == (
        "The request is larger than the 1 MB this server accepts (STUDIO_MAX_BODY_MB).")
    assert not fake.jobs


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_a_streamed_body_is_cut_at_the_limit(small_app, fake, name):
    """A chunked body (no Content-Length) is counted as it arrives: past 1 MB the route gets no
    more of it, and the answer is the same 413, whatever the route would have said."""
    path, content_type = ENDPOINTS[name]
    # A JSON prompt that goes on and on: the route would read it all before parsing. The client
    # stops one byte past the limit and waits (an endless stream gets the same answer, but the
    # server closes the connection with the rest unread, which resets it before a test reads).
    start = STARTS[content_type]
    chunks = [start + b"x" * (65_536 - len(start))] + [b"x" * 65_536] * 15 + [b"x"]
    assert sum(map(len, chunks)) == LIMIT + 1
    status, body = post(small_app.url, path, content_type, chunks=chunks, end=False)
    assert status == 413 and b"1 MB" in body
    assert not fake.jobs


def test_within_the_limit_a_run_and_a_small_streamed_body_still_work(small_app, images):
    client = connect(small_app)
    assert client.predict(**edit_args(images), api_name="/edit")[1].startswith("✅ Done")
    # Under the limit, a chunked body reaches the route (which says what it thinks of it).
    status, _ = post(small_app.url, "/gradio_api/call/edit", "application/json", chunks=[b'{"data": []}'])
    assert status != 413
