"""The consent text shown to a person before enrollment, and its identity (version + SHA-256)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

DEFAULT_VERSION = "facetrace-consent-2026-11-v1"
DEFAULT_TEXT = """\
facetrace opt-in registry: consent to process my face data

I ask facetrace to keep mathematical templates of my face (face encodings and perceptual hashes of
the photos I give), and not the photos themselves unless I ask for it, for one purpose: to find
out whether photos or videos of me appear in face-data dumps that investigators, platforms or I
scan, and to tell me and the investigator when they do.

- My templates are stored under a random pseudonymous id, not my name.
- Every search of the registry, and every access to my record, is written to an audit log.
- I can withdraw this consent at any time; my templates are then deleted and never matched again.
- I can have my record erased at any time with my deletion token; I receive an erasure receipt.
- Matches are statements of likelihood with measured error rates, not proof of identity.
"""


@dataclass(frozen=True)
class ConsentInput:
    """What the person agreed to, as recorded with their enrollment."""

    purpose: str = "detect my face in traded face-data dumps"
    scope: str = "registry matching of scans and uploads in this workspace"
    text: str = DEFAULT_TEXT
    text_version: str = DEFAULT_VERSION
    jurisdiction: str = "unspecified"
    granted_at: datetime | None = None  # default: now
    expires_at: datetime | None = None

    @property
    def text_sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()
