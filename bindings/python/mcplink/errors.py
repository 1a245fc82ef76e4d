"""mcplink.errors: the exceptions of the binding, one class per stable error code.

Every failed op raises a subclass of :class:`Error` named after the engine's stable code
(``not_found`` is :class:`NotFound`, ``url_blocked`` is :class:`UrlBlocked`, ...). A code this
binding does not know yet (from a newer library) raises :class:`Error` itself, with its ``code``.
"""
from __future__ import annotations

from typing import Any

__all__ = [
    "Error", "InvalidArgument", "NotFound", "Forbidden", "Conflict", "UrlBlocked", "Unauthorized",
    "UserNotAuthenticated", "UpstreamError", "Timeout", "TooLarge", "KeyUnavailable", "Internal",
    "Unavailable", "LibraryNotFound", "EngineClosed", "error_class", "error_from",
]


class Error(Exception):
    """An op or engine failure with the engine's stable code.

    Attributes:
        code: the stable code (``"not_found"``, ...), as in the README's "Errors" table.
        message: the engine's message (never a secret).
        field: the argument the error is about, or None.
        reason: for network and MCP failures, the finer reason (``"scheme"``,
            ``"private_address 10.0.0.1"``, ``"rpc_error"``, ...), or None.
        rpc_error: a JSON-RPC error from the MCP server (``{"code", "message"}``), or None.
        data: the whole error object the engine returned.
    """

    code: str = "internal"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None,
                 reason: str | None = None, rpc_error: dict[str, Any] | None = None,
                 data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.field = field
        self.reason = reason
        self.rpc_error = rpc_error
        self.data: dict[str, Any] = data if data is not None else {"code": self.code, "message": message}

    def __str__(self) -> str:
        s = f"{self.code}: {self.message}"
        if self.field:
            s += f" ({self.field})"
        return s

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, field={self.field!r})"


class InvalidArgument(Error):
    """A missing, unknown, wrongly typed or malformed argument (``field`` names it)."""
    code = "invalid_argument"


class NotFound(Error):
    """No such record for this actor (also what another tenant's records look like)."""
    code = "not_found"


class Forbidden(Error):
    """The actor's role may not call this op, or a rule refuses it."""
    code = "forbidden"


class Conflict(Error):
    """A uniqueness rule (a server with that name already exists in the tenant)."""
    code = "conflict"


class UrlBlocked(Error):
    """The URL is not allowed: scheme, userinfo, private address, policy (see ``reason``)."""
    code = "url_blocked"


class Unauthorized(Error):
    """Unknown actor, or the MCP server rejected the credentials."""
    code = "unauthorized"


class UserNotAuthenticated(Error):
    """The server uses OAuth and this user has not connected yet."""
    code = "user_not_authenticated"


class UpstreamError(Error):
    """The MCP server or authorization server failed or answered nonsense."""
    code = "upstream_error"


class Timeout(Error):
    """A time limit was reached (or the operation was cancelled)."""
    code = "timeout"


class TooLarge(Error):
    """A size limit was reached."""
    code = "too_large"


class KeyUnavailable(Error):
    """A secret's encryption key is missing or wrong (the key id is named)."""
    code = "key_unavailable"


class Internal(Error):
    """A bug in the engine; details went to the log."""
    code = "internal"


class Unavailable(Error):
    """The engine's storage is unavailable (a database outage); try again later."""
    code = "unavailable"


class LibraryNotFound(OSError):
    """libmcplink could not be loaded; the message lists every path that was tried and why."""


class EngineClosed(RuntimeError):
    """The engine was closed: no more calls can be made on it."""


_CLASSES: dict[str, type[Error]] = {c.code: c for c in (
    InvalidArgument, NotFound, Forbidden, Conflict, UrlBlocked, Unauthorized, UserNotAuthenticated,
    UpstreamError, Timeout, TooLarge, KeyUnavailable, Internal, Unavailable)}


def error_class(code: str) -> type[Error]:
    """The exception class for a stable code; :class:`Error` for a code this binding does not know."""
    return _CLASSES.get(code, Error)


def error_from(obj: Any) -> Error:
    """The exception for an engine error object ``{"code", "message", "field", ...}``."""
    if not isinstance(obj, dict):
        return Internal(f"the engine returned an error that is not an object: {obj!r:.200}")
    code = obj.get("code") if isinstance(obj.get("code"), str) else "internal"
    message = obj.get("message") if isinstance(obj.get("message"), str) else str(obj.get("message", ""))
    field = obj.get("field") if isinstance(obj.get("field"), str) else None
    reason = obj.get("reason") if isinstance(obj.get("reason"), str) else None
    rpc = obj.get("rpc_error") if isinstance(obj.get("rpc_error"), dict) else None
    return error_class(code)(message, code=code, field=field, reason=reason, rpc_error=rpc, data=obj)
