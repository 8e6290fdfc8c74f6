"""One exception tree for the engine.

    FacetraceError                 exit 1, HTTP 500 unless a subclass says otherwise
    +-- UsageError                 exit 2, HTTP 400: the caller asked for something impossible
    |   +-- InputNotFoundError     exit 2, HTTP 404: a path given to scan does not exist
    +-- WorkspaceError             exit 3, HTTP 500: the workspace or database cannot be used
    +-- DependencyError            exit 4, HTTP 500: an optional package is missing
    +-- NothingReadableError       exit 1, HTTP 422: a scan found not one readable member
    +-- AcquisitionError           exit 5, HTTP 502: a download from a link failed (its record says why)

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


class UsageError(FacetraceError):
    exit_code = 2
    http_status = 400
    code = "bad_request"


class InputNotFoundError(UsageError):
    http_status = 404
    code = "input_not_found"


class WorkspaceError(FacetraceError):
    exit_code = 3
    code = "workspace_error"


class DependencyError(FacetraceError):
    exit_code = 4
    code = "missing_dependency"


class NothingReadableError(FacetraceError):
    exit_code = 1
    http_status = 422
    code = "nothing_readable"


class AcquisitionError(FacetraceError):
    exit_code = 5
    http_status = 502
    code = "acquisition_failed"
