"""Errors answered the way TF Serving answers them: ``{"error": "..."}`` with the HTTP
status of the canonical error code (``tensorflow_serving/model_servers/http_server.cc``)."""

from __future__ import annotations

HTTP_STATUS = {
    "CANCELLED": 499,  # the client went away (nginx's "client closed request", as TF Serving)
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "NOT_FOUND": 404,
    "PAYLOAD_TOO_LARGE": 413,  # not a canonical code: TF Serving has no body limit
    "RESOURCE_EXHAUSTED": 429,
    "UNKNOWN": 500,
    "INTERNAL": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
}


class ServingError(Exception):
    """A request that cannot be answered, with TF Serving's error code.

    Example:
        >>> e = ServingError("NOT_FOUND", "Servable not found for request: Latest(half)")
        >>> e.status, e.body()
        (404, {'error': 'Servable not found for request: Latest(half)'})
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)

    def body(self) -> dict[str, str]:
        return {"error": self.message}


def invalid(message: str) -> ServingError:
    """An INVALID_ARGUMENT error (HTTP 400)."""
    return ServingError("INVALID_ARGUMENT", message)


def not_found(message: str) -> ServingError:
    """A NOT_FOUND error (HTTP 404)."""
    return ServingError("NOT_FOUND", message)
