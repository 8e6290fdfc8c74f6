"""Registry use cases: enroll with consent, withdraw, erase (and prove it), match.

Every function here that touches the registry writes an audit entry (in the same transaction as
the change it records, or right after a read-only search).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np

from scanner.actor import default_actor
from scanner.consent import ConsentInput
from scanner.errors import FacetraceError, UsageError
from scanner.matching import policy
from scanner.models import ScanOptions

# Photos of a person to enroll them: fewer make matches less reliable. The CLI (an operator, who
# may have only one or two photos of a victim) warns below it; self-enrollment (the HTTP service,
# where nobody checks the photos) is refused below it.
RECOMMENDED_PHOTOS = 3
SELF_ENROLLMENT_MIN_PHOTOS = RECOMMENDED_PHOTOS


class EnrollmentRefused(UsageError):
    http_status = 422  # the request was well formed; the photos cannot be enrolled
    code = "enrollment_refused"


class ErasureRefused(UsageError):
    code = "erase_failed"


class SimilarSubject(EnrollmentRefused):
    http_status = 409
    code = "already_enrolled"


class SubjectNotFound(UsageError):
    http_status = 404
    code = "subject_not_found"


@dataclass
class Registry:
    """A workspace's registry: its tables, its indexes and the engine that made its templates."""

    root: Path
    store: object  # indexes.store.subjects.RegistryStore
    index: object  # indexes.search.subject_index.RegistryIndex
    embedder: str
    embedder_version: str
    hasher: str
    case_store: object = None  # the workspace's indexes.store.cases.CaseStore: its scans are searched on enrollment
    # how its photos are analysed: the built-in engine, or the workspace's pinned model (modelfile.py)
    options: ScanOptions = field(default_factory=ScanOptions)


def open_registry(case_store, root: str | os.PathLike) -> Registry:
    """Open the registry of the workspace whose case store is `case_store`, with the workspace's
    engine (its pinned model, if it has one: `facetrace engine set`)."""
    from indexes.search.subject_index import RegistryIndex
    from indexes.store.subjects import RegistryStore
    from scanner.fingerprints.faces import embedder_of
    from scanner.fingerprints.modelfile import workspace_options
    from scanner.fingerprints.perceptual import NAME as HASHER

    options = workspace_options(root)
    store = RegistryStore(case_store.engine, root)  # root: where each audit head is signed (audit-head.log)
    embedder, version = embedder_of(options)
    try:
        index = RegistryIndex(root, store, embedder, version, HASHER, options.model.dim if options.model else 128)
    except ValueError as exc:
        raise FacetraceError(str(exc)) from None
    registry = Registry(Path(root), store, index, embedder, version, HASHER, case_store, options)
    expire_pending(registry)
    return registry


# -- enrollment ----------------------------------------------------------------------------------


@dataclass
class EnrolledPhoto:
    name: str
    sha256: str
    encoding: tuple
    hashes: dict
    data: bytes


@dataclass
class EnrollResult:
    subject_id: str
    deletion_token: str  # shown once; only its hash is stored
    receipt: dict
    receipt_path: Path
    warnings: list[str] = field(default_factory=list)
    earlier: dict | None = None  # the search of earlier scans: {"scans": n, "findings": [...]}
    pending_marker: Path | None = None  # until confirm_enrollment: the enrollment's pending marker


def _analyse_photo(name: str, data: bytes, options: ScanOptions) -> EnrolledPhoto:
    from scanner import workers
    from scanner.fingerprints.perceptual import perceptual_hashes
    from scanner.media.images import ImageDecodeError, decode_image

    analysis = workers.analyse_here(data, options)
    if analysis.error:
        raise EnrollmentRefused(f"{name}: {analysis.error}")
    if len(analysis.faces) != 1:
        what = "no face" if not analysis.faces else f"{len(analysis.faces)} faces"
        raise EnrollmentRefused(f"{name}: {what} found; every enrollment photo must show exactly one face")
    try:
        image = decode_image(data, options.max_image_pixels).image
    except ImageDecodeError as exc:  # pragma: no cover - analyse() decoded it a moment ago
        raise EnrollmentRefused(f"{name}: {exc}") from None
    return EnrolledPhoto(
        name,
        hashlib.sha256(data).hexdigest(),
        analysis.faces[0].encoding,
        _variant_hashes(image, perceptual_hashes),
        data,
    )


def _variant_hashes(image, perceptual_hashes) -> dict[str, str]:
    """pHash of the photo and of the edits sellers make that pHash does not survive."""
    from PIL import Image, ImageOps

    w, h = image.size
    # each variant is made, hashed and dropped in turn: a full-size copy of a 100-megapixel photo is
    # 300 MB, and holding the 17 of them at once took 6.5 GB for one photo
    variants = {
        "original": lambda: image,
        "mirror": lambda: ImageOps.mirror(image),
        "rot90": lambda: image.transpose(Image.ROTATE_90),
        "rot180": lambda: image.transpose(Image.ROTATE_180),
        "rot270": lambda: image.transpose(Image.ROTATE_270),
        "gray": lambda: ImageOps.grayscale(image).convert("RGB"),
    }
    # pHash moves ~12 bits for a 5% crop: enroll crops every 2.5% up to 10%, centred and from
    # each corner, so a cropped copy lands within a few bits of one of them.
    for permille in (25, 50, 75, 100):  # 2.5%, 5%, 7.5% and 10% off each side
        dx, dy = round(w * permille / 1000), round(h * permille / 1000)
        name = f"crop{permille / 10:g}"
        variants[name] = partial(image.crop, (dx, dy, w - dx, h - dy))
        if permille in (50, 100):  # the same amount cut from two sides only, towards each corner
            variants[f"{name}-tl"] = partial(image.crop, (0, 0, w - dx, h - dy))
            variants[f"{name}-tr"] = partial(image.crop, (dx, 0, w, h - dy))
            variants[f"{name}-bl"] = partial(image.crop, (0, dy, w - dx, h))
            variants[f"{name}-br"] = partial(image.crop, (dx, dy, w, h))
    return {name: perceptual_hashes(make())[0] for name, make in variants.items()}


@dataclass(frozen=True)
class AnalysedPhotos:
    """Enrollment photos analysed by `analyse_photos`, with the engine that analysed them."""

    photos: tuple[EnrolledPhoto, ...]
    embedder: str
    embedder_version: str
    warnings: tuple[str, ...] = ()


def analyse_photos(registry: Registry, photos: list[tuple[str, bytes]]) -> AnalysedPhotos:
    """Analyse enrollment photos: each decoded and showing exactly one face, all of one person, none twice.

    The slow part of `enroll` (seconds of CPU for a large photo) touches neither the registry's
    tables nor its indexes, so a caller that guards those with a lock (the HTTP service) runs this
    first, outside the lock, and passes the result to `enroll`: a screen then never waits for an
    enrollment's photos to be decoded (docs/api.md, benchmarks/load_enroll.py).
    """
    if not photos:
        raise EnrollmentRefused("give at least one photo (3 or more recommended)")
    analysed = [_analyse_photo(name, data, registry.options) for name, data in photos]
    _check_same_person(analysed)
    warnings = []
    if len(analysed) < RECOMMENDED_PHOTOS:
        warnings.append(f"only {len(analysed)} photo(s): {RECOMMENDED_PHOTOS} or more make matches more reliable")
    if len({p.sha256 for p in analysed}) != len(analysed):
        raise EnrollmentRefused("the same photo was given twice")
    return AnalysedPhotos(tuple(analysed), registry.embedder, registry.embedder_version, tuple(warnings))


def enroll(
    registry: Registry,
    photos: list[tuple[str, bytes]] | AnalysedPhotos,
    consent: ConsentInput,
    *,
    label: str | None = None,
    keep_photos: bool = False,
    actor: str | None = None,
    search_earlier: bool = True,
    confirm: bool = True,
    allow_similar: bool = False,
) -> EnrollResult:
    """Enroll one person from photos that each show exactly one face, all of the same person.

    With `search_earlier`, every scan already in the workspace is then searched for them
    (matching.matcher.search_earlier_scans), without reading any dump again.

    Until the person has their deletion token, the enrollment is *pending*: a marker file in
    WORKSPACE/pending is written before the subject is committed and removed by `confirm_enrollment`
    (at once with `confirm`, the default; the CLI confirms only once it has printed the token). A
    process killed in between leaves a subject nobody could erase with a token, whose earlier
    scans may not have been searched: `expire_pending` erases it once the marker is PENDING_TTL_S
    old (every open of the registry looks).

    A person enrolls once. Photos that the matcher gives `confident` to a subject already enrolled
    (the same photo, an edited copy, or two or more photos that agree on them) are refused
    (`SimilarSubject`): a second subject would compete with the first for its findings, and
    anybody could otherwise enroll a person who already is, to watch them. The message does not
    say who; the audit log does (`enroll_refused_similar`). An operator who has checked that they
    are two people (twins) passes `allow_similar` (audited).

    `photos` are (name, bytes) pairs, or what `analyse_photos` made of them (analysed before a
    lock is taken: only what follows needs the registry).
    """
    if not isinstance(photos, AnalysedPhotos):
        photos = analyse_photos(registry, photos)
    if (photos.embedder, photos.embedder_version) != (registry.embedder, registry.embedder_version):
        raise FacetraceError(
            f"the photos were analysed by {photos.embedder} {photos.embedder_version}, not by this "
            f"registry's engine ({registry.embedder} {registry.embedder_version}): analyse them again"
        )
    analysed, warnings = list(photos.photos), list(photos.warnings)
    similar = _similar_subjects(registry, analysed)
    if similar:
        registry.store.audit(
            "enroll_refused_similar" if not allow_similar else "enroll_similar_allowed",
            actor or default_actor(),
            None,
            {"similar_subjects": similar, "photos": [p.sha256 for p in analysed]},
        )
        if not allow_similar:
            raise SimilarSubject(
                "these photos match a person who is already enrolled, and a person enrolls once. "
                "If that is you, keep your enrollment (or erase it first with its deletion token); "
                "if it is somebody else (a twin), a workspace operator can review it and enroll "
                "with --allow-similar"
            )
    token = secrets.token_urlsafe(24)
    token_sha256 = hashlib.sha256(token.encode()).hexdigest()
    marker = _mark_pending(registry.root, token_sha256, None)
    now = consent.granted_at or datetime.now(UTC)
    consent_row = {
        "purpose": consent.purpose,
        "scope": consent.scope,
        "text_version": consent.text_version,
        "text_sha256": consent.text_sha256,
        "granted_at": now,
        "expires_at": consent.expires_at,
        "jurisdiction": consent.jurisdiction,
    }
    templates = [
        {
            "photo_sha256": p.sha256,
            "encoding": p.encoding,
            "embedder": registry.embedder,
            "embedder_version": registry.embedder_version,
            "hashes": p.hashes,
            "hasher": registry.hasher,
            "photo": p.data if keep_photos else None,
        }
        for p in analysed
    ]
    subject_id, template_ids = registry.store.create_subject(
        label=label, token_sha256=token_sha256, consent=consent_row, templates=templates, actor=actor or default_actor()
    )
    _mark_pending(registry.root, token_sha256, subject_id)
    registry.index.add_subject(subject_id, template_ids)
    receipt = _receipt(
        "consent",
        {
            "subject_id": subject_id,
            "enrolled_at": now.isoformat(),
            "consent": {**{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in consent_row.items()}},
            "photos": [{"name": p.name, "sha256": p.sha256} for p in analysed],
            "templates": len(template_ids),
            "photos_kept": keep_photos,
            "embedder": f"{registry.embedder} {registry.embedder_version}",
            "how_to_erase": "facetrace registry erase SUBJECT_ID --token TOKEN (or the enrollment page)",
        },
    )
    path = _write_receipt(registry.root, f"consent-{subject_id}.json", receipt)
    earlier = None
    if search_earlier and registry.case_store is not None:
        from scanner.matching.matcher import search_earlier_scans

        earlier = search_earlier_scans(registry, registry.case_store, subject_id, actor or default_actor())
    result = EnrollResult(subject_id, token, receipt, path, warnings, earlier, marker)
    if confirm:
        confirm_enrollment(result)
    return result


# -- pending enrollments -------------------------------------------------------------------------

PENDING = "pending"
PENDING_TTL_S = 3600.0  # a pending enrollment this old belongs to a process that died: it is erased


def _mark_pending(root: Path, token_sha256: str, subject_id: str | None) -> Path:
    folder = Path(root) / PENDING
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    marker = folder / f"{token_sha256[:32]}.json"
    tmp = folder / f"{token_sha256[:32]}.tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
        fh.write(json.dumps({"subject_id": subject_id, "pid": os.getpid()}))
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(marker)
    return marker


def confirm_enrollment(result: EnrollResult) -> None:
    """The person has their token (and earlier scans were searched): the enrollment is complete."""
    if result.pending_marker is not None:
        result.pending_marker.unlink(missing_ok=True)
        result.pending_marker = None


def expire_pending(registry: Registry, ttl_s: float | None = None) -> list[str]:
    """Erase the subjects of enrollments left pending longer than `ttl_s` (default PENDING_TTL_S) by a
    process that died before the person had their token; return their ids. Audited."""
    import time

    folder = registry.root / PENDING
    if not folder.is_dir():
        return []
    ttl = PENDING_TTL_S if ttl_s is None else ttl_s
    expired = []
    for marker in sorted(folder.glob("*.json")):
        try:
            if time.time() - marker.stat().st_mtime < ttl:
                continue
            subject_id = json.loads(marker.read_text()).get("subject_id")
        except (OSError, ValueError):
            continue
        subj = registry.store.get_subject(subject_id) if subject_id else None
        if subj is not None and subj["status"] != "erased":
            registry.store.audit(
                "enrollment_incomplete",
                default_actor(),
                subject_id,
                {
                    "why": "the enrolling process ended before the deletion token was shown; erased so that no "
                    "subject is left that nobody can reach"
                },
            )
            erase(registry, subject_id, actor=default_actor())
            expired.append(subject_id)
        marker.unlink(missing_ok=True)
    return expired


def _similar_subjects(registry: Registry, photos: list[EnrolledPhoto]) -> list[str]:
    """Subjects already enrolled that these photos are `confident` for, as one dump of them would be."""
    if registry.store.count_active_subjects() == 0:
        return []
    from scanner.matching.matcher import match_items

    members = [
        {"seq": i, "logical_path": p.name, "sha256": p.sha256, "phash": p.hashes.get("original"), "faces": [p.encoding]}
        for i, p in enumerate(photos)
    ]
    return sorted({f["subject_id"] for f in match_items(registry, members, None) if f["band"] == "confident"})


def _check_same_person(photos: list[EnrolledPhoto]) -> None:
    """Refuse a photo whose typical distance to the others says it is someone else.

    The median, not the maximum: two genuine photos of one person are farther apart than 0.6 in
    about 3% of LFW pairs (docs/accuracy.md), so a maximum rule would refuse about one person in
    ten with three good photos, while a photo of somebody else sits far from all the others.
    """
    if len(photos) < 2:
        return
    enc = np.asarray([p.encoding for p in photos])
    d = np.linalg.norm(enc[:, None, :] - enc[None, :, :], axis=2)
    limit = policy.FACE_POSSIBLE_MAX
    if len(photos) == 2:
        if d[0, 1] > limit:
            raise EnrollmentRefused(
                f"{photos[0].name} and {photos[1].name} do not look like the same person "
                f"(distance {d[0, 1]:.2f} > {limit})"
            )
        return
    med = [float(np.median(np.delete(d[i], i))) for i in range(len(photos))]
    worst = int(np.argmax(med))
    if med[worst] > limit:
        raise EnrollmentRefused(
            f"{photos[worst].name} does not look like the same person as the other photos "
            f"(median distance {med[worst]:.2f}; same person is at most {limit})"
        )


# -- verification by intake --------------------------------------------------------------------

from scanner.disclosure import VERIFICATION_METHODS  # noqa: E402 - beside the rest of verification


class VerificationRefused(UsageError):
    http_status = 422
    code = "verification_refused"


def verify_subject(
    registry: Registry, subject_id: str, live: AnalysedPhotos, *, method: str, by: str, actor: str | None = None
) -> dict:
    """Mark a subject verified: an intake officer checked the person's identity and took live photos
    of them (`live`, analysed by `analyse_photos`), and those match the enrolled ones.

    The match is the registry's own decision on the live photos, as a dump of them would get it:
    at least one must be a `same_person` finding for this subject, `probable` or better. A copy of
    an enrolled photo (exact or near) is refused: whoever enrolled someone else's photos can show
    those photos again, not that person's face. The live photos are analysed, never stored. Both
    outcomes are audited; only the band and counts are recorded.
    """
    from scanner.matching.matcher import match_items

    if method not in VERIFICATION_METHODS:
        raise UsageError(f"unknown verification method {method!r}: use one of {', '.join(VERIFICATION_METHODS)}")
    subj = get_subject(registry, subject_id)
    if subj["status"] != "active":
        raise UsageError(f"subject {subject_id} is {subj['status']}: only an active subject can be verified")
    actor = actor or default_actor()
    members = [
        {"seq": i, "logical_path": p.name, "sha256": p.sha256, "phash": p.hashes.get("original"), "faces": [p.encoding]}
        for i, p in enumerate(live.photos)
    ]
    mine = [f for f in match_items(registry, members, None) if f["subject_id"] == subject_id]
    copies = [f for f in mine if f["kind"] != "same_person"]
    same = [f["band"] for f in mine if f["kind"] == "same_person"]
    best = next((b for b in ("confident", "probable", "possible") if b in same), None)
    details = {"method": method, "live_photos": len(members), "band": best, "by": by}
    if copies or best not in ("confident", "probable"):
        fallback = next(
            (
                f["evidence"].get("normalised", {}).get("fallback")
                for f in mine
                if f["evidence"].get("normalised", {}).get("fallback")
            ),
            None,
        )
        why = (
            "a live photo is a copy of an enrolled photo, not a new photo of the person"
            if copies
            else f"the live photos do not match the enrolled ones (best: {best or 'no finding'}; probable or "
            "better is needed): the person in front of you may not be the person enrolled"
            + (
                f"; note: {fallback}, so a reference cohort (`facetrace calibrate`, docs/calibration.md) "
                "is needed before most genuine photos can pass"
                if fallback
                else ""
            )
        )
        registry.store.audit("verification_refused", actor, subject_id, {**details, "why": why})
        raise VerificationRefused(f"verification refused: {why}")
    if not registry.store.set_verified(subject_id, by=by, method=method, actor=actor, details=details):
        raise UsageError(f"subject {subject_id} is no longer active")  # pragma: no cover - erased in between
    return {"subject_id": subject_id, "verified": True, "method": method, "band": best}


def unverify_subject(registry: Registry, subject_id: str, *, actor: str | None = None) -> dict:
    """Take a subject's verification back (a mistake, or doubts about who enrolled); audited."""
    subj = get_subject(registry, subject_id)
    if not subj.get("verified"):
        raise UsageError(f"subject {subject_id} is not verified")
    registry.store.set_verified(subject_id, by=None, method=None, actor=actor or default_actor())
    return {"subject_id": subject_id, "verified": False}


# -- withdrawal and erasure ----------------------------------------------------------------------


def get_subject(registry: Registry, subject_id: str) -> dict:
    """Return a subject's record, or raise SubjectNotFound with what to do next."""
    subj = registry.store.get_subject(subject_id)
    if subj is None:
        raise SubjectNotFound(f"no subject {subject_id!r} in this registry (`facetrace registry list` shows them)")
    return subj


def withdraw(registry: Registry, subject_id: str, actor: str | None = None) -> dict:
    """Withdraw a subject's consent: their templates are deleted from the database and indexes."""
    subj = get_subject(registry, subject_id)
    if subj["status"] != "active":
        raise UsageError(f"subject {subject_id} is already {subj['status']}")
    ids = registry.store.withdraw(subject_id, actor or default_actor())
    registry.index.remove_templates(ids["templates"], ids["hashes"])
    return {"subject_id": subject_id, "templates_deleted": len(ids["templates"])}


def erase(registry: Registry, subject_id: str, *, token: str | None = None, actor: str | None = None) -> dict:
    """Erase a subject: templates, hashes, findings, consent details, receipts and index entries.

    With `token`, the deletion token must match (the person acting for themselves); without it, the
    caller is an operator of the workspace and the audit log says who.
    """
    subj = get_subject(registry, subject_id)
    if subj["status"] == "erased":
        raise ErasureRefused(f"subject {subject_id} was already erased at {subj['erased_at']}")
    if token is not None and not registry.store.check_token(subject_id, token):
        raise ErasureRefused("the deletion token does not match this subject")
    from indexes.store.keys import ServiceStore

    deleted = registry.store.erase(subject_id, actor or default_actor())
    registry.index.remove_templates(deleted["templates"], deleted["hashes"])
    ServiceStore(registry.store.engine).delete_webhooks("subject", subject_id)
    (registry.root / "receipts" / f"consent-{subject_id}.json").unlink(missing_ok=True)
    pending = _compact_database(registry)
    if pending:
        registry.store.audit("erasure_pending", actor or default_actor(), subject_id, {"reason": pending})
    receipt = _receipt(
        "erasure",
        {
            "subject_id": subject_id,
            "erased_at": deleted["erased_at"],
            "deleted": {
                "templates": len(deleted["templates"]),
                "photo_hashes": len(deleted["hashes"]),
                "findings": deleted["findings"],
                "consent_records": deleted["consents"],
            },
            "kept": "a tombstone (the pseudonymous id, status 'erased', erasure time) and the audit log entries",
            "pending": pending,
            "verify": f"facetrace registry verify-erasure {subject_id}",
        },
    )
    path = _write_receipt(registry.root, f"erasure-{subject_id}.json", receipt)
    return {**receipt, "receipt_path": str(path)}


# the tables an erasure deletes rows from
ERASED_TABLES = ("templates", "template_hashes", "findings", "consents", "subjects", "webhooks")


CHECKPOINT_PATIENCE_S = 10.0  # how long an erasure waits for other connections to let the WAL go


def _compact_database(registry: Registry) -> str | None:
    """Make the database drop the bytes of erased rows, not only their visibility; return why it
    could not yet (None: done).

    SQLite: secure_delete zeroes freed pages of the database file, but the erased rows' pages are
    still in the write-ahead log until a checkpoint copies it back and truncates it. A checkpoint
    cannot pass a connection that is reading an older snapshot (a scan, the HTTP service, anyone
    with the file open): PRAGMA wal_checkpoint(TRUNCATE) then answers "busy" and does nothing, so
    it waits up to CHECKPOINT_PATIENCE_S; if it is still busy, the erasure is pending, audited as
    such, and verify-erasure (which checks the WAL) completes it later.
    PostgreSQL keeps deleted rows in the tables' files until VACUUM prunes them (measured: the
    photo hashes of an erased subject were still in the templates file after the DELETE, and gone
    after VACUUM); VACUUM cannot run in a transaction, hence the autocommit connection.
    """
    engine = registry.store.engine
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"VACUUM {', '.join(ERASED_TABLES)}")
            return None
        if engine.dialect.name != "sqlite":
            return None
        # a TRUNCATE checkpoint waits for readers through the busy handler: bound it by our patience
        before = conn.exec_driver_sql("PRAGMA busy_timeout").fetchone()[0]
        conn.exec_driver_sql(f"PRAGMA busy_timeout={int(CHECKPOINT_PATIENCE_S * 1000)}")
        try:
            busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={int(before)}")
        if not busy:
            return None
        return (
            "another connection is reading the database, so its write-ahead log (which still holds the erased "
            "rows) could not be emptied; `facetrace registry verify-erasure` completes the erasure once it is "
            "closed"
        )


def _wal_problems(registry: Registry, subject_id: str) -> list[str]:
    """SQLite: the write-ahead log and rollback journal must be empty once an erasure is complete.

    The checkpoint is tried again first (it completes a pending erasure); what is left in the log
    is then bytes written before the erasure, so it is reported, not searched."""
    engine = registry.store.engine
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return []
    pending = _compact_database(registry)
    problems = []
    db = Path(engine.url.database)
    for suffix, what in (("-wal", "write-ahead log"), ("-journal", "rollback journal")):
        f = db.with_name(db.name + suffix)
        size = f.stat().st_size if f.exists() else 0
        if size:
            problems.append(
                f"the database's {what} {f.name} still holds {size:,} bytes written before the erasure"
                + (f": {pending}" if pending else "")
            )
    actions = {e["action"] for e in registry.store.audit_entries(subject_id)} if not problems else set()
    if "erasure_pending" in actions and "erasure_completed" not in actions:
        registry.store.audit(
            "erasure_completed", default_actor(), subject_id, {"what": "the write-ahead log was emptied"}
        )
        _compact_database(registry)  # the audit entry's own pages: no erased row in them, but keep the log empty
    return problems


def verify_erasure(registry: Registry, subject_id: str) -> list[str]:
    """Return what still holds data of an erased subject (empty: the erasure is complete)."""
    subj = get_subject(registry, subject_id)
    problems = []
    if subj["status"] != "erased":
        problems.append(f"subject status is {subj['status']!r}, not 'erased'")
    for what, n in registry.store.remaining_traces(subject_id).items():
        if n:
            problems.append(f"database still holds {n} {what} row(s)")
    entries = registry.store.audit_entries(subject_id)
    erased = [e for e in entries if e["action"] == "erase"]
    withdrawn = [e for e in entries if e["action"] == "withdraw"]
    template_ids, hash_ids = [], []
    for e in erased:
        template_ids += e["details"].get("templates", [])
        hash_ids += e["details"].get("hashes", [])
    for e in withdrawn:
        template_ids += e["details"].get("deleted", {}).get("templates", [])
        hash_ids += e["details"].get("deleted", {}).get("hashes", [])
    if not erased:
        problems.append("no erasure is recorded in the audit log")
    for name in registry.index.files_holding(template_ids, hash_ids):
        problems.append(f"index file {name} still holds the subject's entries")
    if (registry.root / "receipts" / f"consent-{subject_id}.json").exists():
        problems.append("the consent receipt (with photo hashes) is still in the workspace")
    from indexes.store.keys import ServiceStore

    if ServiceStore(registry.store.engine).webhook("subject", subject_id) is not None:
        problems.append("the subject's webhook registration (its URL) is still stored")
    problems += _personal_audit_details(entries)
    return problems + _wal_problems(registry, subject_id)


# detail keys whose value is a person's own words or address, never an id or a count
PERSONAL_KEYS = frozenset({"label", "name", "email", "url", "webhook_url", "query"})
_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"<>()]+", re.I)
_URL_PATH = re.compile(r"\burl[:=]\s*'?/", re.I)  # urllib3's "Max retries exceeded with url: /path?query"
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


def _personal_audit_details(entries: list[dict]) -> list[str]:
    """Name the audit entries of a subject that hold personal data: a URL's path, query, fragment
    or user, an e-mail address, or a value under a key such as `label`.

    The audit log is hash-chained, so an entry written before facetrace kept URLs out of it
    (a webhook delivery's error message held the whole URL) cannot be edited without breaking the
    chain: verify-erasure reports it, by seq, action and key, without repeating the value.
    Ids, counts, hashes, a scheme and a host pass.
    """
    problems = []
    for e in entries:
        found = sorted({f"{where} ({why})" for where, why in _personal_values(e["details"], "details")})
        if found:
            problems.append(
                f"audit entry {e['seq']} ({e['action']}) holds personal data in "
                f"{', '.join(found)}, which the hash-chained log cannot drop without breaking its chain"
            )
    return problems


def _personal_values(value, where: str):
    if isinstance(value, dict):
        for k, v in value.items():
            if str(k).lower() in PERSONAL_KEYS and v not in (None, "", [], {}):
                yield f"{where}.{k}", "a personal field"
            else:
                yield from _personal_values(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _personal_values(v, f"{where}[{i}]")
    elif isinstance(value, str):
        from urllib.parse import urlsplit

        for m in _URL.finditer(value):
            try:
                parts = urlsplit(m.group(0))
                user = parts.username
            except ValueError:
                yield where, "a URL"
                continue
            if parts.path not in ("", "/") or parts.query or parts.fragment or user:
                yield where, "a URL's path or query"
        if _URL_PATH.search(value):
            yield where, "a URL's path or query"
        if _EMAIL.search(value):
            yield where, "an e-mail address"


# -- receipts --------------------------------------------------------------------------------------


def _receipt(kind: str, body: dict) -> dict:
    from scanner import __version__

    doc = {"receipt": kind, "issued_at": datetime.now(UTC).isoformat(), "facetrace": __version__, **body}
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    doc["receipt_sha256"] = hashlib.sha256(canonical.encode()).hexdigest()
    return doc


def _write_receipt(root: Path, name: str, receipt: dict) -> Path:
    folder = root / "receipts"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / name
    path.write_text(json.dumps(receipt, indent=2, ensure_ascii=False) + "\n")
    return path


def audit_log(case_store) -> object:
    """Return the registry store of a workspace for reading or verifying its audit log.

    Opening the audit log needs no index: `facetrace registry audit` works even when the index
    files are being rebuilt or were deleted.
    """
    from indexes.store.subjects import RegistryStore

    return RegistryStore(case_store.engine)
