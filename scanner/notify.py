"""Webhook notifications: signed (HMAC-SHA256, timestamped) JSON deliveries with retries and backoff, audited.

A payload carries ids, bands and kinds, never a face, a path inside someone's dump or an
encoding. The signature follows Stripe's scheme, so a captured delivery cannot be replayed
later: `X-Facetrace-Signature: t=<unix seconds>,v1=<hex>`, where v1 is the HMAC-SHA256, under
the secret the receiver was given when it registered, of `<t>.` followed by the raw body. The
receiver checks it with `verify_signature` (5 minutes' tolerance by default) and drops
duplicates by `delivery_id` (in the signed body, and in `X-Facetrace-Delivery`): a retry
repeats the delivery id with a new timestamp and signature.

A webhook URL is chosen by whoever registers it, so deliveries go only to public addresses
(`scanner.acquire.http.guarded_session`: resolved once, checked, connected to the address
checked); `lab_networks` allows the internal networks an operator names. Each attempt is
audited with the URL's scheme, host and port and a keyed hash of it (`target`), never its path
or query, which can name a person and would outlive their erasure in the hash-chained log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import time
import uuid
from urllib.parse import urlsplit

RETRIES = 4  # after the first attempt
BACKOFF_S = 0.5  # doubled after each failed attempt
TIMEOUT_S = 5.0
TOLERANCE_S = 300  # 5 minutes, as Stripe's and Standard Webhooks' libraries: clocks drift, retries wait
LAB_ENV = "FACETRACE_LAB_NETWORK"
LAB_HINT = "webhooks go only to public addresses unless the service runs with --lab-network for their network"
_V1 = re.compile(r"^[0-9a-f]{64}$")


def signature(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The X-Facetrace-Signature header for `body` sent at `timestamp` (now by default)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_signature(
    body: bytes, secret: str, header: str, *, tolerance_s: float = TOLERANCE_S, now: float | None = None
) -> bool:
    """True when `header` signs `body` under `secret` and its timestamp is within `tolerance_s` of `now`.

    Pass the raw body as received (before any JSON parsing). Several `v1=` values may be given
    (one per secret while a secret is rotated); any one matching is enough.
    """
    t, macs = None, []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            t = int(value)
        elif key == "v1" and _V1.match(value):
            macs.append(value)
    if t is None or not macs:
        return False
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        return False
    expected = signature(body, secret, t).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, mac) for mac in macs)


def check_url(url: str, lab_networks=()) -> str | None:
    """Why a webhook URL is refused at registration, or None: an internal address or a localhost name.

    Asks no resolver: a name is resolved, checked and pinned at each delivery instead, where
    checking it counts (its answer can change between registration and delivery).
    """
    from scanner.acquire.http import AddressRefused, refuse_literal

    try:
        refuse_literal(urlsplit(url).hostname or "", lab_networks)
    except AddressRefused as exc:
        return f"{exc}; {LAB_HINT}"
    return None


def finding_payload(event: str, findings: list[dict], scan_id: str | None) -> dict:
    """The body of a notification: ids, bands and kinds only."""
    return {
        "event": event,
        "scan_id": scan_id,
        "sent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "findings": [
            {"subject_id": f["subject_id"], "kind": f["kind"], "band": f["band"], "member_seq": f.get("member_seq")}
            for f in findings
        ],
    }


def subject_notifications(registry_store, findings: list[dict], scan_id: str | None) -> list[tuple[str, dict]]:
    """(subject id, payload) for each subject a scan or screen found who may be told now: the
    verified ones (scanner.disclosure); an unverified subject's webhook gets delayed digests.
    The CLI's scans (scanner.pipeline) deliver these at once, the service in the background."""
    from scanner.disclosure import realtime_recipients

    found = sorted(realtime_recipients(registry_store, {f["subject_id"] for f in findings}))
    return [
        (sid, finding_payload("finding", [f for f in findings if f["subject_id"] == sid], scan_id)) for sid in found
    ]


def target(url: str, secret: str) -> dict:
    """What the audit log keeps of a webhook URL: scheme, host, port and an HMAC of the whole URL.

    A URL's path and query are the receiver's to choose, and people put themselves in them
    (`?email=jane.doe@example.org`); the audit log is hash-chained and outlives an erasure, so
    it never holds them. The HMAC is keyed with the webhook's secret: while the registration
    exists an operator can tell which URL a delivery went to, and once it is erased (with its
    secret) nobody can test a guessed URL against the log, as a plain SHA-256 would let them.
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    mac = hmac.new(secret.encode(), b"facetrace-webhook-url\x00" + url.encode(), hashlib.sha256).hexdigest()
    return {"scheme": parts.scheme, "host": parts.hostname or "", "port": port, "url_hmac": mac}


def failure(exc: BaseException) -> str:
    """Why a delivery failed, for the audit log: the exception's kind and the system's reason only.

    requests' messages repeat the URL's path and query ("Max retries exceeded with url:
    /hook?email=..."): the reason is taken from the innermost OSError's strerror (or an SSL
    error's reason) instead, which names no URL.
    """
    reason, seen, e = None, set(), exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.strerror:
            reason = f"[Errno {e.errno}] {e.strerror}" if e.errno is not None else e.strerror
        elif getattr(e, "reason", None) and isinstance(e.reason, str):
            reason = e.reason  # ssl.SSLError: CERTIFICATE_VERIFY_FAILED and the like
        nested = [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
        e = (
            getattr(e, "reason", None)
            if isinstance(getattr(e, "reason", None), BaseException)
            else (nested[0] if nested else (e.__cause__ or e.__context__))
        )
    return f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__


def deliver(
    url: str,
    payload: dict,
    secret: str,
    audit,
    owner: str,
    *,
    retries: int = RETRIES,
    backoff_s: float = BACKOFF_S,
    lab_networks: tuple[str, ...] | None = None,
) -> bool:
    """POST the payload to `url`, retrying with exponential backoff; audit every attempt's outcome.

    An address refused (not public, not in `lab_networks`) is audited once and not retried.
    `lab_networks` None reads $FACETRACE_LAB_NETWORK: the CLI's scans deliver through
    scanner.pipeline, which does not pass the option.
    """
    import requests

    from scanner.acquire.http import AddressRefused, guarded_session, refuse_literal

    if lab_networks is None:
        lab_networks = (
            tuple(re.split(r"[\s,]+", os.environ.get(LAB_ENV, "").strip())) if os.environ.get(LAB_ENV) else ()
        )
    delivery = uuid.uuid4().hex
    body = json.dumps({**payload, "delivery_id": delivery}, sort_keys=True, separators=(",", ":")).encode()
    http = guarded_session(lab_networks)
    wait = backoff_s
    try:
        for attempt in range(1, retries + 2):
            # signed at each attempt: a retry after the backoff carries its own time
            headers = {
                "Content-Type": "application/json",
                "X-Facetrace-Signature": signature(body, secret),
                "X-Facetrace-Delivery": delivery,
                "User-Agent": "facetrace-webhook/1",
            }
            refused = False
            try:
                refuse_literal(urlsplit(url).hostname or "", lab_networks)
                r = http.post(url, data=body, headers=headers, timeout=TIMEOUT_S, allow_redirects=False)
                ok, outcome = 200 <= r.status_code < 300, f"HTTP {r.status_code}"
            except AddressRefused as exc:
                ok, outcome, refused = False, f"refused: {exc}; {LAB_HINT}"[:300], True
            except requests.RequestException as exc:
                ok, outcome = False, failure(exc)
            audit(
                "webhook_delivery",
                {
                    "owner": owner,
                    "delivery": delivery,
                    "attempt": attempt,
                    "outcome": outcome,
                    "delivered": ok,
                    "event": payload.get("event"),
                    "scan_id": payload.get("scan_id"),
                    "target": target(url, secret),
                },
            )
            if ok:
                return True
            if refused:  # waiting does not make an address public
                return False
            if attempt <= retries:
                time.sleep(wait)
                wait *= 2
        return False
    finally:
        http.close()
