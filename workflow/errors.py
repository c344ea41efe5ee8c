"""Domain errors: each carries an HTTP-like status, a slug and a message for a person.

The web layer maps these to responses in one place; the engine never imports Flask.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every refusal the engine can give; `message` is in Simplified Chinese."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, detail: object = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.detail = detail


class BadRequest(DomainError):
    """A request that is malformed (missing fields, wrong types)."""

    status = 400
    code = "bad_request"


class NotAuthenticated(DomainError):
    """No user, or bad credentials."""

    status = 401
    code = "not_authenticated"


class Forbidden(DomainError):
    """The user may not do this (role, own department, four-eyes rule)."""

    status = 403
    code = "forbidden"


class NotFound(DomainError):
    """Unknown id, or a resource of another department."""

    status = 404
    code = "not_found"


class Conflict(DomainError):
    """Stale version, or an action the current state does not allow."""

    status = 409
    code = "conflict"


class InvalidValue(DomainError):
    """Values out of range or missing (score above maximum, missing reason)."""

    status = 422
    code = "invalid_value"


class TooManyAttempts(DomainError):
    """Rate limit reached."""

    status = 429
    code = "too_many_attempts"


class ServiceUnavailable(DomainError):
    """A part the request needs is not installed or not reachable (e.g. LibreOffice for PDF)."""

    status = 503
    code = "service_unavailable"


class SchemeError(ValueError):
    """A scheme file that is inconsistent; the message names the problem."""
