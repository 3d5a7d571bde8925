"""The UI over HTTP on 127.0.0.1 (stdlib server, a thread per connection)."""

from __future__ import annotations

import socketserver
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from reclaim.web.app import App

MAX_FORM = 1 << 20  # a form is a few fields; anything larger is refused


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: App
    origin: str

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the host (slow or hanging offline)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        form: dict[str, list[str]] = {}
        if self.command == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_FORM:
                self.send_error(413, "Form too large")
                return
            raw = self.rfile.read(length).decode("utf-8", "replace")
            form = parse_qs(raw, keep_blank_values=True)
        headers = {k.lower(): v for k, v in self.headers.items()}
        response = self.server.app.handle(self.command, parts.path, query, headers, form, self.server.origin)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    do_GET = do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the URL carries the access token on the first request."""


class WebServer:
    """``with WebServer(app) as server:`` serves in a thread; ``server.url`` carries the token."""

    def __init__(self, app: App, port: int = 0) -> None:
        self.app = app
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.app = app
        host, bound = self._server.server_address[:2]
        self.base = f"http://{host!s}:{bound}"
        self._server.origin = self.base
        self._thread: Any = None

    @property
    def url(self) -> str:
        return f"{self.base}/?token={self.app.token}"

    def __enter__(self) -> WebServer:
        import threading

        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def serve_forever(self) -> None:
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._server.server_close()
