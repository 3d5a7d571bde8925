"""The web UI holds: access checked before any body is read, bad or oversized Content-Length refused at
once, header, body and idle timeouts, 300 slowloris connections that do not keep a real request
waiting, and pages kept until the case's files change. All over raw loopback sockets."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reclaim.case.store import Case
from reclaim.cli.serve import render_report
from reclaim.ingest.pipeline import ingest_paths
from reclaim.playbook.journal import JOURNAL
from reclaim.tenantsim import synth
from reclaim.web.app import App
from reclaim.web.server import MAX_FORM, WORKERS, WebServer

SHORT = 0.5  # seconds: the header and body timeouts of the servers that test them


@pytest.fixture
def app() -> App:
    return App([], lambda case, user, found: "<p>report</p>")


@pytest.fixture
def server(app: App) -> Iterator[WebServer]:
    with WebServer(app, header_timeout=SHORT, body_timeout=SHORT) as running:
        yield running


def _connect(server: WebServer) -> socket.socket:
    host, port = server.base.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.settimeout(5)  # every read below ends by itself
    return sock


def _until_closed(sock: socket.socket) -> tuple[float, bytes]:
    """What the server sends until it closes the connection, and the seconds that took."""
    started, received = time.monotonic(), b""
    with sock:
        while chunk := sock.recv(65536):
            received += chunk
    return time.monotonic() - started, received


def _status(received: bytes) -> int:
    return int(received.split(b" ", 2)[1])


def _cookie(app: App) -> bytes:
    return f"Cookie: reclaim={app.token}\r\n".encode()


def test_access_is_checked_before_any_body_is_read(server: WebServer) -> None:
    sock = _connect(server)
    # a body announced and never sent: the refusal cannot have waited for it
    sock.sendall(b"POST /case/0/user/a@b/plan HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
    took, received = _until_closed(sock)
    assert _status(received) == 403 and took < 1


@pytest.mark.parametrize(
    ("length", "status"), [("abc", 400), ("-5", 400), ("1e3", 400), (str(MAX_FORM + 1), 413)]
)
def test_a_bad_or_too_large_content_length_is_refused_at_once(
    app: App, server: WebServer, length: str, status: int
) -> None:
    sock = _connect(server)
    sock.sendall(
        b"POST / HTTP/1.1\r\nHost: x\r\n" + _cookie(app) + f"Content-Length: {length}\r\n\r\n".encode()
    )
    took, received = _until_closed(sock)
    assert _status(received) == status and took < 1


def test_a_chunked_form_is_counted_as_it_comes(app: App, server: WebServer) -> None:
    sock = _connect(server)
    chunk = b"a" * 65536
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n" + _cookie(app) + b"Transfer-Encoding: chunked\r\n\r\n")
    try:
        for _ in range(MAX_FORM // len(chunk) + 1):
            sock.sendall(b"10000\r\n" + chunk + b"\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused while still sending
    _, received = _until_closed(sock)
    assert _status(received) == 413


def test_headers_that_do_not_come_in_time_close_the_connection(server: WebServer) -> None:
    sock = _connect(server)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and the rest never
    took, received = _until_closed(sock)
    assert received == b"" and SHORT * 0.8 < took < SHORT + 2


def test_a_body_that_does_not_come_in_time_is_refused(app: App, server: WebServer) -> None:
    sock = _connect(server)
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n" + _cookie(app) + b"Content-Length: 100\r\n\r\ncsrf=")
    took, received = _until_closed(sock)
    assert _status(received) == 408 and SHORT * 0.8 < took < SHORT + 2


def test_an_idle_connection_is_closed(app: App, server: WebServer) -> None:
    sock = _connect(server)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + _cookie(app) + b"\r\n")  # keep-alive, then nothing
    took, received = _until_closed(sock)
    assert _status(received) == 200 and received.endswith(b"</html>") and took < SHORT + 2


def test_300_slowloris_connections_do_not_keep_a_request_waiting(app: App) -> None:
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\nX-Padding: " + b"a" * 200
    with WebServer(app) as server:  # the real header timeout (seconds): they stay connected throughout
        threads = threading.active_count()
        slow = [_connect(server) for _ in range(300)]
        stop = threading.Event()

        def trickle() -> None:
            """One byte to each connection in turn, a round every 20 ms, until stopped."""
            for sent in range(len(request)):
                if stop.wait(0.02):
                    return
                for sock in slow:
                    sock.send(request[sent : sent + 1])

        sender = threading.Thread(target=trickle)
        sender.start()
        try:
            time.sleep(0.5)  # every connection has sent part of its headers
            started = time.monotonic()
            answer = httpx.get(server.base + "/", cookies={"reclaim": app.token}, timeout=5)
            took = time.monotonic() - started
            held = sum(1 for sock in slow if _still_open(sock))
            threads = threading.active_count() - threads - 1  # the server's added, not the sender
        finally:
            stop.set()
            sender.join(10)
            for sock in slow:
                sock.close()
    assert answer.status_code == 200 and "Cases" in answer.text
    assert took < 1, f"a request waited {took:.2f} s behind 300 slow connections"
    assert held == 300  # the slow ones were still there, not dropped to make room
    assert threads <= WORKERS  # what the one real request started; the slow ones hold none


def _still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True  # nothing to read: open
    except OSError:
        return False
    finally:
        sock.settimeout(5)


def test_pages_are_kept_until_the_case_files_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = tmp_path / "ual.ndjson"
    tenant = synth.Tenant(users=3, seed=1)
    synth.write_ndjson(records, synth.ual_records(300, tenant))
    case_dir = tmp_path / "case"
    with Case.open(case_dir) as case:
        assert ingest_paths(case, [records]).complete
    opened: list[Path] = []
    real_open = Case.open
    monkeypatch.setattr(
        Case, "open", lambda root, create=True: opened.append(root) or real_open(root, create)
    )
    app = App([case_dir], render_report)
    with (
        WebServer(app) as server,
        httpx.Client(base_url=server.base, cookies={"reclaim": app.token}) as browser,
    ):
        pages = ["/case/0", f"/case/0/user/{tenant.upns[0]}", "/case/0/report"]
        first = [browser.get(page).text for page in pages]
        count = len(opened)
        assert [browser.get(page).text for page in pages] == first and len(opened) == count  # from memory
        (case_dir / JOURNAL).write_bytes(b"torn\n")  # the report reads the journal
        assert "journal.jsonl lines 1 are damaged" in browser.get("/case/0/report").text
        assert len(opened) == count + 1


@pytest.mark.parametrize(
    ("accept", "gzipped"),
    [("gzip, deflate, br", True), ("br;q=1.0, GZIP;q=0.5", True), ("gzip;q=0", False), ("", False)],
)
def test_pages_go_gzipped_to_clients_that_take_gzip(accept: str, gzipped: bool) -> None:
    app = App([Path(f"/cases/customer-{i}") for i in range(100)], lambda case, user, found: "")
    with (
        WebServer(app) as server,
        httpx.Client(base_url=server.base, cookies={"reclaim": app.token}) as client,
    ):
        answer = client.get("/", headers={"Accept-Encoding": accept} if accept else {"Accept-Encoding": ""})
        assert answer.status_code == 200
        assert (answer.headers.get("content-encoding") == "gzip") is gzipped
        if gzipped:
            assert int(answer.headers["content-length"]) < len(answer.content)  # httpx decompressed it
            assert answer.headers["vary"] == "Accept-Encoding"


def test_a_kept_page_is_compressed_once() -> None:
    from reclaim.web.app import Response

    kept = Response(200, b"<p>" + b"x" * 100_000, {"Content-Type": "text/html; charset=utf-8"})
    first = kept.gzipped()
    assert kept.gzipped() is first and gzip.decompress(first.body) == kept.body
    small = Response(200, b"<p>hi</p>", {"Content-Type": "text/html"})
    assert small.gzipped() is small
