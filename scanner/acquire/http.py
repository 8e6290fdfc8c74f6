"""Download one URL to a `.part` file with requests, recording every request made.

Why each choice:

- Redirects are followed here, not by requests (`allow_redirects=False`), so every hop's status,
  headers, time and peer address is recorded, and a hop to a non-HTTP scheme is refused.
- The body is read from urllib3 as served (`decode_content=False`) in 1 MiB chunks and hashed on
  the way: memory stays flat whatever the size, byte counts compare with Content-Length, and
  Range offsets mean the same bytes on a resume. `Accept-Encoding: identity` asks the server not
  to compress what it serves.
- The peer address is read from the response's socket while the body is still unread (urllib3
  2's `HTTPResponse.connection`; requests exposes no public way, psf/requests#2158). With a proxy
  it is the proxy's address, and the record says which proxy.
- A cut-off transfer stays in its `.part` file with the validator it was served with (a strong
  ETag, else Last-Modified). The next attempt, in this run or a later one, asks for the rest
  (`Range: bytes=N-` with `If-Range`) and keeps it only if the server answers 206 with a
  Content-Range that continues exactly at N with the same total; anything else restarts at 0.
- Retries (connection refused or reset, timeouts, a cut-off body, 429 and 5xx) wait
  `backoff x 2^n`, or the server's Retry-After, up to `max_backoff`. DNS and TLS failures and
  other 4xx are not retried: waiting does not change their answer.
- Only public addresses are connected to. A link is untrusted input: a dump's page or a
  redirect could point at 127.0.0.1, 169.254.169.254 (cloud metadata) or the office network,
  and the answer would be stored as evidence. Every new connection resolves its host once,
  refuses it if any address is loopback, private, link-local, multicast, reserved or otherwise
  not global (`ipaddress`), and connects to the address it checked: no second lookup, so no
  DNS rebinding between the check and the connection. The Host header, TLS server name (SNI)
  and certificate check keep the URL's name. Redirect hops open their own connections and are
  checked the same way. `lab_networks` (--lab-network) exempts networks the operator names.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import re
import socket
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from scanner.models import AcquireOptions, HttpExchange, without_password

log = logging.getLogger(__name__)

CHUNK = 1 << 20
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)

ProgressCallback = Callable[[int, "int | None"], None]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LAB_HINT = "only public addresses are fetched unless --lab-network allows their network"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class FetchResult:
    """What `fetch` did: complete (the `.part` file holds every byte) or failed with a reason."""

    complete: bool
    reason: str | None
    final_url: str | None = None
    http_status: int | None = None
    content_type: str | None = None
    content_disposition: str | None = None
    bytes: int = 0
    expected_bytes: int | None = None
    sha256: str | None = None
    md5: str | None = None
    exchanges: list[HttpExchange] = field(default_factory=list)
    resumed_from: dict | None = None
    notes: list[str] = field(default_factory=list)
    part_kept: bool = False  # a failed transfer whose bytes stay in the .part file for a resume


class _Hashes:
    def __init__(self):
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)

    def update(self, chunk: bytes) -> None:
        self.sha256.update(chunk)
        self.md5.update(chunk)


class Fetcher:
    """One download: `fetch(url, folder)` leaves the bytes in `folder/data.part` and returns a FetchResult."""

    def __init__(
        self,
        options: AcquireOptions,
        *,
        lab_networks: tuple = (),
        sleep: Callable[[float], None] = time.sleep,
        on_progress: ProgressCallback | None = None,
    ):
        import requests

        from scanner import __version__

        self.options = options
        self.sleep = sleep
        self.on_progress = on_progress
        self.lab_networks = parse_networks(lab_networks)
        self.session = guarded_session(self.lab_networks)
        self.session.trust_env = True  # HTTP(S)_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE apply
        self.user_agent = options.user_agent or f"facetrace/{__version__} python-requests/{requests.__version__}"
        if options.insecure:
            self.verify: bool | str = False
        elif options.ca_bundle:
            self.verify = options.ca_bundle
        else:
            self.verify = True

    # -- the download ---------------------------------------------------------------------------

    def fetch(self, url: str, folder: Path, acquisition_id: str) -> FetchResult:
        """Download `url` into `folder` (data.part, state.json), resuming what an earlier attempt kept."""
        part, state_file = folder / "data.part", folder / "state.json"
        out = FetchResult(complete=False, reason=None)
        self.out = out
        state = _read_state(state_file, url)
        offset, validator = self._resume_point(part, state, out)
        hashes = _Hashes()
        if offset:
            _hash_file(part, hashes)
        else:
            part.write_bytes(b"")
            state = {"requested_url": url, "acquisition_ids": []}
        earlier_ids = list(state.get("acquisition_ids", []))
        target, hops, retries_used, restarted = url, 0, 0, False
        while True:
            headers = {"User-Agent": self.user_agent, "Accept-Encoding": "identity", "Accept": "*/*"}
            if offset:
                headers["Range"] = f"bytes={offset}-"
                headers["If-Range"] = validator
            resp, exchange = self._send(target, headers, hop=hops)
            if resp is None:
                retryable = exchange["retryable"]
                if retryable and retries_used < self.options.retries:
                    self._wait(self._backoff(retries_used), exchange)
                    retries_used += 1
                    continue
                return self._fail(out, exchange["error"], part, state, state_file, acquisition_id)
            status = resp.status_code
            if status in REDIRECT_STATUSES and resp.headers.get("Location"):
                location = urljoin(target, resp.headers["Location"])
                self._record(exchange, resp, redirect_to=location)
                resp.close()
                hops += 1
                if urlsplit(location).scheme not in ("http", "https"):
                    return self._fail(
                        out, f"redirect to a non-HTTP URL refused: {location}", part, state, state_file, acquisition_id
                    )
                if hops > self.options.max_redirects:
                    return self._fail(
                        out,
                        f"too many redirects: more than {self.options.max_redirects} (raise --max-redirects)",
                        part,
                        state,
                        state_file,
                        acquisition_id,
                    )
                target = location
                continue
            out.final_url, out.http_status = target, status
            out.content_type = resp.headers.get("Content-Type")
            out.content_disposition = resp.headers.get("Content-Disposition")
            if status in RETRY_STATUSES:
                wait = _retry_after(resp.headers.get("Retry-After"))
                why = f"HTTP {status} {resp.reason} from {target}"
                self._record(exchange, resp, error=why)
                resp.close()
                if retries_used < self.options.retries and (wait is None or wait <= self.options.max_backoff):
                    self._wait(self._backoff(retries_used) if wait is None else wait, exchange)
                    retries_used += 1
                    continue
                if wait is not None and wait > self.options.max_backoff:
                    why += (
                        f"; it asked to retry after {wait:.0f} s, longer than the {self.options.max_backoff:.0f} s cap"
                    )
                return self._fail(out, why, part, state, state_file, acquisition_id)
            total = None
            if status == 206:
                got = _content_range(resp.headers.get("Content-Range"))
                known = state.get("total")
                if (
                    not offset
                    or got is None
                    or got[0] != offset
                    or got[2] is None
                    or got[1] != got[2] - 1
                    or (known is not None and got[2] != known)
                ):
                    self._record(
                        exchange,
                        resp,
                        error=f"206 with Content-Range {resp.headers.get('Content-Range')!r} "
                        f"does not continue the {offset} bytes kept: restarting from 0",
                    )
                    resp.close()
                    if restarted:
                        return self._fail(
                            out,
                            "the server's partial answers do not fit together: "
                            "the file cannot be downloaded consistently",
                            part,
                            state,
                            state_file,
                            acquisition_id,
                        )
                    restarted, offset, hashes, earlier_ids = True, 0, _Hashes(), []
                    part.write_bytes(b"")
                    state = {"requested_url": url, "acquisition_ids": []}
                    continue
                total = got[2]
                if out.resumed_from is None and earlier_ids:
                    out.resumed_from = {"offset": offset, "acquisition_ids": earlier_ids, "validator": validator}
            elif status == 200:
                if offset:
                    out.notes.append(
                        f"asked for the rest from byte {offset}, the server sent the whole file "
                        "(no range support, or the file changed): restarted from byte 0"
                    )
                    offset, hashes, earlier_ids = 0, _Hashes(), []
                    state = {"requested_url": url, "acquisition_ids": []}
                    out.resumed_from = None
                length = _int(resp.headers.get("Content-Length"))
                total = length
            elif status == 416 and offset and not restarted:
                self._record(
                    exchange, resp, error=f"416: the server refused the range from byte {offset}: restarting from 0"
                )
                resp.close()
                restarted, offset, hashes, earlier_ids = True, 0, _Hashes(), []
                part.write_bytes(b"")
                state = {"requested_url": url, "acquisition_ids": []}
                continue
            else:
                why = f"HTTP {status} {resp.reason} from {target}"
                self._record(exchange, resp, error=why)
                resp.close()
                return self._fail(out, why, part, state, state_file, acquisition_id)
            out.expected_bytes = total
            if total is not None and total > self.options.max_bytes:
                why = (
                    f"size limit: the server announces {total:,} bytes, over the limit of "
                    f"{self.options.max_bytes:,} bytes (raise it with --max-bytes)"
                )
                self._record(exchange, resp, error=why)
                resp.close()
                return self._fail(out, why, part, state, state_file, acquisition_id, keep=False)
            state.update({"requested_url": url, "final_url": target, "total": total})
            if status == 200 or resp.headers.get("ETag") or resp.headers.get("Last-Modified"):
                # a 206 may omit the validators; the ones the whole file came with then still hold
                state.update({"etag": resp.headers.get("ETag"), "last_modified": resp.headers.get("Last-Modified")})
            encoding = (resp.headers.get("Content-Encoding") or "identity").strip().lower()
            if encoding != "identity" and not any("Content-Encoding" in n for n in out.notes):
                out.notes.append(
                    f"the server sent Content-Encoding: {encoding} although asked for identity: the "
                    "bytes are stored as served (still encoded), and the hashes are of those bytes"
                )
            # written before the body: a process killed or interrupted mid-transfer leaves a part that resumes
            _write_state(state_file, {**state, "acquisition_ids": [*state.get("acquisition_ids", []), acquisition_id]})
            error, kept = self._stream(resp, part, offset, hashes, total, exchange)
            size = part.stat().st_size
            if error == "over_limit":
                return self._fail(
                    out,
                    f"size limit: more than {self.options.max_bytes:,} bytes received "
                    f"(the server {'announced ' + format(total, ',') if total else 'gave no length'}); "
                    "raise it with --max-bytes",
                    part,
                    state,
                    state_file,
                    acquisition_id,
                    keep=False,
                )
            if error is None and total is not None and size != total:
                error = f"the body ended after {size - offset:,} of {total - offset:,} bytes"
            if error is not None:
                why = (
                    f"truncated: got {size:,} of {total:,} bytes"
                    if total is not None
                    else f"truncated: got {size:,} bytes of a transfer of unknown length ({error})"
                )
                exchange_error = f"{why} ({error})" if total is not None else why
                self._record(exchange, resp, error=exchange_error, body_bytes=kept)
                new_validator = _validator(state)
                if retries_used < self.options.retries:
                    self._wait(self._backoff(retries_used), exchange)
                    retries_used += 1
                    if new_validator and size:
                        offset, validator = size, new_validator  # ask the server that sent it for the rest
                    else:  # nothing to resume against: start again, through the redirects
                        offset, hashes, earlier_ids, target, hops = 0, _Hashes(), [], url, 0
                        part.write_bytes(b"")
                    continue
                return self._fail(out, why, part, state, state_file, acquisition_id, keep=True)
            self._record(exchange, resp, body_bytes=kept)
            if total is None:
                chunked = "chunked" in (resp.headers.get("Transfer-Encoding") or "").lower()
                out.notes.append(
                    "the server gave no length; the chunked transfer ended with its final chunk"
                    if chunked
                    else "the server gave no length and ended by closing the connection: a cut-off "
                    "transfer would look the same, so completeness cannot be proven"
                )
            _fsync(part)
            out.complete, out.bytes = True, size
            out.sha256, out.md5 = hashes.sha256.hexdigest(), hashes.md5.hexdigest()
            return out

    def _resume_point(self, part: Path, state: dict | None, out: FetchResult) -> tuple[int, str | None]:
        if state is None or not part.exists() or part.stat().st_size == 0:
            return 0, None
        validator = _validator(state)
        if validator is None:
            out.notes.append(
                f"an earlier attempt kept {part.stat().st_size:,} bytes but the server gave no strong "
                "ETag or Last-Modified to resume against: restarted from byte 0"
            )
            return 0, None
        return part.stat().st_size, validator

    def _stream(self, resp, part: Path, offset: int, hashes: _Hashes, total: int | None, exchange: dict):
        """Append the body to `part`; return (None | "over_limit" | why it broke off, bytes kept)."""
        import http.client

        import urllib3

        kept = 0
        limit = self.options.max_bytes
        try:
            with open(part, "r+b" if offset else "wb") as f:  # a local write error is no transfer error: it propagates
                f.seek(offset)
                f.truncate()
                while True:
                    try:
                        # read1: whatever arrived, up to 1 MiB; read() would drop what it buffered when the
                        # transfer breaks off, and the record would count fewer bytes than were received
                        chunk = resp.raw.read1(CHUNK, decode_content=False)
                    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
                        chunked = "chunked" in (resp.headers.get("Transfer-Encoding") or "").lower()
                        return _describe_read_error(exc, self.options, chunked), kept
                    if not chunk:
                        return None, kept
                    if offset + kept + len(chunk) > limit:
                        return "over_limit", kept
                    f.write(chunk)
                    hashes.update(chunk)
                    kept += len(chunk)
                    if self.on_progress is not None:
                        self.on_progress(offset + kept, total)
        finally:
            resp.close()

    # -- one request ----------------------------------------------------------------------------

    def _send(self, url: str, headers: dict, hop: int = 0):
        """Send one GET (redirect hop `hop`); return (response or None, the exchange being recorded)."""
        import requests

        proxies = {"http": self.options.proxy, "https": self.options.proxy} if self.options.proxy else None
        merged = self.session.merge_environment_settings(url, dict(proxies or {}), True, self.verify, None)
        proxy = requests.utils.select_proxy(url, merged["proxies"])
        exchange = {
            "attempt": len(self.out.exchanges) + 1,
            "url": url,
            "sent_at": utc_now(),
            "request_headers": dict(headers),
            "proxy": without_password(proxy),
            "retryable": False,
            "verified": merged["verify"] is not False,
            "started": time.monotonic(),
            "recorded": False,
        }
        try:
            # a literal address or a localhost name is refused before anything is sent, proxy or not
            # (through a proxy, the proxy resolves names: only this check applies, see the docs)
            refuse_literal(urlsplit(url).hostname or "", self.lab_networks)
            with warnings.catch_warnings():
                # --insecure is recorded in the acquisition record; urllib3's warning would only repeat it
                warnings.simplefilter("ignore", category=_insecure_warning())
                resp = self.session.get(
                    url,
                    headers=headers,
                    stream=True,
                    allow_redirects=False,
                    proxies=proxies,
                    verify=self.verify,
                    timeout=(self.options.connect_timeout, self.options.read_timeout),
                )
        except Exception as exc:  # noqa: BLE001 - every failure becomes the record's reason
            refused = next((e for e in _chain(exc) if isinstance(e, AddressRefused)), None)
            if refused is not None:  # the custody record says which hop pointed where, and why it was refused
                why = (
                    f"redirect to {url} refused (hop {hop}): " if hop else f"address refused for {url}: "
                ) + f"{refused}; {LAB_HINT}"
                exchange["error"] = why
                self._append(exchange, error=why)
                return None, exchange
            why, retryable = _describe_send_error(exc, url, self.options)
            exchange["error"], exchange["retryable"] = why, retryable
            self._append(exchange, error=why)
            return None, exchange
        exchange["elapsed_ms"] = round((time.monotonic() - exchange["started"]) * 1000)
        exchange["peer"], exchange["tls"] = _socket_info(resp, exchange["verified"])
        return resp, exchange

    def _record(
        self, exchange: dict, resp, *, redirect_to: str | None = None, error: str | None = None, body_bytes: int = 0
    ) -> None:
        raw_headers = getattr(resp.raw, "headers", None)
        items = list(raw_headers.items()) if raw_headers is not None else list(resp.headers.items())
        self._append(
            exchange,
            status=resp.status_code,
            reason=resp.reason,
            headers=tuple((k, v) for k, v in items),
            redirect_to=redirect_to,
            error=error,
            body_bytes=body_bytes,
        )

    def _append(self, exchange: dict, **fields) -> None:
        if exchange["recorded"]:
            return
        exchange["recorded"] = True
        self.out.exchanges.append(
            HttpExchange(
                attempt=exchange["attempt"],
                url=exchange["url"],
                sent_at=exchange["sent_at"],
                request_headers=exchange["request_headers"],
                peer=exchange.get("peer"),
                tls=exchange.get("tls"),
                proxy=exchange["proxy"],
                elapsed_ms=exchange.get("elapsed_ms"),
                **fields,
            )
        )

    def _wait(self, seconds: float, exchange: dict) -> None:
        seconds = max(0.0, min(seconds, self.options.max_backoff))
        log.info("retrying %s in %.1f s", exchange["url"], seconds)
        self.sleep(seconds)

    def _backoff(self, n: int) -> float:
        return min(self.options.backoff * (2**n), self.options.max_backoff)

    def _fail(
        self,
        out: FetchResult,
        why: str,
        part: Path,
        state: dict,
        state_file: Path,
        acquisition_id: str,
        keep: bool | None = None,
    ) -> FetchResult:
        """Finish a failed fetch; keep the .part (with its state, for a resume) only when it holds bytes."""
        out.complete, out.reason, out.md5, out.sha256 = False, why, None, None
        size = part.stat().st_size if part.exists() else 0
        keep = size > 0 if keep is None else keep and size > 0
        if keep:
            if any(e.body_bytes for e in out.exchanges):  # this attempt added bytes to the part
                state["acquisition_ids"] = [*state.get("acquisition_ids", []), acquisition_id]
            _write_state(state_file, state)
            hashes = _Hashes()
            _hash_file(part, hashes)
            out.part_kept, out.bytes, out.sha256 = True, size, hashes.sha256.hexdigest()  # the record's partial_sha256
        else:
            part.unlink(missing_ok=True)
            state_file.unlink(missing_ok=True)
            out.part_kept, out.bytes = False, 0
        return out


# -- helpers ---------------------------------------------------------------------------------------


def _insecure_warning():
    import urllib3

    return urllib3.exceptions.InsecureRequestWarning


def _peer_adapter_class(lab_networks: tuple[Network, ...]):
    """An HTTPAdapter whose connections go only to checked addresses and note the peer of each response.

    The peer must be read while the connection is attached to the response: urllib3 hands a
    connection back to its pool as soon as a body is read, and at once for an empty body (a
    redirect), so `response.raw.connection` is None by then. Subclassing the connection classes
    (not patching http.client or socket for the whole process) keeps both to facetrace's own
    sessions.
    """
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class PeerFacts:
        # read before the response: http.client drops the socket at once when the server will close it
        def getresponse(self):
            facts = _sock_facts(self.sock)
            response = super().getresponse()
            response.facetrace_sock = facts
            return response

    class Checked:
        """Resolve once, refuse internal addresses, connect to the address checked.

        Only the TCP target changes: `self.host` stays the URL's name, so the Host header, the
        TLS server name (SNI) and the certificate's hostname check are those of the name, as
        without the check. A connection to a proxy (`self.proxy`) is the operator's choice and is
        not checked: the proxy, not facetrace, then resolves and connects to the target.
        """

        def _new_conn(self):
            if self.proxy is not None:
                return super()._new_conn()
            return _connect_checked(self, lab_networks)

    class PeerHTTPConnection(PeerFacts, Checked, HTTPConnection):
        pass

    class PeerHTTPSConnection(PeerFacts, Checked, HTTPSConnection):
        pass

    class PeerHTTPPool(HTTPConnectionPool):
        ConnectionCls = PeerHTTPConnection

    class PeerHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = PeerHTTPSConnection

    pools = {"http": PeerHTTPPool, "https": PeerHTTPSPool}

    class PeerAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

        def proxy_manager_for(self, proxy, **kwargs):
            manager = super().proxy_manager_for(proxy, **kwargs)
            if hasattr(manager, "pool_classes_by_scheme") and not proxy.lower().startswith("socks"):
                manager.pool_classes_by_scheme = pools
            return manager

    return PeerAdapter


_ADAPTERS: dict[tuple, type] = {}


def guarded_session(lab_networks=()):
    """A requests Session that connects only to public addresses (and `lab_networks`), pinned to the
    address it checked, and notes each response's peer (`_socket_info`). Webhooks use it too."""
    import requests

    lab = parse_networks(lab_networks)
    if lab not in _ADAPTERS:
        _ADAPTERS[lab] = _peer_adapter_class(lab)
    session = requests.Session()
    adapter = _ADAPTERS[lab]()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# -- which addresses a connection may go to --------------------------------------------------------


class AddressRefused(Exception):
    """A connection not opened: the address is not public and no lab network allows it.

    Raised before any packet goes to the address. Not part of scanner.errors: it never leaves the
    scanner, it becomes an acquisition's reason or a webhook delivery's audited outcome (data).
    """


_KINDS = {
    "loopback": "a loopback address",
    "link-local": "a link-local address",
    "multicast": "a multicast address",
    "unspecified": "the unspecified address",
    "reserved": "a reserved address",
    "private": "a private address",
    "shared": "a shared (carrier-grade NAT) address",
    "not global": "not a globally routable address",
}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def parse_networks(values) -> tuple[Network, ...]:
    """The lab networks as ipaddress networks; ValueError names a value that is not one."""
    out = []
    for value in values or ():
        if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            out.append(value)
            continue
        try:
            out.append(ipaddress.ip_network(str(value).strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"{value!r} is not a network: give an address or a CIDR block, such as 127.0.0.1 or 10.1.0.0/16"
            ) from None
    return tuple(out)


def address_kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address is not public ("loopback", "private", ...), or None for a globally routable one."""
    if ip.version == 6:
        # an IPv4 address carried in IPv6 is judged as itself: ::ffff:127.0.0.1 is loopback, and
        # a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address reaches the IPv4 address inside it
        if ip.ipv4_mapped is not None:
            return address_kind(ip.ipv4_mapped)
        inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else ip.sixtofour
        if inner is not None and address_kind(inner):
            return address_kind(inner)
    for kind, test in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
    ):
        if test:
            return kind
    if ip.version == 4 and ip in ipaddress.ip_network("100.64.0.0/10"):
        return "shared"
    return None if ip.is_global else "not global"


def _in_lab(ip, lab: tuple[Network, ...]) -> bool:
    plain = getattr(ip, "ipv4_mapped", None) or ip
    return any(plain.version == net.version and plain in net for net in lab)


def _refusal(ip, lab: tuple[Network, ...]) -> str | None:
    kind = address_kind(ip)
    return None if kind is None or _in_lab(ip, lab) else kind


def literal_address(host: str):
    """The address a host names without DNS: any IPv4 notation the resolver accepts (0x7f000001,
    2130706433, 127.1, octal), or IPv6; None for a name."""
    host = host.strip("[]").split("%")[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not re.fullmatch(r"[0-9a-fA-FxX.]+", host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))  # the parser getaddrinfo uses for numeric hosts
    except OSError:
        return None


def refuse_literal(host: str, lab_networks=()) -> None:
    """Raise AddressRefused for a host that is an internal address or a localhost name; no DNS asked."""
    lab = parse_networks(lab_networks)
    host = host.strip("[]").rstrip(".").lower()
    ip = literal_address(host)
    if ip is not None:
        kind = _refusal(ip, lab)
        if kind:
            shown = str(ip.ipv4_mapped or ip) if getattr(ip, "ipv4_mapped", None) else str(ip)
            raise AddressRefused(f"{host} is {_KINDS[kind]}" if host == shown else f"{host} is {shown}, {_KINDS[kind]}")
        return
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always this machine
        if not any(_in_lab(ipaddress.ip_address(a), lab) for a in ("127.0.0.1", "::1")):
            raise AddressRefused(f"{host!r} names this machine (a loopback address)")


def checked_addresses(host: str, port: int, lab_networks=(), family: int = socket.AF_UNSPEC) -> list[tuple]:
    """Resolve `host` once; return its getaddrinfo entries when every address is allowed.

    One internal address in the answer refuses the name: an answer that points inside is not
    trusted for its other addresses either, and the outcome does not depend on which is tried.
    Raises socket.gaierror when the name does not resolve, AddressRefused when it is refused.
    """
    lab = parse_networks(lab_networks)
    infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    refused = []
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%")[0])
        kind = _refusal(ip, lab)
        if kind:
            refused.append((ip, kind))
    if refused:
        literal = literal_address(host)
        if literal is not None:
            refuse_literal(host, lab)  # the message for a literal: "127.0.0.1 is a loopback address"
        shown = ", ".join(f"{ip} ({kind})" for ip, kind in dict.fromkeys(refused))
        raise AddressRefused(f"{host!r} resolves to {shown}")
    return infos


def _connect_checked(conn, lab: tuple[Network, ...]):
    """urllib3's HTTPConnection._new_conn, connecting to the checked addresses instead of resolving again."""
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
    from urllib3.util.connection import allowed_gai_family, create_connection

    try:
        infos = checked_addresses(conn._dns_host, conn.port, lab, allowed_gai_family())
    except socket.gaierror as e:
        raise NameResolutionError(conn.host, conn, e) from e
    error: OSError | None = None
    for _family, _type, _proto, _name, sockaddr in infos:
        try:
            # a numeric host: create_connection's own lookup of it asks no resolver
            sock = create_connection(
                (sockaddr[0], conn.port),
                conn.timeout,
                source_address=conn.source_address,
                socket_options=conn.socket_options,
            )
        except OSError as e:  # the next address, as create_connection does
            error = e
            continue
        sys.audit("http.client.connect", conn, conn.host, conn.port)
        return sock
    if isinstance(error, TimeoutError):
        raise ConnectTimeoutError(
            conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
        ) from error
    raise NewConnectionError(conn, f"Failed to establish a new connection: {error}") from error


def _sock_facts(sock) -> tuple[str | None, dict | None]:
    """(peer "IP:port", TLS facts without the verification flag) of a connected socket."""
    if sock is None:
        return None, None
    peer = tls = None
    try:
        host, port = sock.getpeername()[:2]
        peer = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    except (OSError, ValueError, TypeError):
        pass
    version = getattr(sock, "version", None)
    if callable(version):
        try:
            der = sock.getpeercert(binary_form=True)
            tls = {
                "version": sock.version(),
                "cipher": (sock.cipher() or [None])[0],
                "certificate_sha256": hashlib.sha256(der).hexdigest() if der else None,
            }
            cert = sock.getpeercert()  # a dict only when the certificate was verified
            if cert:
                tls["subject"] = _name(cert.get("subject", ()))
                tls["issuer"] = _name(cert.get("issuer", ()))
                tls["not_after"] = cert.get("notAfter")
        except (OSError, ValueError, AttributeError):
            pass
    return peer, tls


def _socket_info(resp, verified: bool) -> tuple[str | None, dict | None]:
    """(peer "IP:port", TLS facts) of the connection a response came on; (None, None) if unavailable."""
    facts = getattr(resp.raw, "facetrace_sock", None)
    if facts is None:  # a session without the adapter (a test's, a SOCKS proxy): try the attached connection
        conn = getattr(resp.raw, "connection", None)
        facts = _sock_facts(getattr(conn, "sock", None))
    peer, tls = facts
    if tls is not None:
        tls = {**tls, "verified": verified}
    return peer, tls


def _name(rdns) -> str:
    return ", ".join(f"{k}={v}" for rdn in rdns for k, v in rdn)


def _describe_send_error(exc: Exception, url: str, options: AcquireOptions) -> tuple[str, bool]:
    """(reason for the record, whether a retry may help) for an exception raised sending a request."""
    import requests
    import urllib3

    chain = list(_chain(exc))
    host = urlsplit(url).hostname
    if any(isinstance(e, urllib3.exceptions.NameResolutionError) for e in chain) or any(
        type(e).__name__ == "gaierror" for e in chain
    ):
        return f"DNS failure: cannot resolve host {host!r}", False
    if isinstance(exc, requests.exceptions.SSLError):
        detail = next(
            (
                f"certificate verify failed: {e.verify_message}" if getattr(e, "verify_message", None) else str(e)
                for e in chain
                if type(e).__name__ == "SSLCertVerificationError"
            ),
            None,
        )
        detail = detail or next((str(e) for e in reversed(chain) if str(e)), str(exc))
        hint = (
            ""
            if options.insecure
            else (
                " (to trust this server's certificate explicitly, pass it with --ca-bundle FILE)"
                if "certificate" in str(detail).lower()
                else ""
            )
        )
        return f"TLS error with {host}: {detail}{hint}", False
    if isinstance(exc, requests.exceptions.ProxyError):
        return f"proxy error: {_last(chain)}", True
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"connection to {host} timed out after {options.connect_timeout:g} s", True
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"no response from {host} within {options.read_timeout:g} s (read timeout)", True
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return f"connection refused by {urlsplit(url).netloc}", True
    if isinstance(
        exc,
        (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidHeader,
        ),
    ):
        return f"invalid request: {exc}", False
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"connection failed: {_last(chain)}", True
    return f"request failed: {type(exc).__name__}: {exc}", False


def _describe_read_error(exc: Exception, options: AcquireOptions, chunked: bool) -> str:
    import urllib3

    chain = list(_chain(exc))
    if any(isinstance(e, (urllib3.exceptions.ReadTimeoutError, TimeoutError)) for e in chain):
        return f"no byte for {options.read_timeout:g} s (read timeout)"
    if chunked and any(type(e).__name__ in ("IncompleteRead", "InvalidChunkLength", "ProtocolError") for e in chain):
        return "the chunked transfer ended before its final chunk"
    if any(type(e).__name__ == "IncompleteRead" for e in chain):
        return "the connection closed before the announced length"
    return f"the transfer broke off: {_last(chain)}"


def _chain(exc: BaseException):
    """The exception, what it wraps (args, .reason, __cause__, __context__), depth first, each once."""
    seen, todo = set(), [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen or not isinstance(e, BaseException):
            continue
        seen.add(id(e))
        yield e
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
        todo += [x for x in (getattr(e, "reason", None), e.__cause__, e.__context__) if isinstance(x, BaseException)]


def _last(chain: list) -> str:
    for e in reversed(chain):
        if str(e):
            return f"{type(e).__name__}: {e}"
    return type(chain[0]).__name__


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _content_range(value: str | None) -> tuple[int, int, int | None] | None:
    m = _CONTENT_RANGE.match(value or "")
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), None if m.group(3) == "*" else int(m.group(3))


def _int(value: str | None) -> int | None:
    try:
        n = int(value) if value is not None else None
    except ValueError:
        return None
    return n if n is None or n >= 0 else None


def _validator(state: dict) -> str | None:
    """The If-Range value for a resume: a strong ETag, else Last-Modified (RFC 9110 13.1.5)."""
    etag = state.get("etag")
    if etag and not etag.startswith("W/"):
        return etag
    return state.get("last_modified") or None


def _read_state(path: Path, url: str) -> dict | None:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and state.get("requested_url") == url else None


def _write_state(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _hash_file(path: Path, hashes: _Hashes) -> None:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            hashes.update(chunk)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def filename_for(final_url: str | None, content_disposition: str | None, page: bool) -> str:
    """A safe file name for what was served: Content-Disposition's, else the URL's last segment."""
    name = _disposition_name(content_disposition) if content_disposition else None
    if not name and final_url:
        name = unquote(urlsplit(final_url).path.rsplit("/", 1)[-1])
    name = re.sub(r"[\x00-\x1f\x7f/\\]", "_", (name or "").strip()).lstrip(".").strip()
    if not name:
        name = "index" if page else "download"
    if page and not name.lower().endswith((".html", ".htm", ".xhtml")):
        name += ".html"
    encoded = name.encode("utf-8")
    if len(encoded) > 200:  # most file systems allow 255 bytes; leave room
        stem, dot, ext = name.rpartition(".")
        ext = ext if dot and len(ext) <= 10 else ""
        name = encoded[:190].decode("utf-8", "ignore") + (f".{ext}" if ext else "")
    return name


def _disposition_name(value: str) -> str | None:
    m = re.search(r"filename\*\s*=\s*([\w-]+)'[^']*'([^;]+)", value, re.IGNORECASE)
    if m:
        try:
            return unquote(m.group(2).strip().strip('"'), encoding=m.group(1))
        except LookupError:
            pass
    m = re.search(r'filename\s*=\s*"((?:[^"\\]|\\.)*)"', value, re.IGNORECASE) or re.search(
        r"filename\s*=\s*([^;]+)", value, re.IGNORECASE
    )
    return m.group(1).strip() if m else None
