"""A local "public" HTTPS server for the LoRA fetchers' tests: a certificate authority made
here for a test name, a server on 127.0.0.1 that records each request's path, Host and TLS
SNI (and answers Range requests), and a listener that must never be connected to.

Tests reach it through a patched `socket.create_connection` (the name resolves to a public
address for the check; connecting to that address reaches this server).
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import re
import socket
import ssl
import struct
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PUBLIC = "8.8.8.8"  # what the rebinding name answers to the check (never really connected to)


def certificates(folder: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA (its certificate file) and a server certificate and key for `name`."""
    now = datetime.datetime.now(datetime.timezone.utc)
    valid = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=1))

    def certificate(subject: str, key, issuer: str, signer, ca: bool):
        builder = x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        builder = builder.issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        builder = builder.public_key(key.public_key()).serial_number(x509.random_serial_number())
        builder = builder.not_valid_before(valid[0]).not_valid_after(valid[1])
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("test CA", ca_key, "test CA", ca_key, ca=True)
    leaf = certificate(name, key, "test CA", ca_key, ca=False)
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
    ))
    return paths


def tiny_safetensors(size: int = 4, trigger: str = "sks style") -> bytes:
    """A valid safetensors file with one float32 tensor of size/4 values (no torch needed)."""
    count = max(1, size // 4)
    header = {"__metadata__": {"trigger_word": trigger}, "w": {"dtype": "F32", "shape": [count],
                                                               "data_offsets": [0, 4 * count]}}
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + b"\0" * (4 * count)


class Site:
    """An HTTPS server on 127.0.0.1 with a certificate for `name`, serving `body`;
    it records each request's path, Host header and TLS SNI."""

    def __init__(self, folder: Path, name: str = "rebind.test"):
        ca, cert, key = certificates(folder, name)
        self.ca, self.name = ca, name
        self.body = tiny_safetensors()  # what every path serves, unless `files` names the path
        self.files: dict[str, bytes] = {}
        self.ranges = True  # False: a server that ignores Range and sends the whole body
        self.redirects: dict[str, str] = {}  # path -> where a 302 sends it
        self.declare_length = True  # False: no Content-Length, the body ends when the connection closes
        self.requests: list[tuple[str, str, str | None]] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        sni: list[str | None] = []
        context.sni_callback = lambda sock, server_name, ctx: sni.append(server_name)
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                site.requests.append((self.path, self.headers["Host"], sni[-1] if sni else None))
                if self.path in site.redirects:
                    self.send_response(302)
                    self.send_header("Location", site.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = site.files.get(self.path, site.body)
                wanted = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range") or "")
                if wanted and site.ranges:
                    start, end = int(wanted.group(1)), min(int(wanted.group(2)), len(body) - 1)
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
                    body = body[start:end + 1]
                else:
                    self.send_response(200)
                if site.declare_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def app_env(self) -> dict[str, str]:
        """The environment of an app (tests.helpers.app.launch_app) that reaches this server
        as a public https host named `name` (tests/helpers/stand_ins/public_name)."""
        stand_in = Path(__file__).resolve().parent / "stand_ins" / "public_name"
        return {"PYTHONPATH": str(stand_in), "STANDIN_PUBLIC_HOST": self.name,
                "STANDIN_PUBLIC_PORT": str(self.port), "SSL_CERT_FILE": str(self.ca)}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Trap:
    """A TCP listener on 127.0.0.1 that counts the connections it gets (there must be none)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            connection.close()

    def close(self):
        self.sock.close()


def answers(*addresses: str, port: int = 443) -> list[tuple]:
    """What socket.getaddrinfo returns for `addresses`."""
    family = {4: socket.AF_INET, 6: socket.AF_INET6}
    return [
        (family[ipaddress.ip_address(a).version], socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses
    ]


def rebinding_name(monkeypatch) -> dict:
    """`rebind.test` answers PUBLIC to its first lookup and 127.0.0.1 to every later one, in
    the fetcher's resolver and in socket.getaddrinfo alike; a connection to PUBLIC goes to
    `routes[port]` when set (the "public" server), else is refused."""
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.create_connection
    state: dict = {"lookups": 0, "connects": [], "routes": {}}

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "rebind.test":
            return real_getaddrinfo(host, port, *args, **kwargs)
        state["lookups"] += 1
        return answers(PUBLIC if state["lookups"] == 1 else "127.0.0.1", port=port)

    def create_connection(address, *args, **kwargs):
        state["connects"].append(tuple(address[:2]))
        if address[0] == PUBLIC:
            if address[1] not in state["routes"]:
                raise ConnectionRefusedError("unreachable in the test")
            address = ("127.0.0.1", state["routes"][address[1]])
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    state["resolver"] = getaddrinfo
    return state
