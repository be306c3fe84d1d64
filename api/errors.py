"""Errors a caller can cause or act on. Their message is shown to the caller as is; anything
else raised while resolving a query is logged with its traceback and shown as
"internal error" (see api.limits.MaskInternalErrors)."""

from __future__ import annotations

# Codes in the GraphQL error's `extensions.code`.
BAD_USER_INPUT = "BAD_USER_INPUT"
LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
TIMEOUT = "TIMEOUT"
UNAVAILABLE = "UNAVAILABLE"
INTERNAL = "INTERNAL"


class ApiError(Exception):
    """A one-line message that tells the caller what to change."""

    def __init__(self, message: str, code: str = BAD_USER_INPUT) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.extensions: dict[str, object] = {"code": code}


class DatabaseUnavailable(ApiError):
    """The database cannot be reached (or no connection was free in time)."""

    def __init__(self, message: str = "database unavailable; try again shortly") -> None:
        super().__init__(message, UNAVAILABLE)


def excerpt(value: object) -> str:
    """A caller's value as quoted back in a message: cut short, so a huge input cannot
    make a huge error."""
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."
