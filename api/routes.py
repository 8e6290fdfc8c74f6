"""The JSON API (`/v1/...`). Who may call each route is declared with it and recorded in ACCESS."""

from __future__ import annotations

import re
import shutil
from typing import Annotated, Literal

from fastapi import Depends, File, Form, Header, Query, Request, UploadFile
from pydantic import BaseModel, Field, field_validator

from api.errors import ApiError, error_responses

SUBJECT_ID = re.compile(r"^[0-9a-f]{16}$")
MAX_LIVE_PHOTOS = 3  # photos an intake officer sends to verify a subject


class Health(BaseModel):
    status: str
    version: str


class ConsentText(BaseModel):
    version: str
    sha256: str
    text: str
    purpose: str
    scope: str


class Finding(BaseModel):
    subject_id: str
    kind: str
    band: str
    evidence: dict


class ScreenItem(BaseModel):
    path: str
    kind: str
    type: str
    status: str
    reason: str | None
    sha256: str | None
    faces: int
    findings: list[Finding]


class ScreenResult(BaseModel):
    scan_id: str
    items: list[ScreenItem]
    findings: int
    subjects_found: list[str]
    bundle: dict | None = Field(None, description="trading-bundle assessment, for archives and multi-file uploads")


class Enrolled(BaseModel):
    subject_id: str
    deletion_token: str = Field(description="shown once; needed to check exposure and to erase")
    consent_receipt: dict
    earlier_findings: int | None = Field(
        description="findings in earlier scans; null for an unverified subject, "
        "who sees them as delayed counts on the exposure route"
    )
    verified: bool = Field(False, description="false until an intake officer checks your identity")
    disclosure: str = Field(description="what an unverified subject is told, and how to be verified")


class ExposureSummary(BaseModel):
    as_of: str | None = Field(description="counts include findings made up to this time (null: all of them)")
    findings: int
    bands: dict[str, int]
    kinds: dict[str, int]


class Exposure(BaseModel):
    subject_id: str
    status: str
    verified: bool = Field(description="an intake officer checked this subject's identity")
    limited: str | None = Field(description="why only delayed counts are shown (unverified subjects); null if not")
    summary: ExposureSummary
    findings: list[dict] = Field(description="each finding (verified subjects only; empty otherwise)")


class VerifyOut(BaseModel):
    subject_id: str
    verified: bool
    method: str | None = None
    band: str | None = Field(None, description="the live photos' best band for the subject")


class Erased(BaseModel):
    subject_id: str
    receipt: dict


class WebhookIn(BaseModel):
    url: str = Field(pattern=r"^https?://[^\s]{1,2000}$")

    @field_validator("url")
    @classmethod
    def _parsable(cls, url: str) -> str:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(url)
            host, _port = parts.hostname, parts.port  # both raise on a malformed address or port
        except ValueError as exc:
            raise ValueError(f"not a usable URL: {exc}") from None
        if not host:
            raise ValueError("the URL has no host")
        return url


class WebhookOut(BaseModel):
    url: str
    secret: str = Field(
        description="HMAC-SHA256 key: each delivery's X-Facetrace-Signature is "
        't=<unix time>,v1=HMAC("<t>." + body); see docs/api.md'
    )


class KeyIn(BaseModel):
    role: Literal["admin", "investigator", "platform", "intake"]
    label: str | None = Field(None, max_length=200)


class KeyOut(BaseModel):
    key_id: str
    role: str
    key: str = Field(description="shown once; only its hash is stored")


def register(app, access, table: dict) -> None:
    def route(method: str, path: str, who, **kw):
        table[(method, path)] = who.access
        return app.api_route(path, methods=[method], dependencies=[Depends(who)], **kw)

    svc_of = _svc
    public = access("public")
    token = access("token")
    screeners = access("key", "admin", "investigator", "platform")
    admin = access("key", "admin")
    intake = access("key", "intake")

    @route("GET", "/v1/health", public, response_model=Health, tags=["service"], responses=error_responses(401, 429))
    def health():
        """Liveness and version."""
        from scanner import __version__

        return {"status": "ok", "version": __version__}

    @route(
        "GET",
        "/v1/consent-text",
        public,
        response_model=ConsentText,
        tags=["individuals"],
        responses=error_responses(401, 429),
    )
    def consent_text():
        """The consent text a person agrees to when enrolling."""
        from scanner.consent import ConsentInput

        c = ConsentInput()
        return {
            "version": c.text_version,
            "sha256": c.text_sha256,
            "text": c.text,
            "purpose": c.purpose,
            "scope": c.scope,
        }

    @route(
        "POST",
        "/v1/screen",
        screeners,
        response_model=ScreenResult,
        tags=["platforms"],
        responses=error_responses(400, 401, 403, 413, 422, 429),
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "the file's bytes",
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary", "minLength": 1}}
                },
            }
        },
    )
    async def screen(request: Request, filename: Annotated[str, Query(max_length=255)] = "upload"):
        """Screen an upload (image, video or archive, sent as the raw request body) against the registry.

        The body is streamed to the workspace, scanned, matched and deleted; only hashes and
        encodings stay, as for any scan. Enrolled people found are notified through their webhook.
        """
        svc = svc_of(request)
        folder = svc.uploads / _new_id()
        folder.mkdir(mode=0o700)
        target = folder / _safe_name(filename)
        try:
            await _receive(request, target, svc.settings.max_upload_bytes)
            from starlette.concurrency import run_in_threadpool

            return await run_in_threadpool(_screen_file, svc, target, request.state.caller)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @route(
        "POST",
        "/v1/subjects",
        public,
        response_model=Enrolled,
        tags=["individuals"],
        responses=error_responses(400, 401, 408, 409, 413, 422, 429, 503),
    )
    def enroll(
        request: Request,
        photos: Annotated[list[UploadFile], File(description="3 to 10 photos of you, each at most 20 MiB")],
        consent: Annotated[bool, Form(description="true: I agree to the consent text")],
        consent_version: Annotated[
            str, Form(max_length=64, description="the version of the consent text you read (GET /v1/consent-text)")
        ],
    ):
        """Enroll yourself with 3 or more photos and explicit consent; receive a deletion token and a receipt."""
        svc = svc_of(request)
        return _enroll(svc, photos, consent, consent_version)

    @route(
        "GET",
        "/v1/subjects/{subject_id}/exposure",
        token,
        response_model=Exposure,
        tags=["individuals"],
        responses=error_responses(401, 403, 422, 429),
    )
    def exposure(request: Request, subject_id: str, x_deletion_token: Annotated[str | None, Header()] = None):
        """The findings that concern you (ids, bands, kinds and when; never pictures)."""
        svc = svc_of(request)
        subj = _own_subject(svc, subject_id, x_deletion_token, request.state.client_address)
        return _exposure(svc, subj)

    @route(
        "DELETE",
        "/v1/subjects/{subject_id}",
        token,
        response_model=Erased,
        tags=["individuals"],
        responses=error_responses(400, 401, 403, 422, 429),
    )
    def erase(request: Request, subject_id: str, x_deletion_token: Annotated[str | None, Header()] = None):
        """Erase yourself: templates, hashes, findings, consent details, webhooks; receive an erasure receipt."""
        svc = svc_of(request)
        _own_subject(svc, subject_id, x_deletion_token, request.state.client_address)
        return _erase(svc, subject_id, x_deletion_token)

    @route(
        "PUT",
        "/v1/subjects/{subject_id}/webhook",
        token,
        response_model=WebhookOut,
        tags=["individuals"],
        responses=error_responses(401, 403, 413, 422, 429),
    )
    def subject_webhook(
        request: Request, subject_id: str, body: WebhookIn, x_deletion_token: Annotated[str | None, Header()] = None
    ):
        """Be notified (signed POST) when a scan or a screen finds you; only public addresses are accepted."""
        svc = svc_of(request)
        _own_subject(svc, subject_id, x_deletion_token, request.state.client_address)
        _check_webhook(svc, body.url)
        secret = svc.keys.add_webhook("subject", subject_id, body.url)
        svc.audit("webhook_registered", "subject", subject_id, {"url_host": _host(body.url)})
        return {"url": body.url, "secret": secret}

    @route(
        "PUT",
        "/v1/webhook",
        screeners,
        response_model=WebhookOut,
        tags=["platforms"],
        responses=error_responses(401, 403, 413, 422, 429),
    )
    def key_webhook(request: Request, body: WebhookIn):
        """Register the calling key's webhook (a public address): each screen that finds someone is reported to it."""
        svc = svc_of(request)
        _check_webhook(svc, body.url)
        key_id = request.state.caller["key_id"]
        secret = svc.keys.add_webhook("key", key_id, body.url)
        svc.audit("webhook_registered", f"key:{key_id}", None, {"url_host": _host(body.url)})
        return {"url": body.url, "secret": secret}

    @route(
        "POST",
        "/v1/verifications",
        intake,
        response_model=VerifyOut,
        tags=["intake"],
        responses=error_responses(400, 401, 403, 404, 408, 413, 422, 429, 503),
    )
    def verify(
        request: Request,
        subject_id: Annotated[str, Form(max_length=16)],
        method: Annotated[str, Form(max_length=32, description="in_person, video_call or case_file")],
        photos: Annotated[
            list[UploadFile], File(description=f"1 to {MAX_LIVE_PHOTOS} photos of the person, taken by you now")
        ],
    ):
        """Verify a subject (intake only): you checked the person's identity and took new photos of them,
        which must match their enrolled photos. Only then are they told of each finding as it is made."""
        svc = svc_of(request)
        return _verify(svc, subject_id, method, photos, request.state.caller["key_id"])

    @route(
        "DELETE",
        "/v1/subjects/{subject_id}/verification",
        intake,
        response_model=VerifyOut,
        tags=["intake"],
        responses=error_responses(400, 401, 403, 404, 422, 429),
    )
    def unverify(request: Request, subject_id: str):
        """Take a subject's verification back (intake only): they get delayed counts again."""
        from scanner.registry import unverify_subject

        svc = svc_of(request)
        return unverify_subject(svc.registry, subject_id, actor=f"key:{request.state.caller['key_id']}")

    @route(
        "POST",
        "/v1/keys",
        admin,
        response_model=KeyOut,
        tags=["service"],
        responses=error_responses(401, 403, 413, 422, 429),
    )
    def create_key(request: Request, body: KeyIn):
        """Create an API key (admin only); the key is returned once."""
        svc = svc_of(request)
        key_id, key = svc.keys.create_key(body.role, body.label)
        svc.audit(
            "api_key_created", f"key:{request.state.caller['key_id']}", None, {"key_id": key_id, "role": body.role}
        )
        return {"key_id": key_id, "role": body.role, "key": key}


# -- the work behind the routes (shared with the HTML pages) ----------------------------------------


def _svc(request: Request):
    return request.app.state.service


def _new_id() -> str:
    import uuid

    return uuid.uuid4().hex


def _safe_name(name: str) -> str:
    base = re.sub(r"[^\w.\-]+", "_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip("._") or "upload"
    return base[:120]


def _check_webhook(svc, url: str) -> None:
    """Refuse a webhook to an internal address now; a name is checked again, and pinned, at each delivery."""
    from scanner.notify import check_url

    why = check_url(url, svc.lab_networks)
    if why:
        raise ApiError(422, "address_refused", f"webhook refused: {why}")


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname or ""


async def _receive(request: Request, target, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "too_large", f"the upload is {declared} bytes; the limit is {limit} bytes")
    size = 0
    with open(target, "wb") as out:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "too_large", f"the upload passed the limit of {limit} bytes")
            out.write(chunk)
    if size == 0:
        raise ApiError(400, "empty_upload", "the request body is empty: send the file's bytes as the body")


def _screen_file(svc, path, caller) -> dict:
    from scanner.matching.matcher import match_scan
    from scanner.models import ScanOptions
    from scanner.notify import finding_payload, subject_notifications
    from scanner.pipeline import scan, stored_records
    from scanner.profile.dump import build_profile

    with svc.screens:
        summary = scan([str(path)], svc.store, ScanOptions(workers=1), workspace=svc.root, lineage=False)
    actor = f"key:{caller['key_id']}" if caller else "anonymous"
    with svc.lock:
        findings = match_scan(svc.registry, svc.store, summary.scan_id, actor) if len(svc.registry.index) else []
    by_seq: dict[int, list] = {}
    for f in findings:
        by_seq.setdefault(f["member_seq"], []).append(
            {"subject_id": f["subject_id"], "kind": f["kind"], "band": f["band"], "evidence": f["evidence"]}
        )
    items = [
        {
            "path": r["relpath"],
            "kind": r["kind"],
            "type": r["type"],
            "status": r["status"],
            "reason": r["reason"],
            "sha256": r["sha256"],
            "faces": len(r["faces"]),
            "findings": by_seq.get(r["seq"], []),
        }
        for r in stored_records(svc.store, summary.scan_id)
    ]
    bundle = None
    if len(items) > 1:
        bundle = build_profile(svc.store, summary.scan_id)["bundle"]
    subjects = sorted({f["subject_id"] for f in findings})
    for sid, payload in subject_notifications(svc.registry.store, findings, summary.scan_id):
        svc.notify("subject", sid, payload)
    if caller and findings:
        svc.notify("key", caller["key_id"], finding_payload("screen_findings", findings, summary.scan_id))
    return {
        "scan_id": summary.scan_id,
        "items": items,
        "findings": len(findings),
        "subjects_found": subjects,
        "bundle": bundle,
    }


def _enroll(svc, photos, consent: bool, consent_version: str) -> dict:
    from scanner.consent import ConsentInput
    from scanner.disclosure import LIMITED
    from scanner.registry import SELF_ENROLLMENT_MIN_PHOTOS, analyse_photos, enroll

    c = ConsentInput()
    if not consent:
        raise ApiError(400, "consent_required", "enrollment needs your explicit consent (consent=true)")
    if not consent_version:
        raise ApiError(
            409,
            "consent_text_changed",
            f"send the version of the consent text you read (consent_version; "
            f"it is now {c.text_version}, GET /v1/consent-text)",
        )
    if consent_version != c.text_version:
        raise ApiError(
            409,
            "consent_text_changed",
            f"the consent text is now version {c.text_version}; read it again (GET /v1/consent-text) and resubmit",
        )
    if len(photos) < SELF_ENROLLMENT_MIN_PHOTOS:
        raise ApiError(400, "too_few_photos", f"give at least {SELF_ENROLLMENT_MIN_PHOTOS} photos of yourself")
    s = svc.settings
    if len(photos) > s.max_photos:  # api.app.BodyLimits refuses them as they stream; this holds without it
        raise ApiError(413, "too_large", f"give at most {s.max_photos} photos")
    data = []
    total = 0
    for p in photos:
        blob = p.file.read()
        p.file.close()  # one copy of each photo in memory, not two
        total += len(blob)
        if len(blob) > s.max_photo_bytes:
            raise ApiError(413, "too_large", f"a photo passes the limit of {s.max_photo_bytes} bytes")
        if total > s.max_form_bytes:
            raise ApiError(413, "too_large", f"the photos pass the limit of {s.max_form_bytes} bytes")
        data.append((_safe_name(p.filename or "photo"), blob))
    # the photos are analysed (seconds of CPU for a large one) by the keyless threads, outside the
    # registry lock: only the similarity check, the store and the index change are made under it.
    # A refusal is an error of scanner.errors, answered by api.app's one handler with its status.
    analysed = svc.keyless.submit(analyse_photos, svc.registry, data).result()
    del data
    with svc.lock:
        result = enroll(svc.registry, analysed, c, actor="web-enrollment")
    return {
        "subject_id": result.subject_id,
        "deletion_token": result.deletion_token,
        "consent_receipt": result.receipt,
        # a self-enrolled subject is unverified: told nothing now, the counts follow a day or more late
        # (an erasure and a new enrollment would otherwise count the latest screens at once)
        "earlier_findings": None,
        "verified": False,
        "disclosure": LIMITED,
    }


def _verify(svc, subject_id: str, method: str, photos, key_id: str) -> dict:
    from scanner.registry import analyse_photos, verify_subject

    if not SUBJECT_ID.match(subject_id):
        raise ApiError(422, "invalid_request", "subject_id: a subject id is 16 hexadecimal characters")
    if not 1 <= len(photos) <= MAX_LIVE_PHOTOS:
        raise ApiError(
            400,
            "too_few_photos" if not photos else "too_large",
            f"send 1 to {MAX_LIVE_PHOTOS} photos of the person, taken now",
        )
    data = []
    for p in photos:
        blob = p.file.read()
        p.file.close()
        if len(blob) > svc.settings.max_photo_bytes:
            raise ApiError(413, "too_large", f"a photo passes the limit of {svc.settings.max_photo_bytes} bytes")
        data.append((_safe_name(p.filename or "photo"), blob))
    actor = f"key:{key_id}"
    live = analyse_photos(svc.registry, data)  # outside the lock: seconds of CPU for a large photo
    del data
    with svc.lock:
        return verify_subject(svc.registry, subject_id, live, method=method, by=actor, actor=actor)


WRONG_TOKEN = "the subject id and deletion token do not match an enrolled subject"


def _own_subject(svc, subject_id: str, token: str | None, who: str) -> dict:
    """The subject whose deletion token this is; a wrong subject id or token counts against `who`'s limit.

    A wrong token for a real id, any token for an unknown or erased id, and a malformed id get one
    answer (403 bad_token, one message), and a real id and an unknown one cost the same single
    lookup before it: whether a subject id exists cannot be probed. Only a matching token reads
    the subject (an erased one has no token left to match).
    """
    if not token:
        raise ApiError(401, "missing_token", "send your deletion token in the X-Deletion-Token header")
    if not SUBJECT_ID.match(subject_id) or not svc.registry.store.check_token(subject_id, token):
        svc.auth_failed(who)
        raise ApiError(403, "bad_token", WRONG_TOKEN)
    subj = svc.registry.store.get_subject(subject_id)
    if subj is None or subj["status"] == "erased":  # pragma: no cover - an erased subject's token hash is gone
        svc.auth_failed(who)
        raise ApiError(403, "bad_token", WRONG_TOKEN)
    return subj


def _exposure(svc, subj: dict) -> dict:
    from scanner import disclosure

    rows = svc.registry.store.findings(subject_id=subj["id"])
    out = disclosure.exposure(
        subj, rows, delay_s=svc.settings.disclosure_delay_s, granule_s=svc.settings.disclosure_granule_s
    )
    svc.audit("exposure_check", "subject", subj["id"], {"findings": len(rows), "verified": out["verified"]})
    return out


def _erase(svc, subject_id: str, token: str) -> dict:
    from scanner.registry import erase

    with svc.lock:
        receipt = erase(svc.registry, subject_id, token=token, actor="subject")
    receipt = {k: v for k, v in receipt.items() if k != "receipt_path"}
    return {"subject_id": subject_id, "receipt": receipt}
