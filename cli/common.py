"""Options and helpers shared by every command."""

from __future__ import annotations

import functools
import logging
import sys

import click

from scanner.errors import INTERRUPTED_EXIT, FacetraceError, WorkspaceError, exit_codes_help

EXIT_CODES = exit_codes_help()


def workspace_options(fn):
    """Add --workspace and --db to a command."""
    fn = click.option(
        "--db",
        "db_url",
        metavar="URL",
        envvar="FACETRACE_DB",
        help="SQLAlchemy database URL (default: SQLite inside the workspace; e.g. postgresql://user@host/facetrace).",
    )(fn)
    fn = click.option(
        "--workspace",
        "-w",
        metavar="DIR",
        envvar="FACETRACE_HOME",
        help="Workspace folder (default: $FACETRACE_HOME, else ./facetrace-workspace).",
    )(fn)
    return fn


# Characters that must not reach a terminal raw: controls (ESC sequences clear the screen or hide
# what follows, CR overwrites a line, a newline forges one), format characters (bidirectional
# overrides reorder a name), line and paragraph separators, surrogates, private-use and unassigned.
_UNSAFE = ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn")


def terminal_text(text: str) -> str:
    """`text` with every character a dump's names could use against a terminal written as \\uNNNN
    (also a valid escape inside a JSON string): a newline too, so one line stays one line."""
    import unicodedata

    if text.isascii() and text.isprintable():
        return text
    return "".join(c if c == "\t" or unicodedata.category(c) not in _UNSAFE else f"\\u{ord(c):04x}" for c in text)


def terminal_lines(lines) -> str:
    """Lines of our own, each made safe by terminal_text, joined by newlines."""
    return "\n".join(terminal_text(line) for line in lines)


def echo(text: str = "", **kwargs) -> None:
    """click.echo of one line that may hold names from a dump: unsafe characters escaped (terminal_text)."""
    click.echo(terminal_text(str(text)), **kwargs)


def echo_lines(lines, **kwargs) -> None:
    """click.echo of several lines of our own (terminal_lines)."""
    click.echo(terminal_lines(lines), **kwargs)


def translate_errors(fn):
    """Turn engine errors into a one-line message on stderr and their documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FacetraceError as exc:
            echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)  # the CLI's edge: the code comes from the error's class (scanner.errors)
        except Exception as exc:
            full = disk_full(exc)
            if full is None:
                raise
            echo(
                f"Error: the disk is full ({full}). What was stored before is kept: free some space, then run "
                "the same command again (an interrupted scan resumes).",
                err=True,
            )
            sys.exit(WorkspaceError.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted: the results found so far are saved in the workspace.", err=True)
            sys.exit(INTERRUPTED_EXIT)

    return wrapper


def disk_full(exc: BaseException) -> str | None:
    """What says that `exc` (or an exception it was raised from) is a full disk, or None."""
    import errno

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
        if "database or disk is full" in str(exc):
            return "the database could not grow: database or disk is full"
        exc = exc.__cause__ or exc.__context__
    return None


def open_registry(workspace: str | None, db_url: str | None):
    """Open the workspace's registry (database tables and index files) for a command."""
    from scanner.pipeline import open_store
    from scanner.registry import open_registry as _open

    store, root = open_store(workspace, db_url)
    return _open(store, root)


def setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
