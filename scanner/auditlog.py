"""The workspace's audit log opened with its workspace folder: for checking it, and for entries
whose heads must be signed whatever the database (docs/registry.md "Audit log").

`scanner.registry.audit_log(store)` opens the same log from the database alone; on a workspace's
own SQLite database that finds the folder too, but a PostgreSQL database names none, so use cases
that know their workspace open the log here.
"""

from __future__ import annotations

import os
import re

from scanner.errors import UsageError

_HEAD = re.compile(r"^([0-9]+):([0-9a-f]{64})$")


def open_audit_log(case_store, root: str | os.PathLike):
    """Return the registry store of `case_store`, signing each new audit head into `root`'s head log."""
    from indexes.store.subjects import RegistryStore

    return RegistryStore(case_store.engine, root)


def parse_head(text: str) -> tuple[int, str]:
    """Parse a published head, `SEQ:HASH` (a signed report's `audit_head`: its seq, a colon, its hash)."""
    m = _HEAD.match(text.strip().lower())
    if m is None:
        raise UsageError(
            f"{text!r} is not an audit head: give SEQ:HASH, the seq and 64-digit hash of a report's audit_head"
        )
    return int(m.group(1)), m.group(2)
