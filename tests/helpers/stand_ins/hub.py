"""A stand-in for the Hugging Face Hub on 127.0.0.1 (point HF_ENDPOINT at `url`).

It speaks the part of the Hub's protocol that `huggingface_hub` uses to list a repo's files
and to read a file or a byte range of it:
    GET /api/models/<owner>/<name>/tree/<revision>   the repo's files (JSON)
    GET|HEAD /<owner>/<name>/resolve/<revision>/<file>   the file; Range: bytes=a-b gives 206
A repo or file it does not hold answers 404 with the Hub's X-Error-Code (RepoNotFound,
EntryNotFound), which `huggingface_hub` turns into its own errors. `requests` records each
(method, path, Range) it answered.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
from urllib.parse import unquote, urlsplit


class StandInHub:
    """`fallback`: what every repo not added holds (listed as `lora.safetensors`, served under
    any .safetensors name), or None: such a repo is not found."""

    def __init__(self, fallback: bytes | None = None) -> None:
        self.fallback = fallback
        self.repos: dict[str, dict[str, bytes]] = {}  # "owner/name" -> {file name: bytes}
        self.sizes: dict[tuple[str, str], int] = {}  # a header-only file's declared whole size
        self.requests: list[tuple[str, str, str | None]] = []
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                hub._answer(self, body=True)

            def do_HEAD(self) -> None:
                hub._answer(self, body=False)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, repo: str, filename: str, data: bytes, declared_size: int | None = None) -> str:
        """Put `data` at `repo`/`filename`; its resolve URL."""
        self.repos.setdefault(repo, {})[filename] = data
        if declared_size is not None:
            self.sizes[(repo, filename)] = declared_size
        return f"{self.url}/{repo}/resolve/main/{filename}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _files(self, repo: str) -> dict[str, bytes] | None:
        if repo in self.repos:
            return self.repos[repo]
        return {"lora.safetensors": self.fallback} if self.fallback is not None else None

    def _answer(self, handler: http.server.BaseHTTPRequestHandler, body: bool) -> None:
        path = unquote(urlsplit(handler.path).path)
        self.requests.append((handler.command, path, handler.headers.get("Range")))
        tree = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(/.*)?", path)
        if tree:
            repo, held = tree.group(1), self._files(tree.group(1))
            if held is None:
                return _send(handler, 404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"}, body)
            files = [{"type": "file", "path": name, "size": self.sizes.get((repo, name), len(data)),
                      "oid": hashlib.sha1(data).hexdigest()} for name, data in held.items()]
            return _send(handler, 200, json.dumps(files).encode(), {"Content-Type": "application/json"}, body)
        resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if not resolve:
            return _send(handler, 404, b"not found", {}, body)
        repo, filename, held = resolve.group(1), resolve.group(3), self._files(resolve.group(1))
        if held is None:
            return _send(handler, 404, b"Repository not found", {"X-Error-Code": "RepoNotFound"}, body)
        data = held.get(filename)
        if data is None and repo not in self.repos and filename.endswith(".safetensors"):
            data = self.fallback
        if data is None:
            return _send(handler, 404, b"Entry not found", {"X-Error-Code": "EntryNotFound"}, body)
        total = self.sizes.get((repo, filename), len(data))
        headers = {"ETag": f'"{hashlib.sha1(data).hexdigest()}"', "X-Repo-Commit": "0" * 40,
                   "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", handler.headers.get("Range") or "")
        if wanted:
            start = int(wanted.group(1))
            end = min(int(wanted.group(2) or total - 1), len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{total}"
            return _send(handler, 206, data[start:end + 1], headers, body)
        return _send(handler, 200, data, headers, body)


def _send(handler: http.server.BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str],
          body: bool) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    if body:
        handler.wfile.write(data)


_session_hub: StandInHub | None = None


def session_hub() -> StandInHub:
    """The test session's Hub (started at first use): every repo it is not told about holds one
    FLUX.2 [dev] LoRA header, so a run with any `owner/name` LoRA passes the header check."""
    global _session_hub
    if _session_hub is None:
        from tests.helpers.lora_headers import lora_header_file

        _session_hub = StandInHub(fallback=lora_header_file("flux2-dev", "ai-toolkit", rank=16, every=4))
    return _session_hub
