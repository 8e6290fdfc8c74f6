"""Renderers: pure functions of the report document (JSON, self-contained HTML, hashdeep manifest).

A dump's file names are the seller's text: `a\nb.jpg`, `x\x1b[2J.jpg`, a bidirectional override
that shows `photo\u202egpj.exe` as `photoexe.jpg`. No renderer passes such a character on raw: the
JSON writes it as a \\uNNNN escape, the HTML shows it as a marked escape, and the manifest
%-escapes it (hashdeep's format has no quoting). The characters are those `cli.common.terminal_text`
escapes for the terminal: controls, format characters, line and paragraph separators, surrogates,
private-use and unassigned code points.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata

from scanner.evidence.signing import signer_fingerprint

PAGE = 500  # manifest rows per collapsible block: a 100,000-member dump stays usable in a browser

UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
_NOT_PLAIN = re.compile(r"[^\x20-\x7e]")  # only these are looked up: a report is mostly ASCII
_NOT_PLAIN_JSON = re.compile(r"[^\x20-\x7e\n]")  # json.dumps escapes C0 in strings; its newlines are layout
_NOT_PLAIN_MANIFEST = re.compile(r"[^\x20-\x7e]|[%,]")
_HEX2 = re.compile(rb"%([0-9A-Fa-f]{2})")
MANIFEST_HEADER = ["%%%% HASHDEEP-1.0", "%%%% size,sha256,filename"]

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{background:#1d2b3a;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;opacity:.85}main{padding:18px 28px;max-width:1200px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:14px 18px;margin:0 0 16px}
h2{font-size:17px;margin:0 0 10px}table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #eceff2;padding:4px 6px;text-align:left;vertical-align:top;word-break:break-all}
th{background:#f0f2f5}.band-confident{color:#fff;background:#b3261e;padding:1px 6px;border-radius:3px}
.band-probable{color:#fff;background:#c76b00;padding:1px 6px;border-radius:3px}
.band-possible{color:#333;background:#e5e7ea;padding:1px 6px;border-radius:3px}
.nw{white-space:nowrap;word-break:normal}.kpi{display:inline-block;margin:0 22px 8px 0}.kpi b{display:block;font-size:22px}
.pic{width:72px;height:auto;border-radius:3px}.px{image-rendering:pixelated}
.note{color:#555;font-size:12px}code{font-size:12px}details{margin:6px 0}summary{cursor:pointer;font-weight:600}
.warn{color:#b3261e;font-weight:600}h3{font-size:15px;margin:14px 0 6px}.web{border-top:1px solid #dde1e6;padding-top:6px}
.ctl{font-family:monospace;color:#b3261e;background:#fde8e7;border-radius:2px;padding:0 1px}
"""


def _unsafe(c: str) -> bool:
    return unicodedata.category(c) in UNSAFE_CATEGORIES


def _json_escape(m: re.Match) -> str:
    c = m.group()
    if not _unsafe(c):
        return c
    o = ord(c)
    if o > 0xFFFF:  # JSON escapes only UTF-16 code units: a surrogate pair
        o -= 0x10000
        return f"\\u{0xD800 + (o >> 10):04x}\\u{0xDC00 + (o & 0x3FF):04x}"
    return f"\\u{o:04x}"


def json_text(obj, **kwargs) -> str:
    """`json.dumps(obj, ensure_ascii=False, ...)` with every unsafe character that JSON allows raw
    (DEL, C1 controls, format characters, separators...) written as a \\uNNNN escape: the same
    document, which a terminal showing the file cannot be made to act on."""
    return _NOT_PLAIN_JSON.sub(_json_escape, json.dumps(obj, ensure_ascii=False, **kwargs))


def render_json(doc: dict) -> str:
    return json_text(doc, indent=2, sort_keys=False) + "\n"


def _percent(c: str) -> str:
    return "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))


def manifest_name(name: str) -> str:
    """`name` as hashdeep's filename field: `%`, `,` and every unsafe character as %XX of its UTF-8
    bytes (URL style), so that a line holds exactly three fields and one member.

    hashdeep itself writes names raw and splits a line at every comma, so it has no way to carry
    such a name; %-escaping keeps each line one that hashdeep reads (a member so named is then
    reported as moved, never as a forged extra line), and `unescape_manifest_name` reverses it.
    """
    return _NOT_PLAIN_MANIFEST.sub(
        lambda m: _percent(m.group()) if m.group() in "%," or _unsafe(m.group()) else m.group(), name
    )


def unescape_manifest_name(field: str) -> str:
    """The name that `manifest_name` wrote as `field`."""
    raw = _HEX2.sub(lambda m: bytes([int(m.group(1), 16)]), field.encode("utf-8", "surrogatepass"))
    return raw.decode("utf-8", "surrogatepass")


def _comment(text: str) -> str:
    """A manifest comment kept to one inert line (unsafe characters %-escaped, the rest as written)."""
    return _NOT_PLAIN.sub(lambda m: _percent(m.group()) if _unsafe(m.group()) else m.group(), text)


def render_manifest(doc: dict) -> str:
    """Return the manifest in hashdeep's format (size,sha256,filename; names escaped by `manifest_name`)."""
    lines = [*MANIFEST_HEADER, f"## facetrace report {doc['report_id']} scan {doc['acquisition']['scan_id']}"]
    for w in doc["acquisition"].get("from_web") or []:
        r = w["record"]
        lines.append(
            _comment(
                f"## {w['input_path']} acquired from {r['requested_url']} at {r['started_at']} "
                f"(acquisition {r['id']}, SHA-256 {r['sha256']})"
            )
        )
    lines.append("##")
    for e in doc["acquisition"]["manifest"]:
        if e["sha256"]:
            lines.append(f"{e['size']},{e['sha256']},{manifest_name(e['path'])}")
    return "\n".join(lines) + "\n"


class ManifestError(ValueError):
    """A manifest.txt line that is not one `render_manifest` writes."""


def parse_manifest(text: str) -> list[dict]:
    """Read back what `render_manifest` wrote: each member's size, SHA-256 and name, in order
    (each entry also has its `line` number). Raise ManifestError at the first line it did not write."""
    lines = text.split("\n")
    if lines[:2] != MANIFEST_HEADER:
        raise ManifestError("line 1: not a hashdeep manifest (no HASHDEEP-1.0 header for size,sha256,filename)")
    if lines[-1] != "":
        raise ManifestError(f"line {len(lines)}: the last line does not end with a newline (the file was cut)")
    out = []
    for n, line in enumerate(lines[2:-1], 3):
        if line.startswith("#"):
            continue
        fields = line.split(",")
        if len(fields) != 3 or not fields[0].isdigit() or not re.fullmatch(r"[0-9a-f]{64}", fields[1]):
            raise ManifestError(f"line {n}: not a size,sha256,filename entry")
        out.append({"line": n, "size": int(fields[0]), "sha256": fields[1], "path": unescape_manifest_name(fields[2])})
    return out


def manifest_report_id(text: str) -> str | None:
    """The report id that a manifest names in its first comment (None: it names none)."""
    m = re.search(r"^## facetrace report ([0-9a-f]+) scan ", text, flags=re.M)
    return m.group(1) if m else None


def _show(c: str) -> str:
    o = ord(c)
    text = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(c) or (
        f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}"
    )
    return f"<span class='ctl' title='control character U+{o:04X}'>{text}</span>"


def _text(value: str) -> str:
    """HTML text of a value: escaped, and every unsafe character shown as a marked escape (`_show`):
    a newline in a name would otherwise read as a space, a bidirectional override reorder it."""
    return _NOT_PLAIN.sub(lambda m: _show(m.group()) if _unsafe(m.group()) else m.group(), html.escape(value))


def render_html(doc: dict) -> str:
    """Return a self-contained HTML page: inline CSS, no script, no external request of any kind."""
    e, a = _text, html.escape  # text, and attribute values (ids and classes of our own)
    acq, method = doc["acquisition"], doc["method"]
    counts = acq.get("counts") or {}
    n_findings = sum(len(s["items"]) for s in doc["findings"])
    title = f"facetrace evidence report {doc['report_id'][:8]}"
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{a(title)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>{e(title)}</h1><p>Scan {e(acq['scan_id'])} &middot; generated {e(doc['generated_at'])} "
        f"by {e(doc['generated_by'] or 'unknown')} &middot; facetrace {e(doc['facetrace'])}"
        f"{' &middot; <b>UNREDACTED</b>' if not doc['redacted'] else ' &middot; faces redacted'}</p></header><main>",
    ]
    scope = doc["scope"].get("subject_id")
    out.append("<section><h2>Summary</h2>")
    for label, value in [
        ("files", counts.get("files")),
        ("images", counts.get("images")),
        ("faces", counts.get("faces")),
        ("unreadable", counts.get("unreadable")),
        ("findings", n_findings),
        ("enrolled people found", doc["counts_under_law"]["individuals_found"]),
    ]:
        out.append(f"<span class='kpi' id='kpi-{a(label.replace(' ', '-'))}'><b>{e(str(value))}</b>{e(label)}</span>")
    if scope:
        out.append(f"<p class='note'>This report concerns subject {e(scope)} only.</p>")
    pics = doc.get("pictures") or {}
    if not pics.get("count"):
        out.append("<p class='note'>No face picture is included: findings cite hashes and distances.</p>")
    elif doc["redacted"]:
        out.append(
            f"<p class='note'>Pictures are redacted ({e(pics['redaction'])}): they show where a face "
            "was found, not whose it is.</p>"
        )
    else:
        out.append(
            "<p class='note'><b>UNREDACTED: this report shows faces.</b> Its making is recorded in the "
            "workspace's audit log.</p>"
        )
    for note in pics.get("notes", []):
        out.append(f"<p class='note'>Pictures: {e(note)}</p>")
    out.append(
        "<p class='note'>The signature and public key are in report.json; check them with "
        "<code>facetrace report verify report.json --key INVESTIGATOR-KEY.pem --dump DUMP</code>, which also "
        "checks this page and manifest.txt."
    )
    signer = signer_fingerprint(doc) if doc.get("signature") else None
    if signer:
        out.append(
            f" Signed with the Ed25519 key <code id='signer'>{e(signer)}</code>: compare it with the key "
            "the investigator published."
        )
    head = doc.get("audit_head")
    if head:
        out.append(
            f" When it was signed, the workspace's audit log ended at entry {e(str(head['seq']))}, hash "
            f"<code id='audit-head'>{e(head['hash'])}</code>."
        )
    out.append("</p></section>")

    out.append(f"<section><h2 id='findings'>Findings ({n_findings})</h2>")
    if not doc["findings"]:
        out.append("<p>No enrolled person was found in this dump.</p>")
    for s in doc["findings"]:
        bands = ", ".join(f"{k}: {v}" for k, v in s["items_by_band"].items())
        out.append(
            f"<details open><summary>Subject {e(s['subject_id'])} &mdash; {len(s['items'])} item(s) ({e(bands)})"
            "</summary><table><tr><th>picture</th><th>band</th><th>kind</th><th>member</th><th>evidence</th></tr>"
        )
        for item in s["items"]:
            pic = item.get("picture")
            img = (
                f"<img class='pic{' px' if pic['redacted'] else ''}' alt='{'redacted ' if pic['redacted'] else ''}picture' "
                f"src='data:{a(pic['media_type'])};base64,{pic['data_base64']}'>"
                if pic
                else "&ndash;"
            )
            out.append(
                f"<tr><td>{img}</td><td class='nw'><span class='band-{a(item['band'])}'>{e(item['band'])}</span></td>"
                f"<td class='nw'>{e(item['kind'])}</td><td>{e(item['logical_path'])}"
                f"{_where(item)}</td>"
                f"<td>{_held_back(item['evidence'])}<code>{e(_evidence_text(item['evidence']))}</code></td></tr>"
            )
        out.append("</table></details>")
    out.append("</section>")

    manifest = acq["manifest"]
    out.append(
        "<section><h2>Acquisition</h2><p>Inputs:</p><table><tr><th>path</th><th>kind</th><th>size</th>"
        "<th>SHA-256</th></tr>"
    )
    for i in acq["inputs"]:
        out.append(
            f"<tr><td>{e(i['path'])}</td><td>{e(i['kind'])}</td><td>{e(str(i['size']))}</td>"
            f"<td><code>{e(str(i['sha256']))}</code></td></tr>"
        )
    out.append(f"</table><p>Scan started {e(str(acq['started_at']))}, finished {e(str(acq['finished_at']))}.</p>")
    out.append(
        f"<details><summary>Unreadable or skipped members ({len(acq['unreadable'])})</summary><table>"
        "<tr><th>member</th><th>status</th><th>reason</th></tr>"
    )
    for u in acq["unreadable"]:
        out.append(f"<tr><td>{e(u['path'])}</td><td>{e(u['status'])}</td><td>{e(str(u['reason']))}</td></tr>")
    out.append("</table></details>")
    for start in range(0, len(manifest), PAGE):
        chunk = manifest[start : start + PAGE]
        out.append(
            f"<details><summary>Manifest, members {start + 1}-{start + len(chunk)} of {len(manifest)}</summary>"
            "<table><tr><th>member</th><th>size</th><th>SHA-256</th><th>type</th><th>status</th></tr>"
        )
        for m in chunk:
            out.append(
                f"<tr><td>{e(m['path'])}</td><td>{m['size']}</td><td><code>{e(str(m['sha256']))}</code></td>"
                f"<td>{e(m['type'])}</td><td>{e(m['status'])}</td></tr>"
            )
        out.append("</table></details>")
    out += _web_html(acq.get("from_web") or [])
    out.append("</section>")

    out.append("<section><h2>Method</h2><table>")
    engine = method["engine"]
    out.append(
        f"<tr><th>embedder</th><td>{e(engine['embedder'])} {e(engine['embedder_version'])}"
        f"{' run by ' + e(engine['runtime']) if engine.get('runtime') else ''}</td></tr>"
    )
    versions = engine.get("versions", {})
    for k, v in versions.items():
        out.append(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>")
    for k, v in method["engine"].get("model_files", {}).items():
        out.append(f"<tr><th>model {e(k)}</th><td><code>{e(v)}</code></td></tr>")
    for k, v in {**method["parameters"], **method["policy"]}.items():
        out.append(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>")
    out.append(f"<tr><th>registry subjects at scan</th><td>{e(str(method['registry_subjects_at_scan']))}</td></tr>")
    out.append(f"<tr><th>host</th><td>{e(json.dumps(method['host']))}</td></tr></table></section>")

    law = doc["counts_under_law"]
    out.append(
        "<section><h2>Counts that matter under the law</h2>"
        f"<p>Distinct enrolled individuals found: <b>{law['individuals_found']}</b>. "
        f"Items of biometric data (faces) in the scanned members: <b>{law['items_of_biometric_data']}</b>.</p>"
        "<p class='note'>Context only, not a verdict:</p><ul>"
        + "".join(f"<li class='note'>{e(c)}</li>" for c in law["context"])
        + "</ul></section>"
    )
    prof = doc.get("profile")
    if prof:
        b = prof["bundle"]
        out.append(
            "<section><h2>Dump profile</h2>"
            f"<p id='profile-signature'>{e(prof['packaging']['signature'])}</p>"
            f"<p>Background faces not counted as people: {prof['people']['background_faces']}. "
            f"Sidecar files: {e(', '.join(f'{v} {k}' for k, v in prof['sidecars'].items()) or 'none')}. "
            f"Photos with EXIF: {prof['capture']['with_exif']} of {prof['capture']['images']}.</p>"
            f"<p>Trading-bundle score <b>{b['score']:.2f}</b> (threshold {b['threshold']}): "
            f"{'likely a face-data bundle' if b['likely_bundle'] else 'not assessed as a bundle'}. "
            f"<span class='note'>{e(b['not_a_verdict'])}.</span></p><ul>"
            + "".join(f"<li>+{r['weight']:.2f} {e(r['why'])}</li>" for r in b["reasons"])
            + (f"<li class='note'>{e(b['caveat'])}</li>" if b.get("caveat") else "")
            + "</ul></section>"
        )
    lineage = doc.get("lineage") or []
    out.append(f"<section><h2>Lineage ({len(lineage)} relation(s) to other dumps)</h2>")
    if not lineage:
        out.append("<p>No other dump of this workspace shares items or people with this one.</p>")
    else:
        out.append("<table><tr><th>dump</th><th>relation</th><th>shared</th></tr>")
        for r in lineage:
            ev = r["evidence"]
            out.append(
                f"<tr><td><code>{e(r['scan_id'])}</code></td><td>{e(ev['description'])}</td>"
                f"<td>{ev['exact']} identical, {ev['near_copies']} near copies; {ev['share_of_a']:.0%} of the "
                f"earlier dump, {ev['share_of_b']:.0%} of the later; {ev['people_shared']} people</td></tr>"
            )
        out.append("</table>")
    out.append("</section>")
    out.append(
        f"<section><h2>Chain of custody ({len(doc['custody'])} audit entries)</h2><table>"
        "<tr><th>#</th><th>time</th><th>actor</th><th>action</th><th>entry hash</th></tr>"
    )
    for c in doc["custody"]:
        out.append(
            f"<tr><td>{c['seq']}</td><td>{e(c['at'])}</td><td>{e(c['actor'])}</td><td>{e(c['action'])}</td>"
            f"<td><code>{e(c['hash'][:16])}</code></td></tr>"
        )
    out.append("</table></section></main></body></html>\n")
    return "".join(out)


def _web_html(entries: list[dict]) -> list[str]:
    """The acquisition records of the inputs downloaded from links: every request, header and hash."""
    if not entries:
        return []
    e, a = _text, html.escape
    out = [f"<h3 id='from-web'>Acquired from the web ({len(entries)})</h3>"]
    for entry in entries:
        r = entry["record"]
        out.append(f"<div class='web' id='acquisition-{a(r['id'])}'>")
        if r["settings"].get("insecure"):
            out.append(
                "<p class='warn'>TLS verification was DISABLED for this download (--insecure): the "
                "server's identity was not checked.</p>"
            )
        if not entry["sha256_matches"]:
            out.append(
                "<p class='warn'>The scanned input's SHA-256 differs from the acquired file's: the file "
                "changed after it was acquired.</p>"
            )
        if not entry["record_intact"]:
            out.append(
                "<p class='warn'>This acquisition record no longer matches the SHA-256 kept in the "
                "audit log: it was altered after the download.</p>"
            )
        tls = next((x["tls"] for x in reversed(r["requests"]) if x.get("tls") and not x.get("redirect_to")), None)
        rows = [
            ("input", entry["input_path"]),
            ("requested URL", r["requested_url"]),
            ("final URL", r["final_url"]),
            ("status", f"{r['status']}, HTTP {r['http_status']}" + (f": {r['reason']}" if r["reason"] else "")),
            ("server address", r["server"]),
            (
                "TLS",
                "none (plain HTTP)"
                if tls is None
                else f"{tls.get('version')}, {tls.get('cipher')}, certificate SHA-256 {tls.get('certificate_sha256')}, "
                + ("verified" if tls.get("verified") else "NOT VERIFIED")
                + (f", subject {tls['subject']}, issuer {tls['issuer']}" if tls.get("subject") else ""),
            ),
            ("trusted certificates", r["settings"].get("tls_trust") if tls is not None else None),
            ("started", r["started_at"]),
            ("finished", r["finished_at"]),
            (
                "bytes",
                f"{r['bytes']:,}" + ("" if r["expected_bytes"] is None else f" (announced {r['expected_bytes']:,})"),
            ),
            ("SHA-256", r["sha256"]),
            ("MD5", r["md5"]),
            ("content type", r["content_type"]),
            ("stored as", r["path"]),
            (
                "resumed",
                None
                if not r["resumed_from"]
                else f"from byte {r['resumed_from']['offset']:,} kept by acquisition(s) "
                f"{', '.join(r['resumed_from']['acquisition_ids'])} (If-Range {r['resumed_from']['validator']})",
            ),
            ("linked from", r["parent_id"] and f"page acquisition {r['parent_id']}"),
            (
                "acquired by",
                f"{r['actor']} with facetrace {r['tool'].get('facetrace')} (requests "
                f"{r['tool'].get('requests')}, urllib3 {r['tool'].get('urllib3')}, "
                f"{r['tool'].get('openssl')})",
            ),
            (
                "record",
                f"{r['id']}, SHA-256 {entry['record_sha256']} "
                + ("(matches its audit entry)" if entry["record_intact"] else "(ALTERED)"),
            ),
        ]
        out.append(
            "<table>"
            + "".join(
                f"<tr><th class='nw'>{e(k)}</th><td><code>{e(str(v))}</code></td></tr>"
                for k, v in rows
                if v is not None
            )
            + "</table>"
        )
        for note in r["notes"]:
            out.append(f"<p class='note'>Note: {e(note)}</p>")
        out.append(
            f"<p>Every request ({len(r['requests'])}), in order:</p><table><tr><th>#</th><th>sent (UTC)</th>"
            "<th>URL</th><th>status</th><th>server address</th><th>proxy</th><th>redirect to</th>"
            "<th>bytes kept</th><th>error</th></tr>"
        )
        for x in r["requests"]:
            out.append(
                f"<tr><td>{x['attempt']}</td><td class='nw'>{e(x['sent_at'])}</td><td>{e(x['url'])}</td>"
                f"<td>{e(str(x['status']))} {e(x['reason'] or '')}</td><td>{e(str(x['peer']))}</td>"
                f"<td>{e(str(x['proxy'] or ''))}</td><td>{e(x['redirect_to'] or '')}</td>"
                f"<td>{x['body_bytes']:,}</td><td>{e(x['error'] or '')}</td></tr>"
            )
        out.append("</table>")
        for x in r["requests"]:
            sent = "".join(
                f"<tr><td>&rarr; {e(k)}</td><td>{e(str(v))}</td></tr>" for k, v in x["request_headers"].items()
            )
            got = "".join(f"<tr><td>{e(k)}</td><td>{e(str(v))}</td></tr>" for k, v in x["headers"])
            out.append(
                f"<details><summary>Request {x['attempt']} headers: sent and received</summary><table>"
                f"<tr><th>header</th><th>value</th></tr>{sent}{got}</table></details>"
            )
        for rel in entry["related"]:
            q = rel["record"]
            what = (
                "the page it was linked from"
                if rel["relation"] == "linked_from"
                else "an earlier attempt whose bytes the resume kept"
            )
            out.append(
                f"<p class='note'>Related: {e(what)}: acquisition {e(q['id'])} of {e(q['requested_url'])}, "
                f"{e(q['status'])}{': ' + e(q['reason']) if q['reason'] else ''}, {len(q['requests'])} "
                f"request(s), record SHA-256 {e(rel['record_sha256'])} (full record in report.json)</p>"
            )
        out.append("</div>")
    return out


def _where(item: dict) -> str:
    video = item["evidence"].get("video")
    if video:
        return _text(
            f" at {', '.join(video['time_ranges'])} (person {video['track']})"
            + (" — made from a single still" if video.get("animation") else "")
        )
    return "" if item["face_index"] is None else f" (face {item['face_index']})"


def _held_back(ev: dict) -> str:
    """Why a finding was held back at its band by the population or the registry's size
    (docs/matching.md), said in words above the evidence."""
    return f"<p class='warn'>Held back: {_text(ev['capped'])}</p>" if ev.get("capped") else ""


def _evidence_text(ev: dict) -> str:
    keep = {k: v for k, v in ev.items() if k not in ("thresholds",)}
    return json.dumps(keep, ensure_ascii=False, sort_keys=True)
