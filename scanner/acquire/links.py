"""The links an HTML page offers: every <a href>, media source, frame and refresh target, made absolute.

A saved page is evidence of what it offered, so every link is listed (deduplicated, in page
order) whether or not it is followed. The page is parsed with the standard library's tolerant
`html.parser`, which never fetches anything and copes with the broken markup of throwaway pages.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

MAX_LINKS = 10_000  # a page listing more is recorded with the first 10,000 and a note
TEXT_CHARS = 200  # link text kept per link

# tag -> attributes holding a URL the page offers
_URL_ATTRS = {
    "a": ("href",),
    "area": ("href",),
    "link": ("href",),
    "iframe": ("src",),
    "frame": ("src",),
    "img": ("src",),
    "source": ("src",),
    "video": ("src", "poster"),
    "audio": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "form": ("action",),
}
_REFRESH = re.compile(r"^\s*\d+\s*[;,]\s*url\s*=\s*['\"]?([^'\"]+)", re.IGNORECASE)


class _LinkParser(HTMLParser):
    def __init__(self, base_url: str):
        super().__init__(convert_charrefs=True)
        self.base = base_url
        self.links: list[dict] = []
        self.seen: set[str] = set()
        self.open_a: dict | None = None
        self.truncated = False

    def handle_starttag(self, tag, attrs):
        attrs = {k.lower(): v for k, v in attrs if v is not None}
        if tag == "base" and attrs.get("href") and not self.links:
            self.base = urljoin(self.base, attrs["href"].strip())
            return
        if tag == "meta" and attrs.get("http-equiv", "").lower() == "refresh":
            m = _REFRESH.match(attrs.get("content", ""))
            if m:
                self._add(m.group(1), "meta-refresh")
            return
        for attr in _URL_ATTRS.get(tag, ()):
            if attrs.get(attr):
                link = self._add(attrs[attr], tag)
                if tag == "a" and link is not None:
                    self.open_a = link

    def handle_endtag(self, tag):
        if tag == "a":
            self.open_a = None

    def handle_data(self, data):
        if self.open_a is not None and len(self.open_a["text"]) < TEXT_CHARS:
            self.open_a["text"] = (self.open_a["text"] + " " + " ".join(data.split())).strip()[:TEXT_CHARS]

    def _add(self, raw: str, tag: str) -> dict | None:
        url, _fragment = urldefrag(urljoin(self.base, raw.strip()))
        if urlsplit(url).scheme not in ("http", "https"):
            return None  # mailto:, javascript:, data: ... offer nothing to fetch
        if url in self.seen:
            return None
        if len(self.links) >= MAX_LINKS:
            self.truncated = True
            return None
        self.seen.add(url)
        link = {"url": url, "tag": tag, "text": ""}
        self.links.append(link)
        return link


def page_links(path: str | Path, base_url: str, content_type: str | None) -> tuple[list[dict], list[str]]:
    """Return the http(s) links of a saved HTML page and notes (charset guessed, list cut short)."""
    charset = _charset(content_type)
    notes = []
    parser = _LinkParser(base_url)
    try:
        decoder = codecs.getincrementaldecoder(charset or "utf-8")(errors="replace")
    except LookupError:
        notes.append(f"unknown charset {charset!r} in Content-Type: the page was read as UTF-8")
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    with open(path, "rb") as f:
        while chunk := f.read(1 << 16):
            parser.feed(decoder.decode(chunk))
    parser.feed(decoder.decode(b"", final=True))
    parser.close()
    if parser.truncated:
        notes.append(f"the page offers more than {MAX_LINKS} links: the first {MAX_LINKS} are listed")
    return parser.links, notes


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = re.search(r"charset\s*=\s*['\"]?([\w.:-]+)", content_type, re.IGNORECASE)
    return m.group(1) if m else None


def is_html(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media in ("text/html", "application/xhtml+xml")
