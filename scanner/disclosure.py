"""What an enrolled person learns about their findings, and when (docs/security.md).

Anyone can enroll photos of anyone: a stranger who enrolls a celebrity's photos and registers a
webhook would otherwise learn, within milliseconds of a platform's screen, every time her face is
uploaded somewhere. So what a subject is told depends on whether an intake officer (a hotline, an
NGO, the police: the `intake` role) checked that the person who enrolled is the person in the
photos (scanner.registry.verify_subject):

- a **verified** subject gets everything: each finding with its scan, time and video ranges on
  the exposure route, and a signed webhook event as each scan or screen finds them;
- an **unverified** subject gets counts only, by band and kind, of the findings made before a
  cutoff at least `DELAY_S` old and rounded down to a whole `GRANULE_S` (a day, UTC): never a
  scan id, a member, a time finer than the day, or a real-time event. Their webhook receives a
  digest of those counts when they change (`send_digests`, run by the service every
  `Settings.digest_interval_s` and by `facetrace registry digest`).

Counts a day late still tell a victim that their face is traded, and an intake visit turns them
into the full record; a tracker learns, a day or more later, that some upload somewhere matched.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import UTC, datetime

DELAY_S = 24 * 3600  # an unverified subject's counts include only findings at least this old...
GRANULE_S = 24 * 3600  # ...with the cutoff rounded down to a multiple of this (UTC days)
BANDS = ("confident", "probable", "possible")
# how the intake officer met the person whose identity they checked: in person, on a video call, or
# through a case file (a police report or a hotline's record that identifies them)
VERIFICATION_METHODS = ("in_person", "video_call", "case_file")
LIMITED = (
    "this subject's identity has not been checked, so only counts are shown, a day or more late, and "
    "no webhook event is sent as a screen finds you; an intake officer (a hotline, NGO or police "
    "officer) who checks your identity can verify your enrollment (docs/security.md)"
)


def is_verified(subject: dict) -> bool:
    return subject.get("status") == "active" and bool(subject.get("verified"))


def cutoff(now: datetime | None = None, delay_s: float = DELAY_S, granule_s: float = GRANULE_S) -> datetime:
    """The newest moment an unverified subject's counts reach: `delay_s` ago, rounded down."""
    t = (now or datetime.now(UTC)).timestamp() - delay_s
    if granule_s > 0:
        t -= t % granule_s
    return datetime.fromtimestamp(t, UTC)


def summary(findings: list[dict], cut: datetime | None) -> dict:
    """Counts of the findings made up to `cut` (all of them for None), by band and by kind."""
    counted = [f for f in findings if cut is None or datetime.fromisoformat(f["created_at"]) <= cut]
    bands = Counter(f["band"] for f in counted)
    return {
        "as_of": None if cut is None else cut.isoformat(),
        "findings": len(counted),
        "bands": {b: bands.get(b, 0) for b in BANDS},
        "kinds": dict(sorted(Counter(f["kind"] for f in counted).items())),
    }


def exposure(
    subject: dict,
    findings: list[dict],
    *,
    now: datetime | None = None,
    delay_s: float = DELAY_S,
    granule_s: float = GRANULE_S,
) -> dict:
    """What the exposure route and page show a subject who proved their token."""
    sid = subject["id"]
    if not is_verified(subject):
        return {
            "subject_id": sid,
            "status": subject["status"],
            "verified": False,
            "limited": LIMITED,
            "summary": summary(findings, cutoff(now, delay_s, granule_s)),
            "findings": [],
        }
    return {
        "subject_id": sid,
        "status": subject["status"],
        "verified": True,
        "limited": None,
        "summary": summary(findings, None),
        "findings": [
            {
                "scan_id": f["scan_id"],
                "kind": f["kind"],
                "band": f["band"],
                "found_at": f["created_at"],
                "member_seq": f["member_seq"],
                "video_time_ranges": (f["evidence"].get("video") or {}).get("time_ranges"),
            }
            for f in findings
        ],
    }


def realtime_recipients(registry_store, subject_ids) -> set[str]:
    """Those of `subject_ids` who may be sent a finding as it is made: the verified ones."""
    return registry_store.verified_subjects(subject_ids)


def digest_payload(subject_id: str, counts: dict) -> dict:
    return {
        "event": "digest",
        "subject_id": subject_id,
        "scan_id": None,
        "as_of": counts["as_of"],
        "findings": counts["findings"],
        "bands": counts["bands"],
        "kinds": counts["kinds"],
        "note": LIMITED,
    }


def send_digests(
    registry_store,
    service_store,
    *,
    actor: str,
    now: datetime | None = None,
    delay_s: float = DELAY_S,
    granule_s: float = GRANULE_S,
    lab_networks: tuple[str, ...] | None = None,
    retries: int | None = None,
    backoff_s: float | None = None,
) -> list[str]:
    """Send each unverified subject with a webhook their counts, when these changed since the last
    digest it received; return the subjects a digest was delivered to.

    Each delivery is signed and audited as any other (scanner.notify.deliver). A digest not
    delivered is tried again at the next run; one with no findings yet is not sent.
    """
    from scanner import notify

    tuning = {k: v for k, v in (("retries", retries), ("backoff_s", backoff_s)) if v is not None}
    cut = cutoff(now, delay_s, granule_s)
    sent = []
    for hook in service_store.subject_webhooks():
        subject = registry_store.get_subject(hook["subject_id"])
        if subject is None or subject["status"] != "active" or is_verified(subject):
            continue
        sid = subject["id"]
        counts = summary(registry_store.findings(subject_id=sid), cut)
        if counts["findings"] == 0:
            continue
        digest = hashlib.sha256(json.dumps([counts["bands"], counts["kinds"]], sort_keys=True).encode()).hexdigest()
        if digest == hook["digest_sha256"]:
            continue
        if notify.deliver(
            hook["url"],
            digest_payload(sid, counts),
            hook["secret"],
            lambda action, details, sid=sid: registry_store.audit(action, actor, sid, details),
            f"subject:{sid}",
            lab_networks=lab_networks,
            **tuning,
        ):
            service_store.digest_sent(sid, digest)
            sent.append(sid)
    return sent
