"""The live tenant: one async client for Microsoft Graph and Exchange Online, its errors, and the
settings that say which tenant and how to sign in."""

from reclaim.errors import (
    AuthenticationFailed,
    LicenceMissing,
    NotFound,
    PermissionMissing,
    TenantError,
    TenantUnavailable,
    Throttled,
)
from reclaim.tenant.client import AzureIdentityTokens, StaticToken, TenantClient, TokenProvider
from reclaim.tenant.settings import TenantSettings

__all__ = [
    "AuthenticationFailed",
    "AzureIdentityTokens",
    "LicenceMissing",
    "NotFound",
    "PermissionMissing",
    "StaticToken",
    "TenantClient",
    "TenantError",
    "TenantSettings",
    "TenantUnavailable",
    "Throttled",
    "TokenProvider",
]
