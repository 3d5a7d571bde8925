"""What an access token says about itself: the claims of a JWT, read without the signature.

Microsoft Graph and Exchange Online check the signature; Reclaim only reads the claims to tell an
admin what the token grants (``roles`` for application permissions, ``scp`` for delegated ones),
for which app (``appid``/``azp``), service principal (``oid``) and tenant (``tid``). The token is
never returned, logged or put in an error: only the decoded payload leaves this module.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT (header.payload.signature, base64url), or None for an opaque token."""
    parts = token.strip().split(".")
    if len(parts) != 3 or not parts[1]:
        return None
    payload = parts[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = orjson.loads(raw)
    except (binascii.Error, ValueError):  # orjson.JSONDecodeError is a ValueError
        return None
    return claims if isinstance(claims, dict) else None


@dataclass(frozen=True)
class TokenFacts:
    """The claims of a token that matter to a preflight."""

    permission_type: str  # "application" (roles claim) or "delegated" (scp claim)
    granted: frozenset[str]  # permission names, as the token lists them
    client_id: str | None  # the app: appid (v1 tokens) or azp (v2)
    object_id: str | None  # the service principal (app-only) or user (delegated) the token is for
    tenant_id: str | None
    audience: str | None

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> TokenFacts:
        roles = claims.get("roles")
        scopes = claims.get("scp")
        if isinstance(scopes, str) and not roles:
            kind, names = "delegated", scopes.split()
        else:
            kind = "application"
            names = [str(r) for r in roles] if isinstance(roles, list) else []
        return cls(
            permission_type=kind,
            granted=frozenset(n for n in names if n),
            client_id=_text(claims.get("appid")) or _text(claims.get("azp")),
            object_id=_text(claims.get("oid")),
            tenant_id=_text(claims.get("tid")),
            audience=_text(claims.get("aud")),
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
