"""The lab's sign-in service: what Microsoft Entra ID and a managed identity endpoint answer azure-identity.

Under ``Lab.token_url`` (give it to a credential as ``authority``): ``GET {tenant}/v2.0/.well-known/
openid-configuration``; ``POST {tenant}/oauth2/v2.0/token`` for client credentials (the app's secret, or
a client assertion signed by a registered certificate: PS256 or RS256, ``x5t#S256`` or ``x5t``), the
device code grant, and refresh tokens (how a device-code sign-in gets its second resource); ``POST
{tenant}/oauth2/v2.0/devicecode`` to start a device code flow, and ``GET devicelogin?otc=CODE``, where
the "user" approves it. Managed identity: App Service's endpoint, ``GET {Lab.url}/msi/token?resource=
...&api-version=2019-08-01`` with ``X-IDENTITY-HEADER``, which ManagedIdentityCredential calls when
``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER`` (``Lab.managed_identity_environment()``) point at it.

Each resource (Graph, Exchange Online, Security & Compliance) gets its own opaque bearer token that only
its service accepts, and a scope other than ``<one of them>/.default`` is refused, as Entra ID does.
``Lab(tls=True)`` serves HTTPS with a server certificate issued by a CA made at start (``ca_file``).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import secrets
import shutil
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from reclaim.lab.data import LabTenant
from reclaim.tenant.client import EXO_URL, GRAPH_URL, SCC_URL

# Resource (token audience) -> the lab's route that accepts its tokens.
RESOURCES = {GRAPH_URL: "graph", EXO_URL: "exo", SCC_URL: "scc"}
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
MANAGED_IDENTITY_API = "2019-08-01"  # App Service's
_OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
_LIFETIME = 3600
_SKEW = 300  # Entra ID's allowance for the client's clock, in seconds

Answer = tuple[int, dict[str, Any]]


class App(Protocol):
    """The lab's app registration in its tenant, as the sign-in service reads it (``server.Lab``)."""

    tenant: LabTenant
    tenant_id: str
    client_id: str
    client_secret: str

    @property
    def token_url(self) -> str: ...


@dataclass
class _DeviceCode:
    client_id: str
    resource: str
    user_code: str
    expires: float  # time.monotonic()
    pending: int = 0  # authorization_pending answers given so far
    approved: bool = False


class SignIn:
    """The sign-in state of one lab: registered certificates, device codes, refresh tokens, tokens.

    Switches: ``device_code_interval`` (seconds a client waits between polls), ``device_code_lifetime``
    (seconds), ``device_code_polls`` (``authorization_pending`` answers before the lab's user approves
    by itself; None: only ``approve_device_codes()`` or the devicelogin page approve).
    """

    def __init__(self, lab: App) -> None:
        self._lab = lab
        self.tokens = {route: f"lab-{route}-" + secrets.token_urlsafe(32) for route in RESOURCES.values()}
        self.identity_header = secrets.token_urlsafe(24)
        self.device_code_interval = 1
        self.device_code_lifetime = 900  # Entra ID's 15 minutes
        self.device_code_polls: int | None = 1
        self._lock = threading.Lock()
        self._keys: dict[str, rsa.RSAPublicKey] = {}  # base64url SHA-256 and SHA-1 thumbprints -> key
        self._device_codes: dict[str, _DeviceCode] = {}
        self._refresh_tokens: dict[str, str] = {}  # refresh token -> client id
        self._folder: Path | None = None
        self._client_certificate: Path | None = None

    def __repr__(self) -> str:  # no token or secret
        return f"SignIn({self._lab.token_url})"

    # -- files: the TLS material and the app's certificate ----------------------------------------
    def folder(self) -> Path:
        with self._lock:
            if self._folder is None:
                self._folder = Path(tempfile.mkdtemp(prefix="reclaim-lab-"))  # 0700: keys stay ours
            return self._folder

    def close(self) -> None:
        with self._lock:
            folder, self._folder = self._folder, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def tls(self, host: str) -> tuple[ssl.SSLContext, Path]:
        """A server context whose certificate (127.0.0.1, ::1, localhost and ``host``) a new CA issued,
        and that CA's certificate: what a client must trust."""
        folder = self.folder()
        now = datetime.now(UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Reclaim lab CA")])
        ca = (
            _builder(ca_name, ca_name, ca_key.public_key(), now)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        names: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
        try:
            address = ipaddress.ip_address(host)
            if address not in (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")):
                names.append(x509.IPAddress(address))
        except ValueError:
            if host.lower() != "localhost":
                names.append(x509.DNSName(host))
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
        leaf = (
            _builder(subject, ca_name, key.public_key(), now)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        ca_file = folder / "ca.pem"
        ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        server = folder / "server.pem"
        server.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + _private_pem(key))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(server)
        return context, ca_file

    @property
    def client_certificate_path(self) -> Path:
        """A PEM file with a certificate registered on the lab's app and its private key (made on first
        use): what ``certificate_path`` names for certificate sign-in."""
        if self._client_certificate is None:
            path = self.folder() / "app.pem"
            pem = self_signed_certificate("reclaim-lab-app")
            path.write_bytes(pem)
            self.register_certificate(pem)
            self._client_certificate = path
        return self._client_certificate

    def register_certificate(self, pem: bytes | str) -> str:
        """Upload a certificate to the lab's app registration; its SHA-1 thumbprint (hex, as the Entra
        admin center shows it). The PEM may hold the private key too: only the certificate is read."""
        data = pem.encode() if isinstance(pem, str) else pem
        cert = x509.load_pem_x509_certificate(data)
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("the app's certificate needs an RSA key: Entra ID takes RS256 and PS256 only")
        sha1 = cert.fingerprint(hashes.SHA1())  # noqa: S303 - x5t is a SHA-1 thumbprint by definition
        with self._lock:
            self._keys[_b64(cert.fingerprint(hashes.SHA256()))] = key
            self._keys[_b64(sha1)] = key
        return sha1.hex().upper()

    # -- device codes -------------------------------------------------------------------------------
    def approve_device_codes(self) -> int:
        """The lab's user signs in on every pending device code; how many there were."""
        with self._lock:
            pending = [c for c in self._device_codes.values() if not c.approved]
            for code in pending:
                code.approved = True
        return len(pending)

    def _approve(self, user_code: str) -> Answer:
        with self._lock:
            for code in self._device_codes.values():
                if secrets.compare_digest(code.user_code.encode(), user_code.strip().upper().encode()):
                    code.approved = True
                    return 200, {"message": f"Signed in as {self._user()['userPrincipalName']}."}
        return 400, {"error": "invalid_request", "error_description": "That code is not valid or expired."}

    # -- requests ---------------------------------------------------------------------------------
    def answer(self, method: str, rest: list[str], query: Mapping[str, str], body: bytes) -> Answer | None:
        """A request under ``token_url`` (``rest``: the path after it); None when there is no such
        endpoint."""
        if rest == ["devicelogin"] and method == "GET":
            return self._approve(query.get("otc", ""))
        if len(rest) == 4 and rest[1:] == ["v2.0", ".well-known", "openid-configuration"] and method == "GET":
            base = f"{self._lab.token_url}/{rest[0]}/oauth2/v2.0"
            return 200, {
                "token_endpoint": f"{base}/token",
                "authorization_endpoint": f"{base}/authorize",
                "device_authorization_endpoint": f"{base}/devicecode",
                "issuer": self._issuer(),
                "tenant_region_scope": "EU",
            }
        if len(rest) != 4 or rest[1:3] != ["oauth2", "v2.0"] or rest[3] not in ("token", "devicecode"):
            return None
        if method != "POST":
            return None
        tenant = self._lab.tenant
        if rest[0].lower() not in {tenant.tenant_id, tenant.domain, tenant.initial_domain}:
            return _error(400, "invalid_request", f"AADSTS90002: Tenant '{rest[0]}' not found.")
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if form.get("client_id") != self._lab.client_id:
            return _error(
                400, "unauthorized_client", "AADSTS700016: The application was not found in the directory."
            )
        if rest[3] == "devicecode":
            return self._device_authorization(form)
        grant = form.get("grant_type")
        if grant == "client_credentials":
            endpoint = f"{self._lab.token_url}/{rest[0]}/oauth2/v2.0/token"
            return self._client_credentials(form, endpoint)
        if grant == DEVICE_CODE_GRANT:
            return self._device_code(form)
        if grant == "refresh_token":
            return self._refresh(form)
        return _error(400, "unsupported_grant_type", "AADSTS70003: The grant type is not supported.")

    def _client_credentials(self, form: Mapping[str, str], endpoint: str) -> Answer:
        secret = form.get("client_secret")
        assertion = form.get("client_assertion")
        if secret is not None:
            if not secrets.compare_digest(secret.encode(), self._lab.client_secret.encode()):
                return _error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        elif assertion and form.get("client_assertion_type") == JWT_BEARER:
            refused = self._check_assertion(assertion, form["client_id"], endpoint)
            if refused is not None:
                return refused
        else:
            return _error(
                401,
                "invalid_client",
                "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
            )
        resource = self._resource(form.get("scope", ""), delegated=False)
        if isinstance(resource, tuple):
            return resource
        return 200, {
            "token_type": "Bearer",
            "expires_in": _LIFETIME,
            "ext_expires_in": _LIFETIME,
            "access_token": self._token_for(resource),
        }

    def _check_assertion(self, assertion: str, client_id: str, endpoint: str) -> Answer | None:
        """Entra ID's checks of a certificate's client assertion: a JWT signed with the key of a
        certificate registered on the app, issued by and about the app, for this token endpoint, in
        its time."""
        try:
            head, claims_part, signature = assertion.split(".")
            header = orjson.loads(_unb64(head))
            claims = orjson.loads(_unb64(claims_part))
            signed = _unb64(signature)
            if not isinstance(header, dict) or not isinstance(claims, dict):
                raise ValueError("not JSON objects")
        except (ValueError, binascii.Error, orjson.JSONDecodeError):
            return _error(400, "invalid_client", "AADSTS50027: JWT token is invalid or malformed.")
        alg = header.get("alg")
        thumbprint = str(header.get("x5t#S256") or header.get("x5t") or "").rstrip("=")
        with self._lock:
            key = self._keys.get(thumbprint)
        if key is None:
            return _error(
                401,
                "invalid_client",
                "AADSTS700027: The certificate with identifier used to sign the client assertion is not "
                "registered on application. [Reason - The key was not found., Thumbprint of key used by "
                f"client: '{_thumbprint_hex(thumbprint)}']",
            )
        scheme: padding.AsymmetricPadding
        if alg == "PS256":
            scheme = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
        elif alg == "RS256":
            scheme = padding.PKCS1v15()
        else:
            return _error(
                401, "invalid_client", f"AADSTS5002738: Invalid JWT: the algorithm {alg!r} is not supported."
            )
        try:
            key.verify(signed, f"{head}.{claims_part}".encode("ascii"), scheme, hashes.SHA256())
        except (InvalidSignature, UnicodeEncodeError):
            return _error(401, "invalid_client", "AADSTS700027: Client assertion failed signature validation")
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            return _error(
                401,
                "invalid_client",
                "AADSTS700021: Client assertion application identifier doesn't match 'client_id' parameter.",
            )
        audience = claims.get("aud")
        if audience != endpoint and not (isinstance(audience, list) and endpoint in audience):
            return _error(
                401,
                "invalid_client",
                f"AADSTS700212: The client assertion's audience must be the token endpoint {endpoint}.",
            )
        now = time.time()
        expires, not_before = claims.get("exp"), claims.get("nbf", 0)
        if (
            not isinstance(expires, int | float)
            or not isinstance(not_before, int | float)
            or expires + _SKEW < now
            or not_before - _SKEW > now
        ):
            return _error(
                401, "invalid_client", "AADSTS700024: Client assertion is not within its valid time range."
            )
        return None

    def _device_authorization(self, form: Mapping[str, str]) -> Answer:
        resource = self._resource(form.get("scope", ""), delegated=True)
        if isinstance(resource, tuple):
            return resource
        device_code = secrets.token_urlsafe(48)
        user_code = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(9))
        lifetime = self.device_code_lifetime
        with self._lock:
            self._device_codes = {k: c for k, c in self._device_codes.items() if c.expires > time.monotonic()}
            self._device_codes[device_code] = _DeviceCode(
                form["client_id"], resource, user_code, time.monotonic() + lifetime
            )
        uri = f"{self._lab.token_url}/devicelogin"
        return 200, {
            "user_code": user_code,
            "device_code": device_code,
            "verification_uri": uri,
            "expires_in": lifetime,
            "interval": self.device_code_interval,
            "message": f"To sign in, use a web browser to open the page {uri} and enter the code {user_code} "
            "to authenticate.",
        }

    def _device_code(self, form: Mapping[str, str]) -> Answer:
        with self._lock:
            code = self._device_codes.get(form.get("device_code", ""))
            if code is None or code.client_id != form["client_id"]:
                return _error(400, "invalid_grant", "AADSTS70000: The provided device code is not valid.")
            if time.monotonic() >= code.expires:
                del self._device_codes[form["device_code"]]
                return _error(
                    400,
                    "expired_token",
                    "AADSTS70020: The provided value for the input parameter 'device_code' is not valid. "
                    "This device code has expired.",
                )
            polls = self.device_code_polls
            if not code.approved and (polls is None or code.pending < polls):
                code.pending += 1
                return _error(
                    400,
                    "authorization_pending",
                    "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                )
            del self._device_codes[form["device_code"]]  # a device code is redeemed once
        return self._user_tokens(code.client_id, code.resource)

    def _refresh(self, form: Mapping[str, str]) -> Answer:
        with self._lock:
            owner = self._refresh_tokens.get(form.get("refresh_token", ""))
        if owner != form["client_id"]:
            return _error(
                400, "invalid_grant", "AADSTS9002313: Invalid request: the refresh token is invalid"
            )
        resource = self._resource(form.get("scope", ""), delegated=True)
        if isinstance(resource, tuple):
            return resource
        return self._user_tokens(owner, resource)

    def _user_tokens(self, client_id: str, resource: str) -> Answer:
        """What a delegated sign-in returns: the access token, a refresh token for the other resources,
        the user's id token and client info (MSAL keys its account cache on them)."""
        user = self._user()
        refresh = secrets.token_urlsafe(48)
        with self._lock:
            self._refresh_tokens[refresh] = client_id
        now = int(time.time())
        tenant_id = self._lab.tenant_id
        # unsigned: MSAL no longer validates id tokens, and the lab's TLS vouches for it
        id_token = (
            ".".join(
                _b64(orjson.dumps(part))
                for part in (
                    {"typ": "JWT", "alg": "none"},
                    {
                        "aud": client_id,
                        "iss": self._issuer(),
                        "iat": now,
                        "nbf": now,
                        "exp": now + _LIFETIME,
                        "name": user.get("displayName") or user["userPrincipalName"],
                        "oid": user["id"],
                        "preferred_username": user["userPrincipalName"],
                        "sub": _b64(uuid.uuid5(uuid.NAMESPACE_URL, f"{client_id}:{user['id']}").bytes),
                        "tid": tenant_id,
                        "ver": "2.0",
                    },
                )
            )
            + "."
        )
        return 200, {
            "token_type": "Bearer",
            "scope": f"{resource}/.default",
            "expires_in": _LIFETIME,
            "ext_expires_in": _LIFETIME,
            "access_token": self._token_for(resource),
            "refresh_token": refresh,
            "id_token": id_token,
            "client_info": _b64(orjson.dumps({"uid": user["id"], "utid": tenant_id})),
        }

    def managed_identity(self, method: str, query: Mapping[str, str], headers: Mapping[str, str]) -> Answer:
        """App Service's managed identity endpoint (api-version 2019-08-01). The lab's managed identity
        is its app: no client id (system-assigned) or the app's client id (user-assigned)."""
        if method != "GET":
            return 405, {"statusCode": 405, "message": "Only GET is supported."}
        header = headers.get("x-identity-header", "")
        if not secrets.compare_digest(header.encode(), self.identity_header.encode()):
            return 401, {"statusCode": 401, "message": "The X-IDENTITY-HEADER is missing or wrong."}
        if query.get("api-version") != MANAGED_IDENTITY_API:
            return 400, {"statusCode": 400, "message": f"api-version must be {MANAGED_IDENTITY_API}."}
        ids = ("client_id", "principal_id", "mi_res_id", "object_id")
        wanted = {k: v for k, v in query.items() if k in ids}
        if wanted and wanted != {"client_id": self._lab.client_id}:
            return 400, {
                "statusCode": 400,
                "message": "No User Assigned or Delegated Managed Identity found for specified "
                "ClientId/ResourceId/PrincipalId.",
            }
        asked = query.get("resource", "")
        resource = _known_resource(asked)
        if resource is None:
            return 400, {
                "statusCode": 400,
                "message": f"AADSTS500011: The resource principal named {asked!r} was not found in the "
                f"tenant named {self._lab.tenant_id}.",
            }
        return 200, {
            "access_token": self._token_for(resource),
            "expires_on": str(int(time.time()) + _LIFETIME),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": self._lab.client_id,
        }

    # -- tokens -----------------------------------------------------------------------------------
    def audience(self, token: str) -> str | None:
        """The route (graph, exo, scc) whose token this is; None for none of them."""
        for route, known in self.tokens.items():
            if secrets.compare_digest(token.encode(), known.encode()):
                return route
        return None

    def _token_for(self, resource: str) -> str:
        return self.tokens[RESOURCES[resource]]

    def _resource(self, scope: str, *, delegated: bool) -> str | Answer:
        """The one resource ``scope`` asks a token for (``<resource>/.default``, with OpenID Connect's
        scopes beside it in a delegated sign-in); else Entra ID's refusal."""
        scopes = scope.split()
        asked = [s for s in scopes if not (delegated and s in _OIDC_SCOPES)]
        if len(asked) != 1 or not asked[0].endswith("/.default"):
            if not delegated:
                return _error(
                    400,
                    "invalid_scope",
                    f"AADSTS1002012: The provided value for scope {scope!r} is not valid. Client credential "
                    "flows must have a scope value with /.default suffixed to the resource identifier.",
                )
            return _error(
                400,
                "invalid_scope",
                f"AADSTS70011: The provided value for the input parameter 'scope' isn't valid: {scope!r} "
                "(the lab takes one <resource>/.default).",
            )
        resource = _known_resource(asked[0].removesuffix("/.default"))
        if resource is None:
            return _error(
                400,
                "invalid_resource",
                f"AADSTS500011: The resource principal named {asked[0].removesuffix('/.default')!r} was not "
                f"found in the tenant named {self._lab.tenant_id}.",
            )
        return resource

    def _issuer(self) -> str:
        return f"{self._lab.token_url}/{self._lab.tenant_id}/v2.0"

    def _user(self) -> dict[str, Any]:
        """Who signs in on a device code: the first IT administrator (else the first user)."""
        users = self._lab.tenant.users
        return next((u for u in users if u.get("jobTitle") == "IT administrator"), users[0])


def self_signed_certificate(name: str, days: int = 30) -> bytes:
    """A PEM file's bytes: an RSA private key and a self-signed certificate for it, as an app
    registration's certificate is usually made (``New-SelfSignedCertificate``, ``openssl req -x509``)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = _builder(subject, subject, key.public_key(), datetime.now(UTC), days).sign(key, hashes.SHA256())
    return _private_pem(key) + cert.public_bytes(serialization.Encoding.PEM)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: Any, now: datetime, days: int = 30
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), critical=False)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _private_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _known_resource(value: str) -> str | None:
    wanted = value.strip().rstrip("/").lower()
    return next((r for r in RESOURCES if r.lower() == wanted), None)


def _error(status: int, error: str, description: str) -> Answer:
    return status, {"error": error, "error_description": description, "error_codes": []}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """base64url with or without padding (azure-identity pads its assertions)."""
    text = text.rstrip("=")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _thumbprint_hex(thumbprint: str) -> str:
    try:
        return _unb64(thumbprint).hex().upper()
    except (ValueError, binascii.Error):
        return "?"
