"""Plain server-rendered pages for individuals: enroll with consent, check exposure, erase.

No JavaScript, no cookies, no external resource (a Content-Security-Policy forbids any); forms
post to the same routes the JSON API uses underneath, and the pages fit a phone's screen.
The enrollment answer shows a deletion token: every page is sent with `Cache-Control: no-store`,
`X-Frame-Options: DENY` and `frame-ancestors 'none'`, `Referrer-Policy: no-referrer` and
`X-Content-Type-Options: nosniff` (the CSP is a header: a <meta> CSP cannot forbid framing).
"""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse

from api.errors import RETRY_AFTER, ApiError

CSS = """
body{font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1b1f24}
header{background:#1d2b3a;color:#fff;padding:14px 18px}header a{color:#fff;text-decoration:none;font-weight:600}
main{max-width:640px;margin:0 auto;padding:16px}section{background:#fff;border:1px solid #dde1e6;border-radius:8px;
padding:16px;margin:0 0 16px}label{display:block;margin:12px 0 4px;font-weight:600}
input[type=text],input[type=file]{width:100%;box-sizing:border-box;padding:10px;font-size:16px}
button{margin-top:16px;padding:12px 18px;font-size:16px;border:0;border-radius:6px;background:#1d5fa8;color:#fff}
.consent{white-space:pre-wrap;background:#f0f2f5;padding:12px;border-radius:6px;max-height:320px;overflow:auto}
.token{font-family:monospace;font-size:18px;word-break:break-all;background:#fff6d6;padding:10px}
.error{background:#fde8e8;border-color:#f5b5b5}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #eee;padding:6px;text-align:left}
"""


CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def page(title: str, body: str, status: int = 200, headers: dict | None = None) -> HTMLResponse:
    return HTMLResponse(
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "form-action 'self'\">"
        f"<title>{html.escape(title)} - facetrace</title><style>{CSS}</style></head><body>"
        "<header><a href='/'>facetrace</a> &middot; is my face being traded?</header>"
        f"<main><h1>{html.escape(title)}</h1>{body}</main></body></html>",
        status_code=status,
        headers={**HEADERS, **(headers or {})},
    )


def error_page(exc: ApiError) -> HTMLResponse:
    return page(
        "Something went wrong",
        f"<section class='error'><p id='error' data-code='{html.escape(exc.code)}'>"
        f"{html.escape(exc.message)}</p><p><a href='javascript:history.back()'>Back</a></p></section>",
        exc.status,
        {"Retry-After": RETRY_AFTER[exc.status]} if exc.status in RETRY_AFTER else None,
    )


def register(app, access, table: dict) -> None:
    from api.routes import _enroll, _erase, _exposure, _own_subject, _svc

    def route(method: str, path: str, who, **kw):
        table[(method, path)] = who.access
        return app.api_route(
            path,
            methods=[method],
            dependencies=[Depends(who)],
            response_class=HTMLResponse,
            include_in_schema=False,
            **kw,
        )

    public = access("public")
    token = access("token")

    @route("GET", "/", public)
    def index():
        return page(
            "Is my face being traded?",
            """
<section><p>Face photos are sold in bulk on grey markets. If you enroll here, with your consent, every
dump and upload this service screens is checked for your face, and you can see what was found.</p>
<p><a href='/enroll'>Enroll</a> &middot; <a href='/exposure'>Check what was found</a> &middot;
<a href='/erase'>Erase myself</a></p>
<p>We keep face encodings and photo hashes, never your photos. You can erase everything at any time
with the deletion token you receive when you enroll.</p></section>""",
        )

    @route("GET", "/enroll", public)
    def enroll_form():
        from scanner.consent import ConsentInput

        c = ConsentInput()
        return page(
            "Enroll",
            f"""
<form method='post' action='/enroll' enctype='multipart/form-data'><section>
<label for='photos'>Three or more photos of your face (one face per photo)</label>
<input type='file' id='photos' name='photos' accept='image/*' multiple required>
<label>Consent (version {html.escape(c.text_version)})</label>
<div class='consent' id='consent-text'>{html.escape(c.text)}</div>
<label><input type='checkbox' id='consent' name='consent' value='true' required> I have read this text and I
agree: facetrace may keep an encoding of my face to search for it.</label>
<input type='hidden' name='consent_version' value='{html.escape(c.text_version)}'>
<button type='submit' id='submit'>Enroll</button></section></form>""",
        )

    @route("POST", "/enroll", public)
    def enroll_submit(
        request: Request,
        photos: Annotated[list[UploadFile], File()],
        consent: Annotated[bool, Form()] = False,
        consent_version: Annotated[str, Form()] = "",
    ):
        try:
            out = _enroll(_svc(request), photos, consent, consent_version)
        except ApiError as exc:
            return error_page(exc)
        r = out["consent_receipt"]
        return page(
            "You are enrolled",
            f"""
<section><p>Your id: <b id='subject-id'>{html.escape(out["subject_id"])}</b></p>
<p>Your deletion token. <b>Write it down now: it is shown only once.</b> You need it to see what was
found and to erase yourself.</p><p class='token' id='token'>{html.escape(out["deletion_token"])}</p>
<p>Consent receipt: consent text {html.escape(r["consent"]["text_version"])} (SHA-256
<code>{html.escape(r["consent"]["text_sha256"][:16])}...</code>), granted {html.escape(r["enrolled_at"])},
{len(r["photos"])} photos, photos kept: {"yes" if r["photos_kept"] else "no"}.</p>
<p>Earlier scans were searched for you.</p><p class='note' id='limited'>{html.escape(out["disclosure"])}</p>
<p><a href='/exposure'>Check what was found</a> &middot; <a href='/erase'>Erase myself</a></p></section>""",
        )

    @route("GET", "/exposure", public)
    def exposure_form():
        return page("What was found", _token_form("/exposure", "Show what was found"))

    @route("POST", "/exposure", token)
    def exposure_submit(request: Request, subject_id: Annotated[str, Form()] = "", token: Annotated[str, Form()] = ""):
        svc = _svc(request)
        try:
            subj = _own_subject(svc, subject_id.strip(), token.strip(), request.state.client_address)
        except ApiError as exc:
            return error_page(exc)
        out = _exposure(svc, subj)
        return page(
            "What was found", f"<section>{_exposure_html(out)}<p class='note'>No picture is shown here.</p></section>"
        )

    @route("GET", "/erase", public)
    def erase_form():
        return page("Erase myself", _token_form("/erase", "Erase everything about me"))

    @route("POST", "/erase", token)
    def erase_submit(request: Request, subject_id: Annotated[str, Form()] = "", token: Annotated[str, Form()] = ""):
        svc = _svc(request)
        try:
            _own_subject(svc, subject_id.strip(), token.strip(), request.state.client_address)
            out = _erase(svc, subject_id.strip(), token.strip())
        except ApiError as exc:
            return error_page(exc)
        r = out["receipt"]
        deleted = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in r["deleted"].items())
        return page(
            "You are erased",
            f"""
<section><p id='erased'>Erased at {html.escape(r["erased_at"])}: {html.escape(deleted)}.</p>
<p>Kept: {html.escape(r["kept"])}.</p></section>""",
        )


def _exposure_html(out: dict) -> str:
    """The exposure page's content: each finding for a verified subject, delayed counts otherwise."""
    if not out["verified"]:
        summ = out["summary"]
        bands = ", ".join(f"{n} {html.escape(b)}" for b, n in summ["bands"].items() if n) or "none"
        return (
            f"<p id='count'>{summ['findings']} finding(s) made before {html.escape(summ['as_of'][:10])} "
            f"(UTC) concern you: {bands}.</p><p class='note' id='limited'>{html.escape(out['limited'])}</p>"
        )
    rows = "".join(
        f"<tr><td>{html.escape(f['band'])}</td><td>{html.escape(f['kind'].replace('_', ' '))}</td>"
        f"<td>{html.escape(f['found_at'][:19])}</td></tr>"
        for f in out["findings"]
    )
    if not rows:
        return "<p id='count'>0 finding(s): your face has not been found in any screened dump.</p>"
    return (
        f"<p id='count'>{len(out['findings'])} finding(s) concern you.</p><table><tr><th>band</th>"
        f"<th>kind</th><th>found</th></tr>{rows}</table>"
    )


def _token_form(action: str, button: str) -> str:
    return f"""
<form method='post' action='{action}'><section>
<label for='subject_id'>Your id</label><input type='text' id='subject_id' name='subject_id' required
 autocomplete='off' pattern='[0-9a-f]{{16}}'>
<label for='token'>Your deletion token</label><input type='text' id='token' name='token' required autocomplete='off'>
<button type='submit' id='submit'>{button}</button></section></form>"""
