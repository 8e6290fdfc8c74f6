"""Acquisition from the web: fetch what a link serves, with a custody record, before the link dies.

    acquire(url) ──> http.Fetcher (redirects, retries, resume, size limit) ──> .part file
                 ──> complete: moved to <out>/<sha256>/<name>, made read-only (0444)
                 ──> an HTML page: its links listed (links.py); followed only when asked
                 ──> AcquisitionRecord stored in the case store (indexes/store/acquisitions.py), its
                     canonical SHA-256 in the hash-chained audit log, a copy in <out>/records/

A failed acquisition (DNS, TLS, HTTP error, size limit, cut-off transfer, an address refused
because it is not public) is a record too, with its reason: failures are data. Its bytes stay in <out>/partial/<key>/data.part for a resume and
are never handed to a scan. docs/acquisition.md describes the record and what it proves.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from scanner.errors import UsageError, WorkspaceError
from scanner.models import AcquireOptions, AcquisitionRecord

ACQUIRED_DIRNAME = "acquired"
PARTIAL_DIRNAME = "partial"
RECORDS_DIRNAME = "records"
MAX_FOLLOW_DEPTH = 5


@dataclass(frozen=True)
class Acquisition:
    """The record of the URL asked for, and those of the links followed from it (pages only)."""

    record: AcquisitionRecord
    followed: tuple[AcquisitionRecord, ...] = ()

    @property
    def records(self) -> tuple[AcquisitionRecord, ...]:
        return (self.record, *self.followed)

    def files(self) -> list[AcquisitionRecord]:
        """The complete downloads that are files (not pages): what a scan of the URL reads."""
        return [r for r in self.records if r.complete and r.kind == "file"]

    def failed(self) -> list[AcquisitionRecord]:
        return [r for r in self.records if not r.complete]


def is_url(text: str) -> bool:
    """True for an http(s) URL with a host: what `scan` acquires instead of opening as a path."""
    parts = urlsplit(text)
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def default_out(root: str | os.PathLike) -> Path:
    return Path(root) / ACQUIRED_DIRNAME


def acquire(
    url: str,
    store,
    root: str | os.PathLike,
    options: AcquireOptions = AcquireOptions(),
    *,
    lab_networks: tuple[str, ...] = (),
    out_dir: str | os.PathLike | None = None,
    actor: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_progress: Callable[[str, int, int | None], None] | None = None,
) -> Acquisition:
    """Download `url` into the workspace with a custody record; return the record(s).

    Only public addresses are connected to; `lab_networks` (CIDR blocks, --lab-network) are
    allowed too, for a lab or a loopback test server. Recorded in the record's settings.
    Never raises for a failed download: the record says why (`record.complete` is False).
    Raises UsageError for a URL that is not http(s) or settings that cannot work.
    """
    if not is_url(url):
        raise UsageError(f"not an http(s) URL: {url!r}")
    _validate(options)
    lab = _lab(lab_networks)
    out = Path(out_dir).expanduser().resolve() if out_dir else default_out(root).resolve()
    run = _Run(store, Path(root).resolve(), out, options, lab, actor or _default_actor(), sleep, on_progress)
    first = run.one(url, parent=None, depth=0)
    followed: list[AcquisitionRecord] = []
    if first.kind == "page" and options.follow_depth > 0:
        followed = run.follow(first)
    return Acquisition(first, tuple(followed))


def _lab(values) -> tuple:
    from scanner.acquire.http import parse_networks

    try:
        return parse_networks(values)
    except ValueError as exc:
        raise UsageError(f"--lab-network: {exc}") from None


def _validate(options: AcquireOptions) -> None:
    if options.max_bytes < 1:
        raise UsageError("the size limit must be at least 1 byte")
    if options.retries < 0 or options.max_redirects < 0:
        raise UsageError("retries and max_redirects cannot be negative")
    if not 0 <= options.follow_depth <= MAX_FOLLOW_DEPTH:
        raise UsageError(f"--follow goes at most {MAX_FOLLOW_DEPTH} links deep")
    if options.insecure and options.ca_bundle:
        raise UsageError("--insecure and --ca-bundle contradict each other: give one")
    if options.ca_bundle and not Path(options.ca_bundle).is_file():
        raise UsageError(f"CA bundle not found: {options.ca_bundle}")


class _Run:
    def __init__(
        self, store, root: Path, out: Path, options: AcquireOptions, lab: tuple, actor: str, sleep, on_progress
    ):
        self.store, self.root, self.out, self.options, self.lab = store, root, out, options, lab
        self.actor, self.sleep, self.on_progress = actor, sleep, on_progress
        self.tool = _tool_versions()
        self.settings = {
            **options.as_record(),
            "tls_trust": _tls_trust(options),
            "ca_bundle_sha256": _file_sha256(options.ca_bundle) if options.ca_bundle else None,
            "lab_networks": [str(n) for n in lab],
        }
        try:
            for sub in (PARTIAL_DIRNAME, RECORDS_DIRNAME):
                (out / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise WorkspaceError(
                f"cannot create {out}/{sub}: {exc.strerror}. Check --out and the folder's permissions."
            ) from None

    def one(self, url: str, parent: str | None, depth: int) -> AcquisitionRecord:
        from scanner.acquire.http import Fetcher, filename_for, utc_now
        from scanner.acquire.links import is_html, page_links

        acq_id = uuid.uuid4().hex
        started = utc_now()
        folder = self.out / PARTIAL_DIRNAME / hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        progress = None if self.on_progress is None else (lambda got, total: self.on_progress(url, got, total))
        with _exclusive(folder, url):
            fetcher = Fetcher(self.options, lab_networks=self.lab, sleep=self.sleep, on_progress=progress)
            interrupted = None
            try:
                result = fetcher.fetch(url, folder, acq_id)
            except OSError as exc:  # the local disk, not the server: recorded, and the .part kept as it is
                result = _broken_off(fetcher, folder, f"local error writing {folder}: {exc.strerror or exc}")
            except KeyboardInterrupt as exc:  # recorded, the .part kept for a resume, then the interrupt goes on
                result, interrupted = _broken_off(fetcher, folder, "interrupted by the user"), exc
            notes = list(result.notes)
            kind = links = None
            path = file_name = None
            if result.complete:
                page = is_html(result.content_type)
                kind = "page" if page else "file"
                file_name = filename_for(result.final_url, result.content_disposition, page)
                stored, more = _store(folder / "data.part", self.out / result.sha256, file_name, result.sha256, acq_id)
                notes += more
                file_name, path = stored.name, stored
                shutil.rmtree(folder, ignore_errors=True)
                if page:
                    links, more = page_links(stored, result.final_url, result.content_type)
                    notes += more
            elif result.part_kept:
                path = folder / "data.part"
        if self.options.insecure:
            notes.insert(0, "TLS VERIFICATION WAS DISABLED (--insecure): the server's identity was not checked")
        record = AcquisitionRecord(
            id=acq_id,
            requested_url=url,
            started_at=started,
            finished_at=utc_now(),
            status="complete" if result.complete else "failed",
            reason=result.reason,
            kind=kind,
            final_url=result.final_url,
            http_status=result.http_status,
            content_type=result.content_type,
            bytes=result.bytes,
            expected_bytes=result.expected_bytes,
            sha256=result.sha256 if result.complete else None,
            md5=result.md5 if result.complete else None,
            file_name=file_name,
            path=str(path) if path else None,
            workspace_path=_relative(path, self.root),
            exchanges=tuple(result.exchanges),
            settings=self.settings,
            tool=self.tool,
            actor=self.actor,
            resumed_from=result.resumed_from,
            partial_sha256=result.sha256 if not result.complete and result.part_kept else None,
            links=tuple(links or ()),
            parent_id=parent,
            depth=depth,
            notes=tuple(notes),
        )
        save_record(self.store, self.out, record)
        if interrupted is not None:
            raise interrupted
        return record

    def follow(self, page: AcquisitionRecord) -> list[AcquisitionRecord]:
        """Fetch the links of `page` on allowed hosts and ports, breadth first, `follow_depth` links deep.

        A port is part of what is allowed: a page must not make facetrace knock on its host's
        other services (ssh, a database, an admin port). By default the page's own host on the
        page's port and the web ports; `--allow-host HOST` allows HOST on the web ports, and
        `HOST:PORT` that port.
        """
        if self.options.allow_hosts:
            allowed = [_allowed_entry(h) for h in self.options.allow_hosts]
        else:
            own = urlsplit(page.final_url)
            allowed = [((own.hostname or "").lower(), _port(own)), ((own.hostname or "").lower(), None)]
        seen = {page.requested_url, page.final_url}
        queue, done = [(page, 1)], []
        while queue and len(done) < self.options.max_follow:
            current, depth = queue.pop(0)
            for link in current.links:
                url = link["url"]
                if url in seen or not _link_allowed(url, allowed):
                    continue
                if len(done) >= self.options.max_follow:
                    break
                seen.add(url)
                child = self.one(url, parent=current.id, depth=depth)
                done.append(child)
                seen.add(child.final_url)
                if child.kind == "page" and depth < self.options.follow_depth:
                    queue.append((child, depth + 1))
        return done


def _broken_off(fetcher, folder: Path, why: str):
    """The result of a fetch that ended by an exception: failed, its .part (not re-hashed) kept as it is."""
    from scanner.acquire.http import FetchResult

    result = getattr(fetcher, "out", None) or FetchResult(complete=False, reason=why)
    part = folder / "data.part"
    result.complete, result.sha256, result.md5, result.reason = False, None, None, why
    result.part_kept = part.exists() and part.stat().st_size > 0
    result.bytes = part.stat().st_size if result.part_kept else 0
    if result.part_kept:
        result.notes.append(f"the {result.bytes:,} bytes received are kept for a resume; they were not hashed")
    return result


WEB_PORTS = (80, 443)


def _port(parts) -> int | None:
    try:
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:  # a port that is not a number
        return None


def _allowed_entry(text: str) -> tuple[str, int | None]:
    """(host pattern, port or None for the web ports) from --allow-host HOST or HOST:PORT ([v6]:PORT)."""
    text = text.strip().lower()
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and (not host.count(":") or host.endswith("]")):
        return host.strip("[]"), int(port)
    return text.strip("[]"), None


def _link_allowed(url: str, allowed: list[tuple[str, int | None]]) -> bool:
    parts = urlsplit(url)
    host, port = (parts.hostname or "").lower(), _port(parts)
    for pattern, allowed_port in allowed:
        if not (host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:]))):
            continue
        if port == allowed_port or (allowed_port is None and port in WEB_PORTS):
            return True
    return False


@contextlib.contextmanager
def _exclusive(folder: Path, url: str):
    """Hold the partial folder of a URL: two acquisitions of one URL would write one .part file."""
    import fcntl

    fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another acquisition of {url} is running in this folder; wait for it to end") from None
        yield
    finally:
        os.close(fd)


def _store(part: Path, folder: Path, name: str, sha256: str, acq_id: str) -> tuple[Path, list[str]]:
    """Move a complete download to folder/name, read-only; never overwrite a stored file."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    dest = folder / name
    notes = []
    if dest.exists():
        have = _file_sha256(dest)
        if have == sha256:
            part.unlink()
            notes.append(f"these bytes were already stored at {dest} by an earlier acquisition: that file is kept")
            return dest, notes
        dest = folder / f"{acq_id}-{name}"
        notes.append(
            f"WARNING: {folder / name} exists with other bytes (SHA-256 {have}) although its folder is named "
            f"by the SHA-256 of its content: it was altered after its acquisition. This copy is stored as "
            f"{dest.name}"
        )
    os.replace(part, dest)
    os.chmod(dest, 0o444)
    return dest, notes


def save_record(store, out: Path, record: AcquisitionRecord) -> str:
    """Store a record in the case store, its hash in the audit log, a read-only copy in out/records/."""
    from indexes.store.acquisitions import AcquisitionStore
    from indexes.store.subjects import RegistryStore

    doc = record.as_record()
    digest = record_digest(doc)
    try:
        AcquisitionStore(store.engine).add(doc, digest)
        RegistryStore(store.engine).audit(
            "acquire",
            record.actor,
            None,
            {
                "acquisition_id": record.id,
                "url": record.requested_url,
                "status": record.status,
                "reason": record.reason,
                "sha256": record.sha256,
                "bytes": record.bytes,
                "record_sha256": digest,
            },
        )
    except Exception as exc:
        raise WorkspaceError(
            f"cannot record the acquisition of {record.requested_url} in the workspace database: {exc}"
        ) from exc
    copy = out / RECORDS_DIRNAME / f"{record.id}.json"
    copy.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.chmod(copy, 0o444)
    return digest


def record_digest(doc: dict) -> str:
    """SHA-256 of a record's canonical JSON (sorted keys, no spaces, UTF-8): the hash the audit log keeps."""
    from scanner.evidence.signing import canonical

    return hashlib.sha256(canonical(doc)).hexdigest()


def list_acquisitions(store) -> list[dict]:
    from indexes.store.acquisitions import AcquisitionStore

    return AcquisitionStore(store.engine).list()


def verify_acquisitions(store) -> tuple[int, list[str]]:
    """Check every record against its hash and audit entry, and every stored file against its SHA-256.

    Returns (records checked, problems). Also checks the audit log's own hash chain, since the
    records' hashes are only as good as the chain that holds them.
    """
    from indexes.store.acquisitions import AcquisitionStore
    from indexes.store.subjects import RegistryStore

    audit = RegistryStore(store.engine)
    problems = list(audit.verify_audit())
    entries = _acquire_entries(audit)
    rows = AcquisitionStore(store.engine).list()
    for row in rows:
        problems += _row_problems(row, entries.get(row["id"]))
    return len(rows), problems


def _row_problems(row: dict, entry: dict | None, check_file: bool = True) -> list[str]:
    rid, url = row["id"], row["requested_url"]
    out = []
    if record_digest(row["record"]) != row["record_sha256"]:
        out.append(f"acquisition {rid} ({url}): its record was altered (its SHA-256 no longer matches the stored one)")
    if entry is None:
        out.append(f"acquisition {rid} ({url}): no audit entry records it")
    elif entry["details"].get("record_sha256") != row["record_sha256"]:
        out.append(f"acquisition {rid} ({url}): its record does not match the SHA-256 in audit entry {entry['seq']}")
    if check_file and row["status"] == "complete" and row["path"]:
        path = Path(row["path"])
        if not path.is_file():
            out.append(f"acquisition {rid} ({url}): the stored file {path} is missing")
        else:
            have = _file_sha256(path)
            if have != row["sha256"]:
                out.append(
                    f"acquisition {rid} ({url}): the stored file {path} changed: SHA-256 {have} instead of "
                    f"{row['sha256']}"
                )
            if path.stat().st_mode & 0o222:
                out.append(
                    f"acquisition {rid} ({url}): the stored file {path} is writable again (it was made read-only)"
                )
    return out


def _acquire_entries(audit) -> dict[str, dict]:
    return {e["details"].get("acquisition_id"): e for e in audit.audit_entries() if e["action"] == "acquire"}


def provenance(store, inputs: list[dict]) -> tuple[list[dict], set[str]]:
    """The web acquisitions behind a scan's inputs, for its report; and their ids (for custody entries).

    An input is matched to every complete acquisition of the same bytes (SHA-256) or stored at
    its path. Each entry carries the full record, whether the input's bytes still match it, whether
    the record is intact (its hash and its audit entry's), and the records it depends on: the
    page it was linked from, and earlier attempts whose bytes a resume kept.
    """
    from indexes.store.acquisitions import AcquisitionStore
    from indexes.store.subjects import RegistryStore

    acquisitions = AcquisitionStore(store.engine)
    entries = None
    out, ids = [], set()
    for position, inp in enumerate(inputs):
        if inp.get("kind") != "file":
            continue
        path = str(Path(inp["abspath"]).resolve())
        for row in acquisitions.for_file(inp.get("sha256"), path):
            if entries is None:
                entries = _acquire_entries(RegistryStore(store.engine))
            related = _related(acquisitions, row["record"])
            ids.update([row["id"], *(r["record"]["id"] for r in related)])
            out.append(
                {
                    "input": position,
                    "input_path": inp["path"],
                    "sha256_matches": inp.get("sha256") == row["sha256"],
                    "record_sha256": row["record_sha256"],
                    "record_intact": not _row_problems(row, entries.get(row["id"]), check_file=False),
                    "record": row["record"],
                    "related": [
                        {"relation": r["relation"], "record_sha256": r["record_sha256"], "record": r["record"]}
                        for r in related
                    ],
                }
            )
    return out, ids


def _related(acquisitions, record: dict) -> list[dict]:
    out, seen = [], {record["id"]}
    todo = [("resumed", i) for i in (record.get("resumed_from") or {}).get("acquisition_ids", [])]
    if record.get("parent_id"):
        todo.append(("linked_from", record["parent_id"]))
    while todo:
        relation, rid = todo.pop(0)
        if rid in seen:
            continue
        seen.add(rid)
        row = acquisitions.get(rid)
        if row is None:
            continue
        out.append({"relation": relation, **row})
        if row["record"].get("parent_id"):
            todo.append(("linked_from", row["record"]["parent_id"]))
    return out


def incomplete_download(path: str, root: str | os.PathLike) -> bool:
    """True for a path inside a workspace's folder of incomplete downloads (never scanned as a dump)."""
    partial = (default_out(root) / PARTIAL_DIRNAME).resolve()
    try:
        Path(path).resolve().relative_to(partial)
    except ValueError:
        return False
    return True


def _relative(path: Path | None, root: Path) -> str | None:
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return None


def _file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _tls_trust(options: AcquireOptions) -> str:
    if options.insecure:
        return "NONE: TLS verification disabled by --insecure"
    if options.ca_bundle:
        return f"only the certificates in {options.ca_bundle} (--ca-bundle)"
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        return f"the certificates in {bundle} ($REQUESTS_CA_BUNDLE / $CURL_CA_BUNDLE)"
    try:
        import certifi

        return f"certifi {certifi.__version__} ({certifi.where()})"
    except ImportError:  # requests falls back to the system's store
        return "the system's certificate store"


def _tool_versions() -> dict:
    import platform
    import ssl

    import requests
    import urllib3

    from scanner import __version__

    return {
        "facetrace": __version__,
        "requests": requests.__version__,
        "urllib3": urllib3.__version__,
        "python": platform.python_version(),
        "openssl": ssl.OPENSSL_VERSION,
    }


def _default_actor() -> str:
    from scanner.actor import default_actor

    return default_actor()
