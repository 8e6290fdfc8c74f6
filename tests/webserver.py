"""A loopback HTTP(S) server for the acquisition tests and benchmark: files, redirects, failures.

Routes are set per test: `server.route("/a.zip", File(data))`. Every request is logged with its
headers so tests can check what the client sent (Range, If-Range). HTTPS uses a self-signed
certificate made with `cryptography` for 127.0.0.1 and localhost.

The fixtures built on these helpers (`server`, `fake_dns`, `loopback_only`,
`no_proxy_for_loopback`) live in tests/conftest.py, so test modules use them without importing.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# The lab option the loopback tests pass (--lab-network): without it facetrace refuses to connect
# to loopback, private, link-local and reserved addresses (docs/acquisition.md).
LOOPBACK = ("127.0.0.0/8", "::1/128")


@dataclass
class File:
    """A file served with Content-Length, an ETag, and byte ranges unless `ranges=False`.

    `cut_after`: the first `cut_times` responses stop after this many body bytes and close the
    connection (a transfer cut off half-way). `size` + `block` serve a generated body of `size`
    bytes (a repeated block) without holding it in memory.
    """

    data: bytes = b""
    content_type: str = "application/octet-stream"
    etag: str | None = '"v1"'
    last_modified: str | None = None
    ranges: bool = True
    cut_after: int | None = None
    cut_times: int = 1 << 30
    size: int | None = None
    block: bytes | None = None
    announce: bool = True  # send Content-Length; without it the body ends when the connection closes
    chunked: bool = False
    extra_headers: dict = field(default_factory=dict)
    served: int = 0

    @property
    def length(self) -> int:
        return self.size if self.size is not None else len(self.data)

    def body(self, start: int, end: int):
        """Yield the bytes [start, end) in chunks."""
        if self.block is None:
            for i in range(start, end, 1 << 16):
                yield self.data[i : min(end, i + (1 << 16))]
            return
        n = len(self.block)
        pos = start
        while pos < end:
            off = pos % n
            piece = self.block[off : min(n, off + end - pos)]
            yield piece
            pos += len(piece)


@dataclass
class Redirect:
    to: str
    status: int = 302


@dataclass
class Status:
    """Answer `status` (with `headers`) the first `times` requests, then hand over to `then`."""

    status: int
    headers: dict = field(default_factory=dict)
    times: int = 1 << 30
    then: object = None
    body: bytes = b""
    count: int = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep pytest's output clean
        pass

    def do_GET(self):
        server = self.server
        server.log.append({"path": self.path, "headers": dict(self.headers.items()), "client": self.client_address})
        path = self.path
        if path.startswith("http://") or path.startswith("https://"):  # a proxy request: absolute URI
            server.proxied.append(path)
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        route = server.routes.get(path.split("?")[0])
        self._answer(route)

    def _answer(self, route):
        if route is None:
            return self._simple(404, b"not found")
        if isinstance(route, Status):
            route.count += 1
            if route.count <= route.times or route.then is None:
                return self._simple(route.status, route.body, route.headers)
            return self._answer(route.then)
        if isinstance(route, Redirect):
            return self._simple(route.status, b"", {"Location": route.to})
        if callable(route):
            return route(self)
        return self._file(route)

    def _simple(self, status: int, body: bytes, headers: dict | None = None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _file(self, f: File):
        total = f.length
        start, end, status = 0, total, 200
        want = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if want and f.ranges and (if_range is None or if_range in (f.etag, f.last_modified)):
            m = re.match(r"bytes=(\d+)-$", want)
            if m:
                start = int(m.group(1))
                if start >= total:
                    return self._simple(416, b"", {"Content-Range": f"bytes */{total}"})
                status = 206
        self.send_response(status)
        self.send_header("Content-Type", f.content_type)
        if f.etag:
            self.send_header("ETag", f.etag)
        if f.last_modified:
            self.send_header("Last-Modified", f.last_modified)
        if f.ranges:
            self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{total}")
        for k, v in f.extra_headers.items():
            self.send_header(k, v)
        cut = None
        f.served += 1
        if f.cut_after is not None and f.served <= f.cut_times:
            cut = f.cut_after
        if f.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif f.announce:
            self.send_header("Content-Length", str(end - start))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        sent = 0
        try:
            for piece in f.body(start, end):
                if cut is not None and sent + len(piece) > cut:
                    piece = piece[: cut - sent]
                    self._write(piece, f.chunked)
                    self.close_connection = True
                    return  # cut off: the connection closes with the body unfinished
                self._write(piece, f.chunked)
                sent += len(piece)
            if f.chunked:
                self.wfile.write(b"0\r\n\r\n")
            if not f.announce and not f.chunked:
                self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _write(self, piece: bytes, chunked: bool):
        if not piece:
            return
        if chunked:
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        else:
            self.wfile.write(piece)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class LoopbackServer:
    """A server on 127.0.0.1 in a thread; `tls_cert` (a (cert, key) PEM pair) makes it HTTPS."""

    def __init__(self, tls: tuple[Path, Path] | None = None):
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.routes, self.httpd.log, self.httpd.proxied = {}, [], []
        self.sni: list[str | None] = []  # the server name each TLS client asked for
        self.scheme = "http"
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            ctx.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        # a short poll: shutdown() waits up to one interval, and every test stops a server
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def log(self) -> list[dict]:
        return self.httpd.log

    @property
    def proxied(self) -> list[str]:
        return self.httpd.proxied

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def route(self, path: str, what) -> str:
        self.httpd.routes[path] = what
        return self.url(path)


class FakeDNS:
    """Chosen answers for chosen names, without asking any resolver; other names go to the system.

    `answer(name, [addresses of the 1st lookup], [of the 2nd], ...)`: the last list answers every
    later lookup; an empty list answers "no such name". `lookups[name]` counts the lookups.
    """

    def __init__(self, monkeypatch):
        self.answers: dict[str, list[list[str]]] = {}
        self.lookups: dict[str, int] = {}
        real = socket.getaddrinfo

        def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
            name = host.decode() if isinstance(host, bytes) else host
            if name not in self.answers:
                return real(host, port, family, type, proto, flags)
            n = self.lookups[name] = self.lookups.get(name, 0) + 1
            plan = self.answers[name]
            ips = plan[min(n, len(plan)) - 1]
            if not ips:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            port = int(port or 0)
            out = []
            for ip in ips:
                if ":" in ip:
                    out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0)))
                else:
                    out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)))
            return [a for a in out if family in (0, socket.AF_UNSPEC, a[0])]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def answer(self, name: str, *lookups: list[str]) -> None:
        self.answers[name] = [list(ips) for ips in lookups]


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for 127.0.0.1 and localhost and its key; return their paths."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "facetrace test server")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


# Runs the command as its child and prints that child's peak RSS. The indirection matters: Linux
# carries the exec'ing process's memory high-water mark into the new program's ru_maxrss, so a
# child started straight from a large process (pytest after a scan) reports the parent's size.
_MEASURE = (
    "import resource, subprocess, sys; rc = subprocess.run(sys.argv[2:], stdout=open(sys.argv[1], 'w')).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)"
)


def run_measured(cmd: list[str], stdout: Path, env: dict | None = None) -> tuple[int, float, str]:
    """Run `cmd` with its stdout in the file `stdout`; return (exit code, its peak RSS in MiB, its stderr)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _MEASURE, str(stdout), *cmd], capture_output=True, text=True, env=env)
    lines = out.stdout.split()
    return out.returncode, int(lines[-1]) / 1024 if lines else float("nan"), out.stderr  # ru_maxrss: KiB on Linux
