"""Shared fixtures: a fresh case, a helper that ingests bytes written to a file, ``need_shared`` for the
real data in ../shared, and the loopback guard.

The loopback guard: no test leaves the machine. An audit hook (``sys.addaudithook``) sees every name
lookup and every connect, send and reverse lookup made through Python's ``socket`` module, httpx's,
anyio's and azure-identity's included, *before* the system call, and fails the test that asked for
anything but loopback. Other processes (Spark's JVM, Chromium) and gRPC's C core are not seen.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from reclaim.case.store import Case
from reclaim.ingest.pipeline import IngestReport, ingest_paths

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REAL = SHARED / "data" / "real"
CSDL = SHARED / "data" / "graph" / "v1.0-Prod.csdl"

Ingest = Callable[..., tuple[Case, IngestReport]]


def need_shared(path: Path) -> Path:
    """``path`` under ../shared, or skip, but never in CI, where a missing one fails the test."""
    if not path.exists():
        message = f"{path} is not here (../shared is not beside the project)"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{message}; CI runs every real-data test", pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture
def case(tmp_path: Path) -> Iterator[Case]:
    with Case.open(tmp_path / "case") as opened:
        yield opened


@pytest.fixture
def ingest_bytes(tmp_path: Path, case: Case) -> Ingest:
    def run(name: str, data: bytes | str, date_order: str | None = None) -> tuple[Case, IngestReport]:
        path = tmp_path / "inputs" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return case, ingest_paths(case, [path], date_order=date_order)

    return run


def rows(case: Case, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    return case.con.execute(sql, params or []).fetchall()


# --- the loopback guard -----------------------------------------------------------------------


def _loopback_names() -> frozenset[str]:
    """localhost, and every name /etc/hosts gives a loopback address (read, never resolved)."""
    names = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
    try:
        lines = Path("/etc/hosts").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        address, *aliases = line.split("#", 1)[0].split() or [""]
        if aliases and _is_loopback_ip(address):
            names.update(alias.lower() for alias in aliases)
    return frozenset(names)


def _is_loopback_ip(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class LoopbackGuard:
    """What the audit hook refused, kept so a refusal the code under test swallowed still fails the test."""

    def __init__(self) -> None:
        self.active = False
        self.reached: list[str] = []
        self.names = _loopback_names()

    def allowed(self, host: object, *, bind: bool = False) -> bool:
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        if host is None or (bind and host in ("", "0.0.0.0", "::")):  # a wildcard to bind to, not a peer
            return True
        return isinstance(host, str) and (host.lower().rstrip(".") in self.names or _is_loopback_ip(host))

    def refuse(self, host: object, port: object = None) -> None:
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        where = f"[{host}]" if isinstance(host, str) and ":" in host else str(host)
        message = f"test tried to reach {where}{'' if port is None else f':{port}'}; tests stay on loopback"
        self.reached.append(message)
        pytest.fail(message, pytrace=True)

    def audit(self, event: str, args: tuple[object, ...]) -> None:
        if not self.active or not event.startswith("socket."):
            return
        if event == "socket.getaddrinfo":  # (host, port, family, type, protocol)
            host, port, *_ = args
            # a passive lookup (for bind) of None or a wildcard asks no resolver
            if not self.allowed(host, bind=True):
                self.refuse(host, port)
        elif event in ("socket.gethostbyname", "socket.gethostbyaddr"):  # (host,)
            if not self.allowed(args[0]):
                self.refuse(args[0])
        elif event == "socket.getnameinfo":  # ((host, port, ...), flags)
            address = args[0]
            if isinstance(address, tuple) and not self.allowed(address[0]):
                self.refuse(address[0], address[1])
        elif event in ("socket.connect", "socket.sendto", "socket.sendmsg"):  # (socket, address)
            sock, address = args[0], args[1]
            family = getattr(sock, "family", None)
            if family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
                return  # a Unix socket, or sendmsg to the connected peer
            if not self.allowed(address[0]):
                self.refuse(address[0], address[1] if len(address) > 1 else None)


GUARD = LoopbackGuard()


def pytest_configure(config: pytest.Config) -> None:
    # an audit hook cannot be removed: installed once, it acts only while tests run
    if not getattr(sys, "_reclaim_loopback_guard", False):
        sys.addaudithook(GUARD.audit)
        sys._reclaim_loopback_guard = True  # type: ignore[attr-defined]
    GUARD.active = True


def pytest_unconfigure(config: pytest.Config) -> None:
    GUARD.active = False


def _refusals() -> BaseException:
    reached = list(dict.fromkeys(GUARD.reached))
    GUARD.reached.clear()
    return pytest.fail.Exception("\n".join(reached), pytrace=False)


def _fail_if_reached() -> Generator[None, None, None]:
    """Around each phase: a refusal the code under test caught (in a thread, or as BaseException)."""
    GUARD.reached.clear()
    try:
        yield
    except BaseExceptionGroup as group:  # anyio's happy eyeballs: the summary line should name the host too
        if GUARD.reached:
            raise _refusals() from group
        raise
    if GUARD.reached:
        raise _refusals()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _fail_if_reached())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _fail_if_reached())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    return (yield from _fail_if_reached())
