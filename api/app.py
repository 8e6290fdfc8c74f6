"""The HTTP service: platforms screen uploads, individuals enroll, check their exposure and erase.

Every route declares who may call it (`ACCESS`): public, an individual's deletion token, or API
keys of given roles. A test enumerates the routes and checks that each is declared and enforced.
Errors share one JSON shape: {"error": {"code": "...", "message": "..."}}.

The client address that rate limits count by is the socket's peer. X-Forwarded-For is read only
when that peer is one of `Settings.trusted_proxies` (none by default), walking the header from
the right past trusted proxies: anyone can write the header, only a proxy's last hop is true.
Failed authentications (a wrong API key, a wrong deletion token or subject id) have their own,
lower, limit per address; an address past it is answered 429 before any key or token is checked.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import pages
from api.errors import ApiError, BodyRefused, error_response
from scanner import disclosure
from scanner.errors import FacetraceError

ACCESS: dict[tuple[str, str], str] = {}  # (method, path) -> "public" | "token" | "roles:a,b"


@dataclass(frozen=True)
class Settings:
    max_upload_bytes: int = 2 << 30  # a screened upload larger than this is refused (413)
    # an enrollment form is refused (413) past any of these, while it streams: memory for a form
    # is bounded by max_form_bytes, and by enrollments_in_flight for all of them
    max_form_bytes: int = 64 << 20  # the whole form (photos and fields)
    max_photo_bytes: int = 20 << 20  # one photo: a phone's largest JPEG or HEIC is under 15 MB
    max_photos: int = 10
    max_body_bytes: int = 64 << 10  # any other request's body (JSON, the token forms); screens have their own
    form_timeout_s: float = 60.0  # a form must arrive within this (408): a slow client holds a slot
    # enrollments (keyless) accepted at once, from the first byte of the form to the answer; more are
    # answered 503 before their form is read
    enrollments_in_flight: int = 4
    keyless_workers: int = 1  # threads that analyse enrollment photos, at a lower priority (keyless_nice)
    keyless_nice: int = 10  # Linux nice value of those threads: screens come first on a busy machine
    key_rate_per_minute: int = 6000  # requests per API key
    address_rate_per_minute: int = 600  # requests per client address without a key (and for public routes)
    # wrong keys, tokens or subject ids per client address: enough for a person who mistypes their
    # token, far too few to guess a key or a token (both carry 256 random bits anyway)
    auth_failure_rate_per_minute: int = 10
    trusted_proxies: tuple[str, ...] = ()  # addresses or networks whose X-Forwarded-For is believed
    lab_networks: tuple[str, ...] = ()  # internal networks webhooks may go to (default: public addresses only)
    interactive_docs: bool = False  # /docs and /redoc: their pages load scripts from a CDN
    webhook_retries: int = 4
    webhook_backoff_s: float = 0.5
    # what an unverified subject learns (scanner.disclosure): counts of findings at least
    # disclosure_delay_s old, the cutoff rounded down to disclosure_granule_s; their webhook gets
    # a digest of those counts when they change, checked every digest_interval_s (0: never)
    disclosure_delay_s: float = disclosure.DELAY_S
    disclosure_granule_s: float = disclosure.GRANULE_S
    digest_interval_s: float = 3600


class RateLimiter:
    """Token buckets per caller, refilled continuously."""

    def __init__(self):
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def allow(self, who: str, per_minute: int) -> bool:
        """Take a token from `who`'s bucket; False when it is empty."""
        now = time.monotonic()
        with self.lock:
            tokens = self._tokens(who, per_minute, now)
            if tokens < 1.0:
                self.buckets[who] = (tokens, now)
                return False
            self.buckets[who] = (tokens - 1.0, now)
            return True

    def exhausted(self, who: str, per_minute: int) -> bool:
        """True when `who`'s bucket is empty; takes nothing."""
        with self.lock:
            return self._tokens(who, per_minute, time.monotonic()) < 1.0

    def _tokens(self, who: str, per_minute: int, now: float) -> float:
        tokens, last = self.buckets.get(who, (float(per_minute), now))
        return min(float(per_minute), tokens + (now - last) * per_minute / 60.0)


class FairGate:
    """At most `n` holders at once, admitted in the order they arrived.

    threading.Semaphore does not promise arrival order (a thread that arrives as a slot frees can
    take it ahead of those already waiting); a queue of screens needs first come, first served, or
    an unlucky request keeps waiting while later ones go through.
    """

    def __init__(self, n: int):
        self._cond = threading.Condition()
        self._n, self._next, self._serving, self._active = n, 0, 0, 0

    def __enter__(self):
        with self._cond:
            ticket = self._next
            self._next += 1
            self._cond.wait_for(lambda: ticket == self._serving and self._active < self._n)
            self._serving += 1
            self._active += 1
            self._cond.notify_all()  # the next ticket may fit too
        return self

    def __exit__(self, *exc) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify_all()


class Service:
    """What every request shares: the workspace, its registry, the key store, the limits."""

    def __init__(self, workspace: str | None, db_url: str | None, settings: Settings):
        from indexes.store.keys import ServiceStore
        from scanner.acquire.http import parse_networks
        from scanner.pipeline import open_store
        from scanner.registry import open_registry

        self.settings = settings
        self.trusted_proxies = parse_networks(settings.trusted_proxies)
        self.lab_networks = parse_networks(settings.lab_networks)
        self.store, self.root = open_store(workspace, db_url)
        self.registry = open_registry(self.store, self.root)
        self.keys = ServiceStore(self.store.engine)
        self.limiter = RateLimiter()
        self.lock = threading.RLock()  # the registry's index is changed and searched under it
        # one screen per core at a time, in arrival order: with 50 clients the thread pool alone ran
        # 40 at once, each slowed by all the others (p99 16 s; 3 s with the gate, docs/api.md)
        self.screens = FairGate(os.cpu_count() or 1)
        # keyless work has its own budget: enrollment photos are analysed by these threads only, at a
        # lower priority, outside the registry lock (six anonymous enrollments of 100-megapixel PNGs
        # held a platform's screen up for 19 s when they were analysed under it: benchmarks/load_enroll.py)
        self.keyless = ThreadPoolExecutor(
            max_workers=settings.keyless_workers,
            thread_name_prefix="keyless",
            initializer=_lower_priority,
            initargs=(settings.keyless_nice,),
        )
        give_back_freed_memory()
        self.uploads = Path(self.root) / "uploads"
        self.uploads.mkdir(mode=0o700, exist_ok=True)
        self.deliveries: list[threading.Thread] = []

    def audit(self, action: str, actor: str, subject_id: str | None, details: dict) -> None:
        self.registry.store.audit(action, actor, subject_id, details)

    def client_address(self, request: Request) -> str:
        """The address limits count by: the peer, or what trusted proxies say they received from."""
        peer = request.client.host if request.client else "unknown"
        if not self.trusted_proxies or not self._trusted(peer):
            return peer
        hops = [h.strip() for v in request.headers.getlist("x-forwarded-for") for h in v.split(",") if h.strip()]
        address = peer
        for hop in reversed(hops):  # each trusted proxy appended what it saw; stop at the first that is not one
            address = _address(hop)
            if not self._trusted(address):
                return address
        return address

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip.version == net.version and ip in net for net in self.trusted_proxies)

    def locked_out(self, who: str) -> bool:
        return self.limiter.exhausted(f"auth-failures:{who}", self.settings.auth_failure_rate_per_minute)

    def auth_failed(self, who: str) -> None:
        self.limiter.allow(f"auth-failures:{who}", self.settings.auth_failure_rate_per_minute)

    def send_digests(self) -> list[str]:
        """Deliver the delayed counts of every unverified subject with a webhook (scanner.disclosure)."""
        s = self.settings
        return disclosure.send_digests(
            self.registry.store,
            self.keys,
            actor="facetrace-service",
            delay_s=s.disclosure_delay_s,
            granule_s=s.disclosure_granule_s,
            lab_networks=self.lab_networks,
            retries=s.webhook_retries,
            backoff_s=s.webhook_backoff_s,
        )

    def digest_loop(self, stop: threading.Event) -> None:
        """Send digests every `digest_interval_s` until `stop` is set (the service's lifespan runs it)."""
        import logging

        while not stop.wait(self.settings.digest_interval_s):
            try:
                self.send_digests()
            except Exception:  # a failed round is logged and the next one tried; the service goes on
                logging.getLogger("facetrace.api").exception("sending digests failed")

    def notify(self, owner_kind: str, owner_id: str, payload: dict) -> bool:
        """Deliver a notification to the owner's webhook, if any, in the background."""
        from scanner.notify import deliver

        hook = self.keys.webhook(owner_kind, owner_id)
        if hook is None:
            return False
        s = self.settings

        def run():
            deliver(
                hook["url"],
                payload,
                hook["secret"],
                lambda action, details: self.audit(
                    action, "facetrace-service", owner_id if owner_kind == "subject" else None, details
                ),
                f"{owner_kind}:{owner_id}",
                retries=s.webhook_retries,
                backoff_s=s.webhook_backoff_s,
                lab_networks=self.lab_networks,
            )

        t = threading.Thread(target=run, name="webhook", daemon=True)
        t.start()
        # keep only deliveries still running: a long-lived service must not hold every thread it ran
        self.deliveries = [d for d in self.deliveries if d.is_alive()] + [t]
        return True


def _lower_priority(nice: int) -> None:
    """Lower the calling thread's CPU priority (Linux: the nice value is per thread); elsewhere nothing."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (AttributeError, OSError):
        pass


def give_back_freed_memory() -> None:
    """Have glibc hand every freed block of 1 MiB or more back to the system at once (elsewhere: nothing).

    glibc raises its mmap threshold each time a large block is freed (up to 32 MiB), so the next
    uploads, photos and decoded images come from the heap, which it rarely gives back: measured
    on a 100-megapixel PNG, the process stayed 490 MB larger after three analyses (777 MB resident
    against a 289 MB start), and 42 MB larger with this fixed threshold. The cost is an mmap per
    large block, which is small beside decoding it.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is not None:
        m_mmap_threshold = -3
        mallopt(m_mmap_threshold, 1 << 20)


def access(kind: str, *roles: str):
    """A dependency that authorises a request: "public", "token" (checked by the route), or "key"."""

    def check(request: Request):
        svc: Service = request.app.state.service
        who = svc.client_address(request)
        request.state.client_address = who
        key = _key_from(request)
        caller = None
        if (key or kind == "token") and svc.locked_out(who):
            # answered before the key or token is looked at: a right guess looks like a wrong one
            raise ApiError(429, "rate_limited", "too many failed authentications from this address; wait a minute")
        if key:
            caller = svc.keys.check_key(key)
            if caller is None:
                svc.auth_failed(who)
                raise ApiError(401, "invalid_key", "the API key is not valid or was revoked")
        if caller is not None:
            if not svc.limiter.allow(f"key:{caller['key_id']}", svc.settings.key_rate_per_minute):
                raise ApiError(429, "rate_limited", "too many requests for this API key; slow down")
        elif not svc.limiter.allow(f"addr:{who}", svc.settings.address_rate_per_minute):
            raise ApiError(429, "rate_limited", "too many requests from this address; slow down")
        if kind == "token" and request.url.path.startswith("/v1/") and not request.headers.get("x-deletion-token"):
            raise ApiError(401, "missing_token", "send your deletion token in the X-Deletion-Token header")
        if kind == "key":
            if caller is None:
                raise ApiError(401, "missing_key", "this endpoint needs an API key (Authorization: Bearer KEY)")
            if caller["role"] not in roles:
                raise ApiError(
                    403,
                    "forbidden_role",
                    f"role {caller['role']} may not call this endpoint (needs {' or '.join(roles)})",
                )
        request.state.caller = caller
        return caller

    check.access = kind if kind != "key" else "roles:" + ",".join(roles)
    return check


def _address(hop: str) -> str:
    """An X-Forwarded-For entry as an address: '[::1]:443' and '1.2.3.4:80' lose their port."""
    hop = hop.strip()
    candidates = [hop]
    if hop.startswith("["):
        candidates.append(hop[1:].split("]", 1)[0])
    elif hop.count(":") == 1:
        candidates.append(hop.split(":", 1)[0])
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return hop[:64]  # not an address: still one bucket per value, of bounded size


def _key_from(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def create_app(workspace: str | None = None, db_url: str | None = None, settings: Settings | None = None) -> FastAPI:
    from starlette.formparsers import MultiPartParser

    from api import routes

    settings = settings or Settings()
    # enrollment photos stay in memory (each bounded by max_photo_bytes, while it streams): nothing
    # is spooled to /tmp
    MultiPartParser.spool_max_size = settings.max_photo_bytes + BodyLimits.HEAD_LIMIT
    docs = settings.interactive_docs

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        stop = threading.Event()
        if settings.digest_interval_s > 0:
            threading.Thread(target=app.state.service.digest_loop, args=(stop,), name="digests", daemon=True).start()
        try:
            yield
        finally:
            stop.set()

    app = FastAPI(
        title="facetrace",
        version=_version(),
        lifespan=lifespan,
        description="Screen uploads for enrolled people's faces; enroll, check exposure, erase. "
        'Errors: {"error": {"code", "message"}}.',
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
    )
    app.state.service = Service(workspace, db_url, settings)
    app.add_middleware(BodyLimits, settings=settings)
    app.add_middleware(SecurityHeaders)  # added last, so outermost: refusals of BodyLimits carry the headers

    @app.exception_handler(ApiError)
    async def api_error(request, exc: ApiError):
        if not request.url.path.startswith("/v1/") and request.url.path != "/openapi.json":
            return pages.error_page(exc)  # a refusal before a page's handler ran is a page too
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(FacetraceError)
    async def engine_error(request, exc: FacetraceError):
        """Every error of scanner.errors, with the status and code its class declares."""
        if exc.http_status >= 500:
            import logging

            logging.getLogger("facetrace.api").error("%s: %s", type(exc).__name__, exc)
        return await api_error(request, ApiError(exc.http_status, exc.code, str(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):
        if isinstance(exc, BodyRefused):
            return await api_error(request, exc.error)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()))
        return error_response(422, "invalid_request", f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def internal_error(_request, exc: Exception):
        import logging

        logging.getLogger("facetrace.api").exception("internal error")
        response = error_response(500, "internal", f"internal error ({type(exc).__name__}); see the service log")
        # Starlette answers this from outside the middleware stack: the headers are added here
        for name, value in SecurityHeaders.HEADERS:
            response.headers.setdefault(name.decode(), value.decode())
        return response

    routes.register(app, access, ACCESS)
    pages.register(app, access, ACCESS)
    described = [("/openapi.json", "GET")]
    if docs:
        described += [("/docs", "GET"), ("/docs/oauth2-redirect", "GET"), ("/redoc", "GET")]
    for path, method in described:
        ACCESS[(method, path)] = "public"
    return app


def server_config(app: FastAPI, host: str, port: int, **kwargs):
    """The uvicorn configuration `facetrace serve` (and the tests' live server) runs the app with.

    uvicorn's proxy headers are off: by default it believes X-Forwarded-For from 127.0.0.1, so
    any local client, or a proxy that passes the header through, could pick its own address.
    The app reads the header itself, from `Settings.trusted_proxies` only.
    """
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, proxy_headers=False, **{"log_level": "warning", **kwargs})


class SecurityHeaders:
    """Add headers that keep responses out of frames, caches, MIME sniffing and Referer headers.

    The enrollment answer and page show a deletion token once: no cache may keep them
    (Cache-Control: no-store), no other site may frame them to trick a click (X-Frame-Options,
    frame-ancestors), and no link may carry their URL away (Referrer-Policy). JSON gets a CSP
    that allows nothing; a page sets its own. Pure ASGI, so request bodies stay streamed.
    """

    HEADERS = (
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-store"),
        (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    )
    EXEMPT_CSP = ("/docs", "/redoc")  # when enabled, their pages run scripts from a CDN

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        csp = not scope["path"].startswith(self.EXEMPT_CSP)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [
                    (k, v) for k, v in self.HEADERS if k not in present and (csp or k != b"content-security-policy")
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimits:
    """Limit request bodies while they stream in, before the service holds them (pure ASGI).

    Enrollment forms (`FORMS`, public: anybody can send one) are admitted `enrollments_in_flight`
    at a time, from their first byte to their answer; more are answered 503 `busy` unread. A
    declared Content-Length past `max_form_bytes` is answered 413 before a byte of the body is
    read. While a form streams, its total, each part (`max_photo_bytes`), the number of photos
    (`max_photos`) and of fields, and the time it takes (`form_timeout_s`: 408) are counted, and
    the first limit passed ends it. Starlette's parser alone read a whole form before the route
    could look at it (20 photos of 60 MB took the service from 0.97 to 2.17 GB) and took 1,000
    files. Every other body but a screen's (streamed to disk under `max_upload_bytes`, after
    its key is checked) is limited to `max_body_bytes`: FastAPI reads a JSON body before the
    route's key or token is checked.
    """

    FORMS = frozenset({("POST", "/v1/subjects"), ("POST", "/enroll"), ("POST", "/v1/verifications")})
    STREAMED = frozenset({("POST", "/v1/screen")})
    HEAD_LIMIT = 16 << 10  # a part's headers: a browser sends about 150 bytes
    MAX_FIELDS = 8  # an enrollment form has two (consent, consent_version), a verification two

    def __init__(self, app, settings: Settings):
        self.app, self.settings = app, settings
        self.in_flight = 0  # enrollment forms admitted and not yet answered (changed on the event loop only)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or (scope["method"], scope["path"]) in self.STREAMED:
            return await self.app(scope, receive, send)
        import asyncio

        s = self.settings
        form = (scope["method"], scope["path"]) in self.FORMS
        limit = s.max_form_bytes if form else s.max_body_bytes
        what = "the form (photos and fields)" if form else "the request body"
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            return await _refuse(
                scope,
                receive,
                send,
                ApiError(413, "too_large", f"{what} is {declared} bytes; the limit is {limit} bytes"),
            )
        if form and self.in_flight >= s.enrollments_in_flight:
            return await _refuse(
                scope,
                receive,
                send,
                ApiError(503, "busy", "too many enrollments are in progress; try again in a few seconds"),
            )
        meter = (
            _PartMeter.of(scope, s.max_photo_bytes + self.HEAD_LIMIT, s.max_photos, self.MAX_FIELDS, self.HEAD_LIMIT)
            if form
            else None
        )
        deadline = time.monotonic() + s.form_timeout_s
        received, done = 0, False

        async def limited_receive():
            nonlocal received, done
            if done:  # the body is in: what follows is a wait for the client to disconnect
                return await receive()
            if form:
                try:
                    message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    raise BodyRefused(
                        408,
                        "too_slow",
                        f"the form did not arrive within {s.form_timeout_s:g} s; send it again on a faster connection",
                    ) from None
            else:
                message = await receive()
            if message["type"] != "http.request":
                done = True
                return message
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                raise BodyRefused(413, "too_large", f"{what} passes the limit of {limit} bytes")
            why = meter.feed(chunk) if meter is not None and chunk else None
            if why:
                raise BodyRefused(413, "too_large", why)
            done = not message.get("more_body", False)
            return message

        if form:
            self.in_flight += 1
        try:
            await self.app(scope, limited_receive, send)
        finally:
            if form:
                self.in_flight -= 1


class _PartMeter:
    """Follow a multipart body as it streams past: the size of each part, and how many are files."""

    @classmethod
    def of(cls, scope, max_part: int, max_files: int, max_fields: int, head_limit: int) -> _PartMeter | None:
        from starlette.datastructures import Headers
        from starlette.formparsers import parse_options_header

        kind, options = parse_options_header(Headers(scope=scope).get("content-type", ""))
        boundary = options.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            return None  # not a multipart form: the parser refuses it, within the total limit
        return cls(boundary, max_part, max_files, max_fields, head_limit)

    def __init__(self, boundary: bytes, max_part: int, max_files: int, max_fields: int, head_limit: int):
        self.delimiter = b"--" + boundary
        self.max_part, self.max_files, self.max_fields, self.head_limit = max_part, max_files, max_fields, head_limit
        self.tail = b""  # a delimiter may straddle two chunks: the last bytes wait for the next one
        self.size = 0  # bytes of the current part so far (before the first delimiter: the preamble)
        self.head: bytearray | None = None  # the current part's first bytes, until its headers end
        self.files = self.fields = 0

    def feed(self, chunk: bytes) -> str | None:
        """Count `chunk`; return why the form is refused, or None."""
        data = self.tail + chunk
        start = 0
        while (i := data.find(self.delimiter, start)) >= 0:
            why = self._grow(data[start:i])
            if why:
                return why
            self.size, self.head = 0, bytearray()
            start = i + len(self.delimiter)
        cut = max(start, len(data) - len(self.delimiter) + 1)
        self.tail = data[cut:]
        return self._grow(data[start:cut])

    def _grow(self, part: bytes) -> str | None:
        self.size += len(part)
        if self.size > self.max_part:
            return f"a photo passes the limit of {self.max_part - self.head_limit} bytes"
        if self.head is None:
            return None
        self.head += part[: self.head_limit + 4 - len(self.head)]
        if self.head.startswith(b"--"):  # the closing delimiter: what follows it is no part
            self.head = None
            return None
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            return "a part's headers are too long" if len(self.head) > self.head_limit else None
        headers, self.head = bytes(self.head[:end]), None
        if re.search(rb"(?i)filename\*?\s*=", headers):
            self.files += 1
            if self.files > self.max_files:
                return f"give at most {self.max_files} photos"
        else:
            self.fields += 1
            if self.fields > self.max_fields:
                return f"the form has more than {self.max_fields} fields"
        return None


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def _refuse(scope, receive, send, exc: ApiError) -> None:
    """Answer `exc` without reading the request's body: JSON for the API, a page for the pages."""
    path = scope["path"]
    if path.startswith("/v1/") or path == "/openapi.json":
        response = error_response(exc.status, exc.code, exc.message)
    else:
        response = pages.error_page(exc)
    await response(scope, receive, send)


def _version() -> str:
    from scanner import __version__

    return __version__
