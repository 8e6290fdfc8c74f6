"""Webhook notifications: signed (HMAC-SHA256) JSON deliveries with retries and backoff, audited.

A payload carries ids, bands and kinds, never a face, a path inside someone's dump or an
encoding. The receiver checks `X-Facetrace-Signature: sha256=<hex>`, the HMAC-SHA256 of the raw
body under the secret it was given when it registered, and `X-Facetrace-Delivery` to drop
duplicates (a retry repeats the same delivery id).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

RETRIES = 4  # after the first attempt
BACKOFF_S = 0.5  # doubled after each failed attempt
TIMEOUT_S = 5.0


def signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, secret: str, header: str) -> bool:
    return hmac.compare_digest(signature(body, secret), header or "")


def finding_payload(event: str, findings: list[dict], scan_id: str | None) -> dict:
    """The body of a notification: ids, bands and kinds only."""
    return {"event": event, "scan_id": scan_id, "sent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "findings": [{"subject_id": f["subject_id"], "kind": f["kind"], "band": f["band"],
                          "member_seq": f.get("member_seq")} for f in findings]}


def deliver(url: str, payload: dict, secret: str, audit, owner: str, *, retries: int = RETRIES,
            backoff_s: float = BACKOFF_S, session=None) -> bool:
    """POST the payload to `url`, retrying with exponential backoff; audit every attempt's outcome."""
    import requests

    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    delivery = uuid.uuid4().hex
    headers = {"Content-Type": "application/json", "X-Facetrace-Signature": signature(body, secret),
               "X-Facetrace-Delivery": delivery, "User-Agent": "facetrace-webhook/1"}
    http = session or requests
    wait = backoff_s
    for attempt in range(1, retries + 2):
        try:
            r = http.post(url, data=body, headers=headers, timeout=TIMEOUT_S, allow_redirects=False)
            ok, outcome = 200 <= r.status_code < 300, f"HTTP {r.status_code}"
        except requests.RequestException as exc:
            ok, outcome = False, f"{type(exc).__name__}: {exc}"[:300]
        audit("webhook_delivery", {"owner": owner, "delivery": delivery, "attempt": attempt, "outcome": outcome,
                                   "delivered": ok, "event": payload.get("event"), "scan_id": payload.get("scan_id")})
        if ok:
            return True
        if attempt <= retries:
            time.sleep(wait)
            wait *= 2
    return False
