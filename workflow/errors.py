"""Domain errors: each carries an HTTP-like status, a slug and a message for a person.

The web layer maps these to responses in one place; the engine never imports Flask. The
message is a Chinese template with named parameters (`workflow/messages.py`): `str(exc)` is
the Chinese text, `exc.message` the text in the current request's language.
"""

from __future__ import annotations

from collections.abc import Mapping

from workflow.messages import format_message, localize, text_for


class DomainError(Exception):
    """Base of every refusal the engine can give.

    `message` is a literal Chinese template (extracted into the catalog by pybabel), with
    `%(name)s` placeholders filled from `params`; without one, the code's general text.
    """

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        detail: object = None,
        params: Mapping[str, object] | None = None,
    ) -> None:
        if code is not None:
            self.code = code
        self.template = message if message is not None else text_for(self.code)
        self.params: dict[str, object] = dict(params or {})
        super().__init__(format_message(self.template, self.params))
        self.detail = detail

    @property
    def message(self) -> str:
        """The message for a person, in the current request's language (Chinese by default)."""
        return localize(self.template, self.params, self.code)


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
    """A scheme file that is inconsistent; the message names every problem and its place.

    `problems` are the lines `<place>: <message>` (`categories[2].indicators[0].max_points:
    各分项之和 8 ≠ 指标分值 10`); `errors` the same as `{"path", "message"}` for an API answer. A
    problem of the whole file (unreadable, not YAML) has the empty path.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]
        self._placed = problems is not None

    @classmethod
    def of(cls, problems: list[str]) -> SchemeError:
        """One error for all the problems found (`<place>: <message>` each), one line each."""
        if len(problems) == 1:
            return cls(problems[0], problems)
        lines = "\n".join(f"  {p}" for p in problems)
        return cls(f"方案文件有 {len(problems)} 处问题：\n{lines}", problems)

    @property
    def errors(self) -> list[dict[str, str]]:
        """Each problem as {"path", "message"}."""
        if not self._placed:
            return [{"path": "", "message": self.problems[0]}]
        pairs = (p.split(": ", 1) for p in self.problems)
        return [{"path": path, "message": message} for path, message in pairs]
