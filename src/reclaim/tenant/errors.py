"""What can go wrong talking to a tenant, each with the fix an admin can apply.

Messages never hold a token or a secret: the client scrubs the tokens it sent from any text a
server returns before it lands in one of these.
"""

from __future__ import annotations

from reclaim.errors import ReclaimError


class TenantError(ReclaimError):
    """Base of the errors about a live tenant."""

    code = "tenant"


class SettingsError(TenantError):
    """The tenant settings are incomplete or unsafe (a secret in a file)."""

    code = "settings"
    exit_code = 2


class PermissionMissing(TenantError):
    """The app lacks a Graph permission or an Exchange role; names which and how to grant it."""

    code = "permission-missing"

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        permission: str | None = None,
        role: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.permission = permission  # e.g. "AuditLog.Read.All"
        self.role = role  # e.g. "Exchange Administrator"


class AuthenticationFailed(PermissionMissing):
    """No usable token: the credential was refused, or the service refused the token twice."""

    code = "auth"


class LicenceMissing(TenantError):
    """The tenant lacks a licence the data needs (sign-in logs need Entra ID P1)."""

    code = "licence-missing"

    def __init__(self, message: str, hint: str | None = None, *, licence: str | None = None) -> None:
        super().__init__(message, hint)
        self.licence = licence


class Throttled(TenantError):
    """Still throttled (429) after every retry."""

    code = "throttled"

    def __init__(self, message: str, hint: str | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(message, hint)
        self.retry_after = retry_after


class TenantUnavailable(TenantError):
    """5xx answers, timeouts or dropped connections after every retry."""

    code = "tenant-unavailable"


class NotFound(TenantError):
    """The user, mailbox or object does not exist (404)."""

    code = "not-found"


class NotMember(NotFound):
    """Exchange: the recipient is not (or no longer) a member of the role group."""

    code = "not-member"


class RequestRejected(TenantError):
    """The service refused the request itself (400 and other 4xx): a bug or an unsupported query."""

    code = "request-rejected"

    def __init__(self, message: str, hint: str | None = None, *, status: int | None = None) -> None:
        super().__init__(message, hint)
        self.status = status


class AlreadyExists(RequestRejected):
    """The object or membership to add is already there: for a change that means it holds."""

    code = "already-exists"


class UnknownParameter(RequestRejected):
    """The cmdlet has no such parameter in this service (Exchange Online and Security & Compliance
    differ): a Reclaim bug to report."""

    code = "unknown-parameter"


class InvalidValue(RequestRejected):
    """A parameter's value was refused (a wrong type, or not one of the values the service lists)."""

    code = "invalid-value"


class Truncated(TenantError):
    """The service answered only part of a result (a cut-off page, a next link that expired). The rows
    already read were given out and are kept; ``rows`` holds them for callers that collect a whole
    result."""

    code = "truncated"

    def __init__(
        self, message: str, hint: str | None = None, *, rows: list[dict[str, object]] | None = None
    ) -> None:
        super().__init__(message, hint)
        self.rows = rows or []


class BadResponse(TenantError):
    """The answer cannot be used: not JSON, or a next link that leaves the service."""

    code = "bad-response"
