"""One error hierarchy: a stable code, a message, and a hint on what to do next.

Every error Reclaim raises on purpose is a ``ReclaimError`` and is defined here, whatever
part of Reclaim raises it (exit code 1 unless shown)::

    ReclaimError
        UsageError (exit 2)           a command or value used wrongly
        CaseError                     the case folder is missing, damaged, or from a newer Reclaim
        FormatError                   a whole file cannot be read (ingest: the file fails, not the ingest)
            DateOrderError            slash dates whose day/month order the data does not settle
            UnknownFormat             no supported format recognised in the content
            ExpansionRefused          an archive or .gz expands past --max-expand
        RuleError                     problems in rule files, each file:line: what
        Incomplete                    a collector got less than there is (a warning: what came is kept)
        Refused (exit 3)              a remediation guard rail: the account is not touched without --force
        TenantError                   talking to a live tenant
            SettingsError (exit 2)    tenant settings incomplete or unsafe
            PermissionMissing         a Graph permission or an Exchange role the app lacks
                AuthenticationFailed  no usable token
            LicenceMissing            a licence the data needs (Entra ID P1)
            Throttled                 still 429 after every retry or the longest wait allowed
            TenantUnavailable         5xx, timeouts, dropped connections after every retry
            NotFound                  the user, mailbox or object does not exist
                NotMember             not (or no longer) a member of the role group
            RequestRejected           the request itself refused (400 and other 4xx)
                AlreadyExists         the object or membership to add is there already
                UnknownParameter      the cmdlet has no such parameter in this service
                InvalidValue          a parameter's value refused
            Truncated                 only part of a result came (``rows`` holds it)
            BadResponse               an answer that cannot be used (not JSON, a foreign next link)
            AuditSearchFailed         the Purview audit search failed, was cancelled or timed out

Who catches them. The command line (``reclaim.cli.main``, for every command) prints any of
them, message and hint, and exits with its exit code; the web UI (``reclaim.web.app``) shows
one as the page's answer. Library code catches only what it can act on, and goes on:

- ``reclaim.collect``: a collector's or a mailbox's failure goes into the collect report and
  the other collectors and mailboxes go on (PermissionMissing and LicenceMissing make it
  "skipped"; Incomplete and Truncated keep what came); NotFound means a role group removed
  since it was listed, or an audit search Purview no longer keeps (submitted again).
- ``reclaim.fleet``: one tenant's failure is its own; the other tenants go on.
- ``reclaim.playbook``: NotFound means the object is already gone, AlreadyExists that the
  change holds; a TenantError fails one step, or one part of the live state, not the rest.
- ``reclaim.tenant``: the client reads a refused cmdlet parameter (RequestRejected) and a cut
  result (Truncated) for what they mean; ``doctor`` turns a failed probe into "missing" or
  "not checked".
- ``reclaim.ingest``: a FormatError or ExpansionRefused fails its file, not the ingest.
- ``reclaim.detect.rules``: ``lint`` returns a RuleError's problems.
- ``reclaim.report.data``: an evidence id that is no row (UsageError) and an original record
  that cannot be read (CaseError) become notes in the report.

Internal exceptions, which never reach the user as such, stay in their modules: a rule reported
skipped (``reclaim.detect.engine.RuleFailed``, ``reclaim.detect.spark.transpile.Untranslatable``);
a file that takes another path (``reclaim.ingest.loader.NativeUnfit``,
``reclaim.ingest.pipeline._NotLoaded``, ``reclaim.ingest.pipeline._BlankLines``,
``reclaim.ingest.frame._RunsOn``); the lab's and the simulator's answers and failures
(``reclaim.lab.http.HttpError``, ``reclaim.lab.exchange.envelope.CmdletError``,
``reclaim.lab.odata.QueryError``, ``reclaim.tenantsim.networks.NetworkError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ReclaimError(Exception):
    """Base of every error Reclaim raises on purpose."""

    code = "reclaim"
    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(ReclaimError):
    """A command, an option or a value used wrongly."""

    code = "usage"
    exit_code = 2


class CaseError(ReclaimError):
    """The case folder is missing, damaged, or from a newer Reclaim."""

    code = "case"


# -- input files -------------------------------------------------------------------------------
class FormatError(ReclaimError):
    """A whole file cannot be read as any supported format."""

    code = "format"


class DateOrderError(FormatError):
    """Slash dates such as 03/04/2021 whose day/month order the data does not settle."""

    code = "date-order"


class UnknownFormat(FormatError):
    """The content is no supported format: the message names the closest ones and what they lack."""

    code = "unknown-format"


class ExpansionRefused(FormatError):
    """An archive member or .gz expands past the limits (``reclaim.ingest.sources.Inputs``)."""

    code = "expansion"


# -- rules -------------------------------------------------------------------------------------
class RuleError(ReclaimError):
    """Problems in rule files, all of them (``problems``: ``reclaim.detect.rules.Problem``, each
    printed as ``file:line: what``)."""

    code = "rules"

    def __init__(self, problems: Sequence[Any]) -> None:
        listing = "\n".join(str(p) for p in problems)
        super().__init__(
            f"{len(problems)} problem(s) in the rules:\n{listing}",
            hint="fix them, or check one folder with: reclaim rules lint DIR",
        )
        self.problems = list(problems)


# -- collection and remediation ----------------------------------------------------------------
class Incomplete(ReclaimError):
    """Raised by a collector after its last batch when the service held records back (a search
    stopped at its record limit, say). The records already yielded are kept and count as collected;
    the runner shows the message (what is missing) and keeps it for a resumed run."""

    code = "incomplete"


class Refused(ReclaimError):
    """A guard rail: the account must not be touched without --force."""

    code = "refused"
    exit_code = 3


# -- the live tenant ---------------------------------------------------------------------------
# Messages never hold a token or a secret: the client scrubs the tokens it sent from any text a
# server returns before it lands in one of these.
class TenantError(ReclaimError):
    """Base of the errors about a live tenant, each with the fix an admin can apply."""

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


class AuditSearchFailed(TenantError):
    """The Purview audit search failed, was cancelled, or did not finish in time."""

    code = "audit-search"
