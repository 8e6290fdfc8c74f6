"""Options and helpers shared by every command."""

from __future__ import annotations

import functools
import logging
import sys

import click

EXIT_CODES = """\b
Exit codes: 0 done; 1 nothing could be read (or another failure);
2 bad usage or input not found; 3 workspace or database unusable;
4 a required package is missing; 5 a download from a URL failed (not scanned)."""


def workspace_options(fn):
    """Add --workspace and --db to a command."""
    fn = click.option("--db", "db_url", metavar="URL", envvar="FACETRACE_DB",
                      help="SQLAlchemy database URL (default: SQLite inside the workspace; "
                           "e.g. postgresql://user@host/facetrace).")(fn)
    fn = click.option("--workspace", "-w", metavar="DIR", envvar="FACETRACE_HOME",
                      help="Workspace folder (default: $FACETRACE_HOME, else ./facetrace-workspace).")(fn)
    return fn


def translate_errors(fn):
    """Turn engine errors into a one-line message on stderr and their documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from scanner.errors import FacetraceError

        try:
            return fn(*args, **kwargs)
        except FacetraceError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted: the results found so far are saved in the workspace.", err=True)
            sys.exit(130)

    return wrapper


def open_registry(workspace: str | None, db_url: str | None):
    """Open the workspace's registry (database tables and index files) for a command."""
    from scanner.pipeline import open_store
    from scanner.registry import open_registry as _open

    store, root = open_store(workspace, db_url)
    return _open(store, root)


def setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
