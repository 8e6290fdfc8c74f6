"""One error shape for every endpoint: {"error": {"code": "...", "message": "..."}}, with a stable code."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

RETRY_AFTER = {429: "60", 503: "10"}  # rate limited: the bucket refills in a minute; busy: a slot frees soon


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class BodyRefused(HTTPException):
    """A request body refused while it streams in (api.app.BodyLimits).

    Raised from the ASGI `receive` that the form parser reads: FastAPI turns any other exception
    raised while it parses a body into a 400, and passes an HTTPException through to the one
    handler, which answers it as the ApiError it carries.
    """

    def __init__(self, status: int, code: str, message: str):
        super().__init__(status, message)
        self.error = ApiError(status, code, message)


def error_response(status: int, code: str, message: str) -> JSONResponse:
    headers = {"Retry-After": RETRY_AFTER[status]} if status in RETRY_AFTER else None
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


def error_responses(*statuses: int) -> dict:
    """OpenAPI `responses` entries for the error statuses a route can return."""
    return {s: {"description": "error", "content": {"application/json": {"schema": ERROR_SCHEMA}}} for s in statuses}
