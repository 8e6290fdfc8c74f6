"""One exception tree for the engine; the CLI's exit codes and the API's statuses come from it.

    FacetraceError                 exit 1, HTTP 500 unless a subclass says otherwise
    +-- UsageError                 exit 2, HTTP 400: the caller asked for something impossible
    |   +-- InputNotFoundError     exit 2, HTTP 404: a path given to scan does not exist
    +-- WorkspaceError             exit 3, HTTP 500: the workspace or database cannot be used (a full disk too)
    +-- DependencyError            exit 4, HTTP 500: an optional package is missing
    +-- NothingReadableError       exit 1, HTTP 422: a scan found not one readable member
    +-- VerificationFailed         exit 1, HTTP 422: a check (report, acquisitions, erasure, audit log) failed
    +-- AcquisitionError           exit 5, HTTP 502: a download from a link failed (its record says why)

Modules add subclasses where they raise them (scanner.registry.EnrollmentRefused, ...), each with
its own `code` and, where it differs, `http_status`. `api.app` has one handler that answers any
of them with `{"error": {"code", "message"}}` and the class's status; `cli.common.translate_errors`
prints the message and exits with the class's code, and `exit_codes_help()` writes the exit codes
every command's help lists from this tree.

Per-file problems (a corrupt JPEG, a text file named .jpg) are *not* exceptions: they are member
records with status "unreadable" and a reason, so a scan goes on and accounts for every file.
Each error's message says what to do next. A failed download is recorded too (an acquisition
record with status "failed" and its reason): `AcquisitionError` only carries the exit code and
message for the caller that asked for it.
"""

from __future__ import annotations


class FacetraceError(Exception):
    """Base of every error the engine raises on purpose."""

    exit_code = 1
    http_status = 500
    code = "facetrace_error"
    summary = "another failure"  # what the exit code means, in `--help`


class UsageError(FacetraceError):
    exit_code = 2
    http_status = 400
    code = "bad_request"
    summary = "bad usage or input not found"


class InputNotFoundError(UsageError):
    http_status = 404
    code = "input_not_found"


class WorkspaceError(FacetraceError):
    exit_code = 3
    code = "workspace_error"
    summary = "workspace or database unusable (or the disk is full)"


class DependencyError(FacetraceError):
    exit_code = 4
    code = "missing_dependency"
    summary = "a required package is missing"


class NothingReadableError(FacetraceError):
    exit_code = 1
    http_status = 422
    code = "nothing_readable"
    summary = "nothing could be read"


class VerificationFailed(FacetraceError):
    exit_code = 1
    http_status = 422
    code = "verification_failed"
    summary = "a verification failed"


class AcquisitionError(FacetraceError):
    exit_code = 5
    http_status = 502
    code = "acquisition_failed"
    summary = "a download from a URL failed (not scanned)"


INTERRUPTED_EXIT = 130  # Ctrl-C: what was found so far is kept


def tree() -> list[type[FacetraceError]]:
    """Every class of the tree that is defined (subclasses of modules imported so far too)."""
    out, todo = [], [FacetraceError]
    while todo:
        cls = todo.pop(0)
        out.append(cls)
        todo.extend(sorted(cls.__subclasses__(), key=lambda c: c.__name__))
    return out


def exit_codes_help() -> str:
    """The exit codes of the CLI, from the classes of this module (for click's epilogs)."""
    meanings: dict[int, list[str]] = {}
    for cls in (
        UsageError,
        WorkspaceError,
        DependencyError,
        NothingReadableError,
        VerificationFailed,
        AcquisitionError,
        FacetraceError,
    ):
        meanings.setdefault(cls.exit_code, []).append(cls.summary)
    import textwrap

    parts = ["0 done"] + [f"{code} {', '.join(what)}" for code, what in sorted(meanings.items())]
    text = "Exit codes: " + "; ".join(parts) + f"; {INTERRUPTED_EXIT} interrupted."
    return "\b\n" + "\n".join(textwrap.wrap(text, 78))  # \b: click keeps these lines as they are
