"""One error shape for every endpoint: {"error": {"code": "...", "message": "..."}}, with a stable code."""

from __future__ import annotations

from fastapi.responses import JSONResponse


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    headers = {"Retry-After": "60"} if status == 429 else None
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


ERROR_SCHEMA = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}


def error_responses(*statuses: int) -> dict:
    """OpenAPI `responses` entries for the error statuses a route can return."""
    return {s: {"description": "error", "content": {"application/json": {"schema": ERROR_SCHEMA}}}
            for s in statuses}
