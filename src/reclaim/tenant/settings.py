"""Which tenant, and how to sign in to it.

Settings come from, each overriding the one before: a YAML config file with named tenants
(``~/.config/reclaim/config.yaml`` or ``--config``), the environment (``RECLAIM_*``), and flags.

```yaml
default: contoso            # optional: the tenant used without --tenant
tenants:
  contoso:
    tenant_id: 00000000-0000-0000-0000-000000000000
    client_id: 11111111-1111-1111-1111-111111111111
    auth: certificate       # certificate | secret | device-code | managed-identity
    certificate_path: ~/.config/reclaim/contoso.pem
```

A national cloud or the lab: ``graph_url``, ``exo_url``, ``scc_url`` (the services), ``authority`` (the
sign-in service, e.g. ``https://login.microsoftonline.us``; an authority Microsoft does not list, such as
the lab's ``https://127.0.0.1:PORT/token``, is used as given, without asking login.microsoftonline.com
about it), and ``ca_file`` (``RECLAIM_CA_FILE``): a PEM bundle of the CAs to trust *instead of* the
default ones, for sign-in and the services alike (a TLS-inspecting proxy's CA, the lab's ``Lab.ca_file``).
Managed identity reads its endpoint from the platform's variables (``IDENTITY_ENDPOINT`` and
``IDENTITY_HEADER`` on App Service, else IMDS), as azure-identity does.

A client secret (or a certificate password) is read only from the environment:
``RECLAIM_CLIENT_SECRET`` or ``AZURE_CLIENT_SECRET`` (``RECLAIM_CERTIFICATE_PASSWORD``). A config
file holding one is refused: files get copied, backed up and committed; the environment of one
shell does not.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import ssl
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import anyio.to_thread
import yaml
from azure.core.credentials import AccessToken, TokenCredential
from azure.core.credentials_async import AsyncTokenCredential

from reclaim.errors import SettingsError
from reclaim.tenant.client import EXO_URL, GRAPH_URL, SCC_URL, AzureIdentityTokens, TenantClient

AUTH_METHODS = ("certificate", "secret", "device-code", "managed-identity")
FIELDS = (
    "tenant_id", "client_id", "auth", "certificate_path", "graph_url", "exo_url", "scc_url", "authority",
    "ca_file",
)  # fmt: skip
ENVIRONMENT = {
    "tenant_id": "RECLAIM_TENANT_ID",
    "client_id": "RECLAIM_CLIENT_ID",
    "auth": "RECLAIM_AUTH",
    "certificate_path": "RECLAIM_CERTIFICATE_PATH",
    "graph_url": "RECLAIM_GRAPH_URL",
    "exo_url": "RECLAIM_EXO_URL",
    "scc_url": "RECLAIM_SCC_URL",
    "authority": "RECLAIM_AUTHORITY",
    "ca_file": "RECLAIM_CA_FILE",
}
SECRET_ENVIRONMENT = ("RECLAIM_CLIENT_SECRET", "AZURE_CLIENT_SECRET")
CERTIFICATE_PASSWORD_ENVIRONMENT = "RECLAIM_CERTIFICATE_PASSWORD"  # noqa: S105 - a variable name
FLAG_NAMES = {"tenant_id": "--tenant-id", "client_id": "--client-id", "auth": "--auth"}

# keys that hold (or look like they hold) a secret: refused anywhere in a config file
_SECRET_KEY = re.compile(r"secret|password|passphrase|token|private.?key", re.IGNORECASE)
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_MICROSOFT_AUTHORITIES = (
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
)

Prompt = Callable[[str, str, datetime], None]


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "reclaim" / "config.yaml"


@dataclass(frozen=True)
class TenantSettings:
    tenant_id: str
    client_id: str | None
    auth: str
    certificate_path: Path | None = None
    graph_url: str = GRAPH_URL
    exo_url: str = EXO_URL
    scc_url: str = SCC_URL
    authority: str | None = None
    ca_file: Path | None = None  # the CAs to trust instead of the default ones
    name: str | None = None  # the config file's tenant entry, when one was used
    origin: Mapping[str, str] = field(default_factory=dict, compare=False)  # field -> where it came from
    client_secret: str | None = field(default=None, repr=False, compare=False)
    certificate_password: str | None = field(default=None, repr=False, compare=False)

    @classmethod
    def load(
        cls,
        tenant: str | None = None,
        *,
        config: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        flags: Mapping[str, object] | None = None,
    ) -> TenantSettings:
        """Merge the config file, the environment and ``flags`` (``--tenant`` is ``tenant``: a
        config entry's name, or else a tenant id or domain)."""
        env = os.environ if env is None else env
        path = Path(config).expanduser() if config is not None else default_config_path(env)
        document = _read_config(path, explicit=config is not None)
        values: dict[str, str] = {}
        origin: dict[str, str] = {}

        name, entry = _pick_entry(document, tenant, path)
        for key, value in entry.items():
            values[key] = _from_file(key, value, path) if key in ("certificate_path", "ca_file") else value
            origin[key] = f"{path} (tenants.{name})"
        for key, variable in ENVIRONMENT.items():
            if env.get(variable):
                values[key] = env[variable]
                origin[key] = variable
        if tenant is not None and name is None:
            values["tenant_id"] = tenant
            origin["tenant_id"] = "--tenant"
        for key, given in (flags or {}).items():
            if given is None:
                continue
            if _SECRET_KEY.search(key):
                raise SettingsError(
                    f"a {key.replace('_', ' ')} is not taken from the command line",
                    f"set {SECRET_ENVIRONMENT[0]} in the environment instead: command lines end up in "
                    "shell history and process lists",
                )
            if key not in FIELDS:
                raise SettingsError(f"unknown tenant setting {key!r}", f"known settings: {', '.join(FIELDS)}")
            values[key] = str(given)
            origin[key] = FLAG_NAMES.get(key, "--" + key.replace("_", "-"))

        secret = next((env[v] for v in SECRET_ENVIRONMENT if env.get(v)), None)
        secret_origin = next((v for v in SECRET_ENVIRONMENT if env.get(v)), None)
        auth = values.get("auth", "").strip().lower()
        if not auth:
            auth = "certificate" if values.get("certificate_path") else "secret" if secret else ""
            if not auth:
                raise SettingsError(
                    "no sign-in method is set",
                    f"choose one of {', '.join(AUTH_METHODS)} with --auth, RECLAIM_AUTH or 'auth:' in the "
                    "tenant's config entry",
                )
            origin["auth"] = "inferred"
        if auth not in AUTH_METHODS:
            raise SettingsError(
                f"unknown sign-in method {auth!r} (from {origin.get('auth')})",
                f"use one of {', '.join(AUTH_METHODS)}",
            )
        tenant_id = values.get("tenant_id", "").strip()
        if not tenant_id:
            raise SettingsError("no tenant id is set", _where("tenant_id", path))
        client_id = values.get("client_id", "").strip() or None
        if client_id is None and auth != "managed-identity":
            raise SettingsError(f"no client id is set (needed for {auth} sign-in)", _where("client_id", path))
        certificate = values.get("certificate_path")
        certificate_path = Path(certificate).expanduser() if certificate else None
        if auth == "certificate" and certificate_path is None:
            raise SettingsError("certificate sign-in needs a certificate", _where("certificate_path", path))
        if auth == "secret" and secret is None:
            raise SettingsError(
                "secret sign-in needs the client secret",
                f"set {SECRET_ENVIRONMENT[0]} (or {SECRET_ENVIRONMENT[1]}) in the environment",
            )
        if auth == "secret":
            origin["client_secret"] = secret_origin or ""
        graph_url = _service_url(values.get("graph_url") or GRAPH_URL, "graph_url")
        exo_url = _service_url(values.get("exo_url") or EXO_URL, "exo_url")
        scc_url = _service_url(values.get("scc_url") or SCC_URL, "scc_url")
        ca_file = values.get("ca_file")
        return cls(
            tenant_id=tenant_id,
            client_id=client_id,
            auth=auth,
            certificate_path=certificate_path,
            graph_url=graph_url,
            exo_url=exo_url,
            scc_url=scc_url,
            authority=values.get("authority") or None,
            ca_file=Path(ca_file).expanduser() if ca_file else None,
            name=name,
            origin=origin,
            client_secret=secret if auth == "secret" else None,
            certificate_password=env.get(CERTIFICATE_PASSWORD_ENVIRONMENT) if auth == "certificate" else None,
        )

    def credential(self, prompt: Prompt | None = None) -> AsyncTokenCredential:
        """The azure-identity async credential for these settings (no network until a token is asked)."""
        from azure.core.pipeline.transport import AsyncioRequestsTransport
        from azure.identity import DeviceCodeCredential
        from azure.identity.aio import (
            CertificateCredential,
            ClientSecretCredential,
            ManagedIdentityCredential,
        )

        verify = self._verify()
        common: dict[str, Any] = {}
        if self.authority:
            common["authority"] = self.authority
            host = (urlsplit(self.authority).hostname or self.authority).lower()
            if host not in _MICROSOFT_AUTHORITIES:
                # instance discovery asks login.microsoft.com about the authority: not for a lab's
                common["disable_instance_discovery"] = True
        # azure-identity's async default transport needs aiohttp; requests already comes with msal
        transport = {"transport": AsyncioRequestsTransport(connection_verify=verify)}
        try:
            if self.auth == "certificate":
                assert self.certificate_path is not None and self.client_id is not None
                if not self.certificate_path.is_file():
                    raise SettingsError(
                        f"the certificate {self.certificate_path} does not exist",
                        "point certificate_path at the PEM or PFX file holding the app's certificate and "
                        "private key",
                    )
                return CertificateCredential(
                    self.tenant_id,
                    self.client_id,
                    certificate_path=str(self.certificate_path),
                    password=self.certificate_password,
                    **common,
                    **transport,
                )
            if self.auth == "secret":
                assert self.client_secret is not None and self.client_id is not None
                return ClientSecretCredential(
                    self.tenant_id, self.client_id, self.client_secret, **common, **transport
                )
            if self.auth == "device-code":
                assert self.client_id is not None
                device = DeviceCodeCredential(
                    client_id=self.client_id,
                    tenant_id=self.tenant_id,
                    prompt_callback=prompt or device_code_prompt,
                    connection_verify=verify,  # its requests transport's
                    **common,
                )
                return ThreadedCredential(device)
            return ManagedIdentityCredential(client_id=self.client_id, **transport)
        except (ValueError, OSError) as exc:
            text = str(exc)
            for secret in (self.client_secret, self.certificate_password):
                if secret:
                    text = text.replace(secret, "<secret>")
            raise SettingsError(f"cannot sign in with these settings: {text}") from None

    def tokens(self, prompt: Prompt | None = None) -> AzureIdentityTokens:
        return AzureIdentityTokens(self.credential(prompt))

    def client(self, **options: Any) -> TenantClient:
        """A TenantClient for this tenant that closes its credential when it closes."""
        options.setdefault("verify", self._verify())
        return TenantClient(
            self.tenant_id,
            self.tokens(),
            graph_url=self.graph_url,
            exo_url=self.exo_url,
            scc_url=self.scc_url,
            close_tokens=True,
            **options,
        )

    def _verify(self) -> str | bool:
        """What TLS connections trust: ``ca_file`` instead of the default CAs when it is set."""
        if self.ca_file is None:
            return True
        if not self.ca_file.is_file():
            raise SettingsError(
                f"the CA file {self.ca_file} does not exist (from {self.origin.get('ca_file', 'settings')})",
                "point ca_file (RECLAIM_CA_FILE) at a PEM file of the certificate authorities to trust",
            )
        try:
            ssl.create_default_context(cafile=str(self.ca_file))
        except (ssl.SSLError, OSError) as exc:
            raise SettingsError(
                f"cannot use the CA file {self.ca_file}: {exc}", "it must hold PEM certificates"
            ) from None
        return str(self.ca_file)


def device_code_prompt(verification_uri: str, user_code: str, expires_on: datetime) -> None:
    """Tell the admin where to sign in: on stderr, so stdout stays clean for --json."""
    sys.stderr.write(
        f"To sign in, open {verification_uri} and enter the code {user_code} "
        f"(valid until {expires_on:%H:%M}).\n"
    )
    sys.stderr.flush()


class ThreadedCredential:
    """An async face for a sync credential: azure-identity has no async DeviceCodeCredential."""

    def __init__(self, credential: TokenCredential) -> None:
        self._credential = credential

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        call = functools.partial(
            self._credential.get_token,
            *scopes,
            claims=claims,
            tenant_id=tenant_id,
            enable_cae=enable_cae,
            **kwargs,
        )
        # waiting for the admin to type the code must not block the event loop
        return await anyio.to_thread.run_sync(call)

    async def close(self) -> None:
        close = getattr(self._credential, "close", None)
        if close is not None:
            close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"ThreadedCredential({type(self._credential).__name__})"


# --- the config file ----------------------------------------------------------------------------


def _read_config(path: Path, *, explicit: bool) -> Mapping[str, Any]:
    if not path.is_file():
        if explicit:
            raise SettingsError(f"config file {path} does not exist")
        return {}
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read config file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise SettingsError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise SettingsError(f"{path}: expected a mapping with 'tenants:' at the top")
    found = _secret_keys(document, "")
    if found:
        raise SettingsError(
            f"{path}: refusing a secret in the config file ({', '.join(found)})",
            f"remove it from the file and set {SECRET_ENVIRONMENT[0]} (or {SECRET_ENVIRONMENT[1]}; "
            f"{CERTIFICATE_PASSWORD_ENVIRONMENT} for a certificate password) in the environment",
        )
    return document


def _secret_keys(node: object, where: str) -> list[str]:
    """Where secret-looking keys sit in the document (names only: the values are never shown)."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and _SECRET_KEY.search(key):
                found.append(here)
            found.extend(_secret_keys(value, here))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found.extend(_secret_keys(item, f"{where}[{index}]"))
    return found


def _pick_entry(
    document: Mapping[str, Any], tenant: str | None, path: Path
) -> tuple[str | None, dict[str, str]]:
    tenants = document.get("tenants") or {}
    if not isinstance(tenants, dict):
        raise SettingsError(f"{path}: 'tenants' must map names to settings")
    name: str | None = tenant
    if name is None:
        default = document.get("default")
        if isinstance(default, str):
            name = default
        elif len(tenants) == 1:
            name = next(iter(tenants))
    if name is None:
        return None, {}
    if name not in tenants:
        if tenant is not None and (_GUID.match(tenant) or "." in tenant):
            return None, {}  # --tenant names the tenant itself, not a config entry
        known = ", ".join(sorted(map(str, tenants))) or "none"
        raise SettingsError(f"no tenant named {name!r} in {path}", f"tenants there: {known}")
    entry = tenants[name]
    if not isinstance(entry, dict):
        raise SettingsError(f"{path}: tenants.{name} must be a mapping of settings")
    unknown = sorted(str(key) for key in entry if key not in FIELDS)
    if unknown:
        raise SettingsError(
            f"{path}: unknown setting(s) under tenants.{name}: {', '.join(unknown)}",
            f"known settings: {', '.join(FIELDS)}",
        )
    values: dict[str, str] = {}
    for key, value in entry.items():
        if value is None:
            continue
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise SettingsError(f"{path}: tenants.{name}.{key} must be a single value")
        values[key] = str(value)
    return str(name), values


def _from_file(key: str, value: str, path: Path) -> str:
    """A path in the config file is relative to the file's folder, as a reader expects."""
    candidate = Path(value).expanduser()
    return str(candidate if candidate.is_absolute() else path.parent / candidate)


def _where(key: str, path: Path) -> str:
    flag = FLAG_NAMES.get(key, "--" + key.replace("_", "-"))
    return f"pass {flag}, set {ENVIRONMENT[key]}, or add '{key}:' to the tenant's entry in {path}"


def _service_url(url: str, key: str) -> str:
    """Tokens travel to these URLs: plain http only to this machine (the lab)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{key} {url!r} is not an http(s) URL")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise SettingsError(
            f"{key} {url!r} would send tokens unencrypted",
            "use https; plain http is only accepted for 127.0.0.1 and localhost (the lab)",
        )
    return url.rstrip("/")


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def break_glass_accounts(config: Path | None, env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The emergency-access accounts remediation must not touch: the config file's top-level
    ``break_glass:`` list and ``RECLAIM_BREAK_GLASS`` (comma-separated)."""
    env = os.environ if env is None else env
    path = config or default_config_path(env)
    document = _read_config(path, explicit=config is not None)
    listed = document.get("break_glass") or []
    if isinstance(listed, str):
        listed = [listed]
    if not isinstance(listed, list) or not all(isinstance(u, str) for u in listed):
        raise SettingsError(f"{path}: 'break_glass' must be a list of user principal names")
    listed += [u for u in env.get("RECLAIM_BREAK_GLASS", "").split(",") if u.strip()]
    return tuple(u.strip().lower() for u in listed)
