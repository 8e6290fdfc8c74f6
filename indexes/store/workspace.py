"""A workspace: one folder holding the database and index files of an investigation.

Default: `./facetrace-workspace`, or `$FACETRACE_HOME` when set. The database defaults to SQLite
inside it; any SQLAlchemy URL (PostgreSQL for scale-out) can be given instead. The folder is
created private to its owner (0700): it holds biometric templates.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DIRNAME = "facetrace-workspace"
DB_FILENAME = "facetrace.db"


class WorkspaceUnavailable(Exception):
    """The workspace folder or database cannot be created or opened."""


def resolve_root(explicit: str | os.PathLike | None = None) -> Path:
    """Return the workspace folder: the explicit one, else $FACETRACE_HOME, else ./facetrace-workspace."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get("FACETRACE_HOME")
    if env:
        return Path(env).expanduser().resolve()
    return (Path.cwd() / DEFAULT_DIRNAME).resolve()


class Workspace:
    def __init__(self, root: str | os.PathLike | None = None, db_url: str | None = None):
        self.root = resolve_root(root)
        self.db_url = db_url or f"sqlite:///{self.root / DB_FILENAME}"

    def ensure(self) -> Workspace:
        """Create the folder (owner-only) if missing; return self."""
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise WorkspaceUnavailable(f"cannot create workspace {self.root}: {exc.strerror}") from None
        return self

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)
