"""The loopback guard (tests/conftest.py): off-loopback lookups and connects fail the test before any
packet leaves; loopback and Unix sockets work; real-data tests fail in CI rather than skip."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.conftest import GUARD, _fail_if_reached, need_shared

Refusal = (pytest.fail.Exception, BaseExceptionGroup)  # anyio's happy eyeballs wraps it in a task group


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


@contextmanager
def refused(target: str) -> Iterator[None]:
    """The block is stopped by the guard, at once, naming ``target``; the refusal is then forgiven."""
    message = f"test tried to reach {target}; tests stay on loopback"
    started = time.monotonic()
    with pytest.raises(Refusal) as caught:
        yield
    assert time.monotonic() - started < 1  # refused, not timed out
    assert all(isinstance(e, pytest.fail.Exception) and str(e) == message for e in _leaves(caught.value))
    assert GUARD.reached == [message]
    GUARD.reached.clear()  # else the test fails after its body, as a swallowed refusal would


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server


def test_a_connect_off_loopback_is_refused_before_the_system_call(listener: socket.socket) -> None:
    with closing(socket.socket()) as sock:
        sock.setblocking(False)  # a connect that reached the kernel would be left in progress
        with refused("192.0.2.1:9"):
            sock.connect(("192.0.2.1", 9))
        with refused("192.0.2.1:9"):
            sock.connect_ex(("192.0.2.1", 9))
        # no connect is pending on the socket (EALREADY otherwise): it is still free to go elsewhere
        sock.setblocking(True)
        sock.connect(listener.getsockname())
        assert sock.getpeername() == listener.getsockname()
    with closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as udp:
        with refused("192.0.2.1:9"):
            udp.connect(("192.0.2.1", 9))
        with pytest.raises(OSError):
            udp.getpeername()  # the connect system call never ran
        with refused("192.0.2.1:9"):
            udp.sendto(b"x", ("192.0.2.1", 9))
    with closing(socket.socket(socket.AF_INET6)) as six, refused("[2001:db8::1]:443"):
        six.connect(("2001:db8::1", 443))


def test_resolving_a_name_off_loopback_is_refused() -> None:
    with refused("example.com:443"):
        socket.getaddrinfo("example.com", 443)
    with refused("example.com"):
        socket.gethostbyname("example.com")
    with refused("example.com"):
        socket.gethostbyname_ex("example.com")
    with refused("example.com:80"):
        socket.create_connection(("example.com", 80), timeout=5)
    with refused("login.microsoftonline.com:443"), httpx.Client() as client:
        client.get("https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration")


def test_httpx_async_is_refused_however_the_code_under_test_catches_it() -> None:
    async def fetch(url: str) -> None:
        async with httpx.AsyncClient() as client:
            try:
                await client.get(url)
            except Exception:  # what a client's error handling does: the guard's Failed is no Exception
                pytest.fail("the refusal was caught as an ordinary error")

    with refused("ps.compliance.protection.outlook.com:443"):
        asyncio.run(fetch("https://ps.compliance.protection.outlook.com/adminapi/beta/t/InvokeCommand"))
    with refused("192.0.2.1:9"):
        asyncio.run(fetch("http://192.0.2.1:9/"))


def test_a_swallowed_refusal_still_fails_the_test() -> None:
    phase = _fail_if_reached()
    next(phase)
    with pytest.raises(pytest.fail.Exception):  # a refusal caught by ``except BaseException``
        socket.getaddrinfo("example.com", 80)
    with pytest.raises(pytest.fail.Exception, match=r"test tried to reach example\.com:80"):
        next(phase)  # the end of the phase
    assert GUARD.reached == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "127.0.0.2"])
def test_loopback_v4_and_its_names_work(host: str) -> None:
    with socket.create_server((host, 0)) as server, socket.create_connection((host, server.getsockname()[1])):
        pass
    assert socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)
    for name in GUARD.names:  # /etc/hosts' loopback names resolve through the guard
        assert GUARD.allowed(name)
    assert GUARD.reached == []


def test_loopback_v6_works() -> None:
    try:
        server = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:  # no IPv6 here: the guard still lets the attempt through to the kernel
        with closing(socket.socket(socket.AF_INET6)) as sock, pytest.raises(OSError):
            sock.connect(("::1", 9))
    else:
        with server, socket.create_connection(("::1", server.getsockname()[1])):
            pass
    assert GUARD.reached == []


def test_http_on_loopback_and_unix_sockets_work(tmp_path: Path) -> None:
    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, format: str, *args: object) -> None:  # quiet: no request lines on stderr
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://localhost:{server.server_address[1]}/"
        assert httpx.get(url).text == "hello"

        async def fetch() -> str:
            async with httpx.AsyncClient() as client:
                return (await client.get(url)).text

        assert asyncio.run(fetch()) == "hello"
    finally:
        server.shutdown()
        server.server_close()
    path = str(tmp_path / "s")
    with socket.socket(socket.AF_UNIX) as unix_server, socket.socket(socket.AF_UNIX) as unix:
        unix_server.bind(path)
        unix_server.listen()
        unix.connect(path)
    assert GUARD.reached == []


# -- real data: skipped on a laptop without ../shared, never in CI -------------------------------------


@pytest.mark.parametrize("ci", ["true", "1"])
def test_a_missing_shared_path_fails_in_ci(ci: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", ci)
    missing = tmp_path / "shared" / "data" / "real"
    with pytest.raises(pytest.fail.Exception, match=str(missing)):
        need_shared(missing)
    assert need_shared(tmp_path) == tmp_path


@pytest.mark.parametrize("ci", [None, "", "false"])
def test_a_missing_shared_path_skips_outside_ci(
    ci: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="shared"):
        need_shared(tmp_path / "shared")
