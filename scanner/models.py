"""Frozen dataclasses that travel between the stages: the one vocabulary of a scan.

A `Member` is one file of a dump (a plain file, an archive, or a file inside an archive) with the
identity of its bytes. An `Analysis` is what the fingerprint stage learnt from those bytes. A
`MemberResult` joins the two with a status, and is what a scan reports for every file, readable or
not. Every face carries the name and version of the engine that produced its encoding, because an
encoding compared with one made by another engine is meaningless.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    DUPLICATE = "duplicate"  # same bytes as an earlier member of the scan; analysed once
    UNREADABLE = "unreadable"  # bytes could not be read or decoded; `reason` says why
    SKIPPED = "skipped"  # deliberately not read (link, too large, unsupported kind); `reason` says why


class Kind(StrEnum):
    IMAGE = "image"
    ARCHIVE = "archive"
    VIDEO = "video"
    OTHER = "other"


@dataclass(frozen=True)
class Member:
    """One file of a dump and the identity of its bytes."""

    seq: int  # position in the scan, in the order members were read
    logical_path: str  # input path, then "!/" and the member name for each archive level
    relpath: str  # path relative to the input, identical for a folder and an archive of it
    size: int
    sha256: str | None  # None when not a byte could be read
    mime: str  # detected from content, never from the name
    kind: Kind
    raw_name: str | None = None  # hex of the name's stored bytes, when decoded from a legacy encoding (GBK, ...)
    hint: str | None = None  # what a small file is for: landmarks, price_list, readme (media.sniff.content_hint)


@dataclass(frozen=True)
class FaceBox:
    """A face rectangle in pixels of the EXIF-oriented, full-resolution image (CSS order)."""

    top: int
    right: int
    bottom: int
    left: int

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.top, self.right, self.bottom, self.left)


@dataclass(frozen=True)
class Face:
    box: FaceBox
    encoding: tuple[float, ...]  # 128 float64 values, exactly as the embedder produced them
    frame_ms: int | None = None  # videos: the sampled frame's time
    track: int | None = None  # videos: the person (track) within the video, numbered by first appearance


@dataclass(frozen=True)
class VideoTrack:
    """One person of a video: the time ranges (ms, inclusive sampled times) where their face shows."""

    track: int
    ranges: tuple[tuple[int, int], ...]
    faces: int


@dataclass(frozen=True)
class VideoFingerprint:
    container: str
    codec: str
    width: int
    height: int
    fps: float | None
    duration_ms: int
    frames_decoded: int
    samples: tuple[tuple[int, str], ...]  # (ms, pHash) of every sampled frame
    tracks: tuple[VideoTrack, ...]
    animation: str | None = None  # why the clip looks made from one still; None when it does not
    note: str | None = None  # why decoding ended early, if it did

    def as_record(self) -> dict:
        return {
            "container": self.container,
            "codec": self.codec,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "duration_ms": self.duration_ms,
            "frames_decoded": self.frames_decoded,
            "samples": [[ms, h] for ms, h in self.samples],
            "tracks": [
                {"track": t.track, "ranges": [list(r) for r in t.ranges], "faces": t.faces} for t in self.tracks
            ],
            "animation": self.animation,
            "note": self.note,
        }

    @classmethod
    def from_record(cls, r: dict) -> VideoFingerprint:
        return cls(
            r["container"],
            r["codec"],
            r["width"],
            r["height"],
            r["fps"],
            r["duration_ms"],
            r["frames_decoded"],
            tuple((ms, h) for ms, h in r["samples"]),
            tuple(VideoTrack(t["track"], tuple(tuple(x) for x in t["ranges"]), t["faces"]) for t in r["tracks"]),
            r.get("animation"),
            r.get("note"),
        )


@dataclass(frozen=True)
class ImageFingerprint:
    width: int  # after EXIF orientation
    height: int
    format: str  # Pillow's format name: JPEG, PNG, ...
    orientation: int  # EXIF orientation tag that was applied (1 = none)
    phash: str  # 64-bit perceptual hash, 16 hex digits
    dhash: str  # 64-bit difference hash, 16 hex digits
    capture: dict | None = None  # EXIF capture metadata: make, model, software, taken, gps (docs/profile.md)


@dataclass(frozen=True)
class Analysis:
    """What the fingerprint stage learnt from one member's bytes; `error` set when it could not."""

    image: ImageFingerprint | None = None
    faces: tuple[Face, ...] = ()
    error: str | None = None
    video: VideoFingerprint | None = None  # videos and animated images


@dataclass(frozen=True)
class MemberResult:
    member: Member
    status: Status
    reason: str | None = None
    duplicate_of: str | None = None  # logical path of the first member with the same bytes
    image: ImageFingerprint | None = None
    faces: tuple[Face, ...] = ()
    video: VideoFingerprint | None = None

    def to_json(self, scan_id: str | None = None) -> dict:
        """Return the JSON Lines record documented in docs/scan-output.md."""
        m = self.member
        record: dict = {
            "scan_id": scan_id,
            "seq": m.seq,
            "path": m.logical_path,
            "relpath": m.relpath,
            "size": m.size,
            "sha256": m.sha256,
            "type": m.mime,
            "kind": m.kind.value,
            "status": self.status.value,
            "reason": self.reason,
            "duplicate_of": self.duplicate_of,
            "raw_name": m.raw_name,
            "hint": m.hint,
            "image": None,
            "faces": [],
        }
        if self.image is not None:
            img = self.image
            record["image"] = {
                "width": img.width,
                "height": img.height,
                "format": img.format,
                "orientation": img.orientation,
                "phash": img.phash,
                "dhash": img.dhash,
                "capture": img.capture,
            }
        record["faces"] = [
            {
                "box": {"top": f.box.top, "right": f.box.right, "bottom": f.box.bottom, "left": f.box.left},
                "encoding": list(f.encoding),
                **({} if f.frame_ms is None else {"frame_ms": f.frame_ms, "track": f.track}),
            }
            for f in self.faces
        ]
        record["video"] = None if self.video is None else self.video.as_record()
        return record


BOMB_REASON = "possible decompression bomb"  # how the reader's reasons for a stopped member begin
MODEL_PREFIX = "onnx-model:"  # the embedder name of an operator's model (scanner/fingerprints/modelfile.py)


@dataclass(frozen=True)
class ModelSpec:
    """An operator's ONNX face model and how its input crop is made; recorded with every scan."""

    path: str
    sha256: str
    label: str
    alignment: str = "arcface"  # "dlib-150" or "arcface"
    size: int = 112  # the model's input is size x size pixels
    channels: str = "rgb"  # "rgb" or "bgr"
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)  # subtracted per channel (in `channels` order)
    std: tuple[float, float, float] = (128.0, 128.0, 128.0)  # then divided by, per channel
    layout: str = "nchw"  # "nchw" or "nhwc", read from the model's input shape
    l2: bool = True  # L2-normalise the output
    dim: int = 0  # the output's size, read from the model

    @property
    def embedder(self) -> str:
        return MODEL_PREFIX + self.label

    def as_record(self) -> dict:
        record = asdict(self)
        record["mean"], record["std"] = list(self.mean), list(self.std)
        return record

    @classmethod
    def from_record(cls, record: dict) -> ModelSpec:
        fields = {k: record[k] for k in cls.__dataclass_fields__ if k in record}
        fields["mean"], fields["std"] = tuple(fields.get("mean", cls.mean)), tuple(fields.get("std", cls.std))
        return cls(**fields)


@dataclass(frozen=True)
class ScanOptions:
    """Every parameter that changes a scan's results; recorded with the scan."""

    # "onnx": dlib's ResNet run by ONNX Runtime, 10x faster and equal within 1e-4 (tested);
    # "dlib": face_recognition's own compute_face_descriptor, the reference
    engine: str = "onnx"
    detector: str = "hog"  # "hog" (CPU, fast) or "cnn" (dlib's MMOD CNN, slow on CPU)
    upsample: int = 1  # face_recognition's number_of_times_to_upsample
    # 1024: on ../shared/facedata/multiface no face is lost down to 800 px while a 2280x1588 photo
    # costs 0.3 s instead of 2.1 s (docs/accuracy.md, benchmarks/detect_size.py).
    detect_max_side: int = 1024
    workers: int = 0  # 0 = one per CPU core
    max_image_pixels: int = 100_000_000  # larger images are refused as possible decompression bombs
    max_member_bytes: int = 256 * 1024 * 1024  # larger members are hashed but not decoded
    max_archive_depth: int = 4  # archives nested deeper are listed but not opened
    # Decompression bombs: a member expanding more than this many times its compressed size (past
    # 1 MiB) is stopped, and an archive may expand to at most max(this ratio x its size, 1 GiB).
    max_expansion_ratio: int = 200
    min_archive_budget: int = 1 << 30
    passwords: tuple[str, ...] = ()  # tried on encrypted zip and 7z members; never recorded
    video_every_ms: int = 1000  # videos: one sampled frame per this many ms, plus scene changes
    video_scene_change: float = 30.0  # mean grey-level change (0-255) of a 32x18 thumbnail that is a cut
    video_max_frames: int = 3600  # videos: sampled frames at most (one hour at the default rate)
    model: ModelSpec | None = None  # engine "model": the workspace's pinned ONNX model

    def as_record(self) -> dict:
        return {
            "max_expansion_ratio": self.max_expansion_ratio,
            "min_archive_budget": self.min_archive_budget,
            "passwords_given": len(self.passwords),
            "video_every_ms": self.video_every_ms,
            "video_scene_change": self.video_scene_change,
            "video_max_frames": self.video_max_frames,
            "engine": self.engine,
            **({"model": self.model.as_record()} if self.model is not None else {}),
            "detector": self.detector,
            "upsample": self.upsample,
            "detect_max_side": self.detect_max_side,
            "max_image_pixels": self.max_image_pixels,
            "max_member_bytes": self.max_member_bytes,
            "max_archive_depth": self.max_archive_depth,
        }


@dataclass(frozen=True)
class EngineInfo:
    """Names, versions and model-file checksums of everything that computed a fingerprint."""

    embedder: str
    embedder_version: str
    hasher: str
    hasher_version: str
    runtime: str = ""  # what executed the embedder: "onnxruntime 1.23.2", "dlib 20.0.1"
    versions: dict[str, str] = field(default_factory=dict)
    model_files: dict[str, str] = field(default_factory=dict)  # file name -> SHA-256

    def as_record(self) -> dict:
        return {
            "embedder": self.embedder,
            "embedder_version": self.embedder_version,
            "hasher": self.hasher,
            "hasher_version": self.hasher_version,
            "runtime": self.runtime,
            "versions": dict(self.versions),
            "model_files": dict(self.model_files),
        }


@dataclass
class ScanCounts:
    """Running totals of a scan; the summary printed at its end."""

    files: int = 0
    images: int = 0
    faces: int = 0
    images_with_faces: int = 0
    duplicates: int = 0
    unreadable: int = 0
    skipped: int = 0
    archives: int = 0
    bytes_read: int = 0  # bytes of the members read whole (not archives; a member stopped as a bomb is not)
    bombs: int = 0  # members and archives stopped as possible decompression bombs
    videos: int = 0  # videos and animated images sampled as videos
    video_faces: int = 0  # faces found in their sampled frames
    video_people: int = 0  # people (tracks) in them, counted per video
    animations: int = 0  # clips made from a single still
    people: int = 0  # distinct people among all faces (docs/profile.md), background faces aside
    background_faces: int = 0
    people_range: tuple[int, int] | None = None  # the count with the density gates stricter and looser
    known_items: int = 0  # members that come from a known public dataset

    def add(self, r: MemberResult) -> None:
        self.files += 1
        if r.status is Status.DUPLICATE:
            self.duplicates += 1
        elif r.status is Status.UNREADABLE:
            self.unreadable += 1
        elif r.status is Status.SKIPPED:
            self.skipped += 1
        if r.member.kind is Kind.ARCHIVE and r.status is not Status.UNREADABLE:
            self.archives += 1
        if r.video is not None and r.status is Status.OK:
            self.videos += 1
            self.video_faces += len(r.faces)
            self.video_people += len(r.video.tracks)
            self.animations += r.video.animation is not None
        elif r.image is not None and r.status is Status.OK:  # duplicates count once, as their original
            self.images += 1
            self.faces += len(r.faces)
            self.images_with_faces += bool(r.faces)
        if r.member.sha256 is not None and r.member.kind is not Kind.ARCHIVE:
            self.bytes_read += r.member.size
        self.bombs += bool(r.reason and BOMB_REASON in r.reason)

    def as_record(self) -> dict:
        return {
            "files": self.files,
            "images": self.images,
            "faces": self.faces,
            "images_with_faces": self.images_with_faces,
            "duplicates": self.duplicates,
            "unreadable": self.unreadable,
            "skipped": self.skipped,
            "archives": self.archives,
            "bytes": self.bytes_read,
            "bombs": self.bombs,
            "videos": self.videos,
            "video_faces": self.video_faces,
            "video_people": self.video_people,
            "animations": self.animations,
            "people": self.people,
            "background_faces": self.background_faces,
            "people_range": None if self.people_range is None else list(self.people_range),
            "known_items": self.known_items,
        }


@dataclass(frozen=True)
class ScanSummary:
    scan_id: str
    started_at: str
    finished_at: str
    counts: dict
    workspace: str
    relations: tuple = ()  # copies found between members (videos re-encoded or re-edited), as dicts
    resumed_members: int = 0  # members taken as stored from the interrupted run this one resumed
    analysed: int = 0  # members analysed (decoded, faces found) by this run
    lineage: tuple = ()  # how this dump relates to earlier scans of the workspace, as dicts


@dataclass(frozen=True)
class AcquireOptions:
    """How a link is downloaded (scanner/acquire); recorded with every acquisition as its `settings`."""

    # 64 GiB: larger than any dump seen so far, small enough that a server streaming without end
    # is stopped before it fills a disk. Raise it with --max-bytes.
    max_bytes: int = 64 << 30
    connect_timeout: float = 15.0  # seconds to open the TCP (and TLS) connection
    read_timeout: float = 60.0  # seconds without a byte before the transfer counts as stalled
    retries: int = 3  # further attempts after a connection error, a stall, a cut-off transfer, 429 or 5xx
    backoff: float = 1.0  # seconds before the first retry; doubled at each next one
    max_backoff: float = 300.0  # longest wait, Retry-After included; a server asking for more is not waited for
    max_redirects: int = 10
    ca_bundle: str | None = None  # PEM file of certificates to trust instead of the system's
    insecure: bool = False  # no TLS verification at all: recorded loudly in the record
    proxy: str | None = None  # explicit proxy for http and https; else HTTP(S)_PROXY / NO_PROXY apply
    user_agent: str | None = None  # default: facetrace/VERSION python-requests/VERSION
    follow_depth: int = 0  # HTML pages: fetch linked files this many links deep (0: list the links only)
    allow_hosts: tuple[str, ...] = ()  # hosts whose links may be followed (default: the page's own host)
    max_follow: int = 200  # at most this many linked URLs fetched per acquisition

    def as_record(self) -> dict:
        return {
            "max_bytes": self.max_bytes,
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "retries": self.retries,
            "backoff": self.backoff,
            "max_backoff": self.max_backoff,
            "max_redirects": self.max_redirects,
            "ca_bundle": self.ca_bundle,
            "insecure": self.insecure,
            "proxy": without_password(self.proxy),
            "user_agent": self.user_agent,
            "follow_depth": self.follow_depth,
            "allow_hosts": list(self.allow_hosts),
            "max_follow": self.max_follow,
        }


def without_password(url: str | None) -> str | None:
    """A proxy URL as it may be recorded: a password in it is replaced by ***."""
    if not url:
        return url
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class HttpExchange:
    """One HTTP request of an acquisition and what came back (a redirect hop, a retry, a resume)."""

    attempt: int  # 1 for the first request of the acquisition, counting every request made
    url: str
    sent_at: str  # UTC, ISO 8601 with milliseconds, taken just before the request was sent
    request_headers: dict
    status: int | None = None  # None when no response came (DNS, TLS, refused, timeout)
    reason: str | None = None  # the status line's reason phrase
    headers: tuple[tuple[str, str], ...] = ()  # every response header in the order received, repeats kept
    peer: str | None = None  # IP:port of the socket's other end (the proxy, when one is used)
    tls: dict | None = None  # version, cipher, SHA-256 of the server's certificate, whether it was verified
    proxy: str | None = None
    elapsed_ms: int | None = None  # until the response headers were in
    redirect_to: str | None = None  # absolute URL of a redirect's Location
    body_bytes: int = 0  # body bytes received in this response and kept
    error: str | None = None  # why this request failed or was abandoned

    def as_record(self) -> dict:
        return {
            "attempt": self.attempt,
            "url": self.url,
            "sent_at": self.sent_at,
            "request_headers": dict(self.request_headers),
            "status": self.status,
            "reason": self.reason,
            "headers": [list(h) for h in self.headers],
            "peer": self.peer,
            "tls": self.tls,
            "proxy": self.proxy,
            "elapsed_ms": self.elapsed_ms,
            "redirect_to": self.redirect_to,
            "body_bytes": self.body_bytes,
            "error": self.error,
        }


@dataclass(frozen=True)
class AcquisitionRecord:
    """Everything about one download: what was asked, every request made, and what was kept.

    docs/acquisition.md describes each field. The record is stored in the case store with the
    SHA-256 of its canonical JSON, which the hash-chained audit log also keeps, so a record
    altered afterwards no longer matches its audit entry.
    """

    id: str
    requested_url: str
    started_at: str
    finished_at: str
    status: str  # "complete" or "failed"
    reason: str | None  # why it failed ("truncated: got X of Y bytes", "HTTP 404 Not Found", ...)
    kind: str | None  # "file" or "page" (an HTML page kept as evidence, its links listed)
    final_url: str | None
    http_status: int | None
    content_type: str | None
    bytes: int  # bytes kept (of a failed transfer: those in its .part file)
    expected_bytes: int | None  # from Content-Length / Content-Range; None when the server gave none
    sha256: str | None  # of the stored file; None unless complete
    md5: str | None
    file_name: str | None
    path: str | None  # absolute path of the stored file (read-only); of the .part file when failed
    workspace_path: str | None  # the same, relative to the workspace, when inside it
    exchanges: tuple[HttpExchange, ...]
    settings: dict
    tool: dict  # facetrace, requests, urllib3, Python and OpenSSL versions
    actor: str
    resumed_from: dict | None = None  # {"offset", "acquisition_ids", "validator"} when earlier bytes were reused
    partial_sha256: str | None = None  # a failed transfer: SHA-256 of the bytes kept for a resume
    links: tuple[dict, ...] = ()  # a page: {"url", "tag", "text"} of every link it offers
    parent_id: str | None = None  # fetched by following a link of this page's acquisition
    depth: int = 0
    notes: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def redirects(self) -> list[dict]:
        """Every redirect hop: from, status, to."""
        return [{"from": e.url, "status": e.status, "to": e.redirect_to} for e in self.exchanges if e.redirect_to]

    @property
    def server(self) -> str | None:
        """The peer address of the response the kept bytes came from (the last one with a body)."""
        for e in reversed(self.exchanges):
            if e.status is not None and e.redirect_to is None:
                return e.peer
        return None

    def as_record(self) -> dict:
        return {
            "format": "facetrace-acquisition",
            "version": 1,
            "id": self.id,
            "requested_url": self.requested_url,
            "final_url": self.final_url,
            "status": self.status,
            "reason": self.reason,
            "kind": self.kind,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "http_status": self.http_status,
            "content_type": self.content_type,
            "server": self.server,
            "bytes": self.bytes,
            "expected_bytes": self.expected_bytes,
            "sha256": self.sha256,
            "md5": self.md5,
            "file_name": self.file_name,
            "path": self.path,
            "workspace_path": self.workspace_path,
            "redirects": self.redirects,
            "requests": [e.as_record() for e in self.exchanges],
            "resumed_from": self.resumed_from,
            "partial_sha256": self.partial_sha256,
            "links": [dict(link) for link in self.links],
            "parent_id": self.parent_id,
            "depth": self.depth,
            "notes": list(self.notes),
            "settings": dict(self.settings),
            "tool": dict(self.tool),
            "actor": self.actor,
        }
