"""The parameters Microsoft's Exchange Online and Security & Compliance cmdlets take, per service.

``cmdlets.yaml`` (beside this module) holds, for each cmdlet Reclaim sends or the lab serves, the name
and type of every parameter its reference page marks as applicable to Exchange Online ("exchange") or
to Security & Compliance ("compliance"); a service is listed only when the cmdlet exists there. The lab
uses it to refuse what the real service would refuse, and the tests to check what Reclaim sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

import yaml

SERVICES = ("exchange", "compliance")


@dataclass(frozen=True)
class Source:
    """Where the data came from: a snapshot of Microsoft's cmdlet reference."""

    repository: str
    commit: str
    date: str
    folder: str


@dataclass(frozen=True)
class _Reference:
    source: Source
    paths: Mapping[str, str]  # cmdlet -> its page
    by_service: Mapping[str, Mapping[str, Mapping[str, str]]]  # service -> cmdlet -> name -> type


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"cmdlets.yaml: {what} must be a non-empty string")
    return value


@cache
def _load() -> _Reference:
    raw = yaml.safe_load(
        resources.files("reclaim.lab.exchange").joinpath("cmdlets.yaml").read_text(encoding="utf-8")
    )
    if not isinstance(raw, dict) or not isinstance(raw.get("source"), dict):
        raise ValueError("cmdlets.yaml: no source")
    src = raw["source"]
    source = Source(*(_text(src.get(k), f"source.{k}") for k in ("repository", "commit", "date", "folder")))
    cmdlets = raw.get("cmdlets")
    if not isinstance(cmdlets, dict) or not cmdlets:
        raise ValueError("cmdlets.yaml: no cmdlets")
    paths: dict[str, str] = {}
    by_service: dict[str, dict[str, Mapping[str, str]]] = {s: {} for s in SERVICES}
    for cmdlet, entry in cmdlets.items():
        if not isinstance(entry, dict):
            raise ValueError(f"cmdlets.yaml: {cmdlet} is not a mapping")
        paths[str(cmdlet)] = _text(entry.get("path"), f"{cmdlet}.path")
        for service in SERVICES:
            if service not in entry:
                continue
            params = entry[service]
            if not isinstance(params, dict):
                raise ValueError(f"cmdlets.yaml: {cmdlet}.{service} is not a mapping")
            by_service[service][str(cmdlet)] = MappingProxyType(
                {_text(k, f"{cmdlet} parameter"): _text(v, f"{cmdlet}.{k}") for k, v in params.items()}
            )
    return _Reference(
        source,
        MappingProxyType(paths),
        MappingProxyType({s: MappingProxyType(c) for s, c in by_service.items()}),
    )


def parameters(service: str, cmdlet: str) -> Mapping[str, str] | None:
    """The parameters (name -> type, as the reference spells them) ``cmdlet`` takes in ``service``
    ("exchange" or "compliance"); None when the cmdlet does not exist there (or is not in the data).
    PowerShell's common parameters (ErrorAction, Verbose, ...) are not listed."""
    if service not in SERVICES:
        raise ValueError(f"service must be one of {', '.join(SERVICES)}, not {service!r}")
    return _load().by_service[service].get(cmdlet)


def parameter(service: str, cmdlet: str, name: str) -> tuple[str, str] | None:
    """(the parameter's own spelling, its type) for ``name`` matched as PowerShell does, ignoring case;
    None when the cmdlet does not take it in ``service`` (or does not exist there)."""
    known = parameters(service, cmdlet)
    if known is None:
        return None
    wanted = name.casefold()
    return next(((n, t) for n, t in known.items() if n.casefold() == wanted), None)


def cmdlets(service: str) -> frozenset[str]:
    """The cmdlets of ``service`` the data holds."""
    if service not in SERVICES:
        raise ValueError(f"service must be one of {', '.join(SERVICES)}, not {service!r}")
    return frozenset(_load().by_service[service])


def page(cmdlet: str) -> str | None:
    """The path of ``cmdlet``'s reference page in ``SOURCE.repository`` (None if not in the data)."""
    return _load().paths.get(cmdlet)


SOURCE: Source = _load().source  # the snapshot of Microsoft's reference the data was read from
