"""The UI over HTTP on 127.0.0.1: Hypercorn (asyncio, h11) in front of ``App``.

Not the standard library's server: it gives every connection a thread from its first byte, has no
header or body timeout and a listen backlog of 5, so slow clients hold threads and a burst of
connections waits on SYN retransmits. Here a connection is a coroutine until its request is whole;
only then does one of a few threads run the app. Per connection:

- headers: complete within ``header_timeout`` of connecting or of the previous answer (Hypercorn's
  keep-alive timer runs until a request's headers are in, so it is the idle timeout as well), and
  at most 16 KiB (h11's limit);
- access: checked on the headers (``App.admit``); a refused request's body is never asked for, and
  the connection closes after the answer (Hypercorn buffers at most a few chunks that came anyway);
- Content-Length: not a number, or negative, is answered 400 by h11; over ``MAX_FORM``, 413 before
  any of the body is read;
- body: complete within ``body_timeout`` of the headers, else 408.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, parse_qsl

from hypercorn.asyncio import serve
from hypercorn.config import Config
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope

from reclaim.web.app import App, Response

MAX_FORM = 1 << 20  # a form is a few fields; anything larger is refused
HEADER_TIMEOUT = 10.0  # seconds for a request's headers, and for an idle connection
BODY_TIMEOUT = 10.0  # seconds for a form's body
WORKERS = 4  # threads running the app (which answers one request at a time anyway)
BACKLOG = 1024  # connections the kernel holds until they are accepted


def _plain(status: int, text: str) -> Response:
    return Response(status, text.encode(), {"Content-Type": "text/plain; charset=utf-8"})


class _Asgi:
    """``App`` as an ASGI application: access checked before the body, the app run in ``pool``."""

    def __init__(self, app: App, origin: str, body_timeout: float, pool: ThreadPoolExecutor) -> None:
        self.app, self.origin, self.body_timeout, self.pool = app, origin, body_timeout, pool

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] == "lifespan":  # nothing to start or stop
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        elif scope["type"] == "http":
            await self._send(send, await self._answer(scope, receive))

    async def _answer(self, scope: HTTPScope, receive: ASGIReceiveCallable) -> Response:
        path = scope["raw_path"].decode("latin-1")  # still %-encoded: App unquotes each part
        query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refused = self.app.admit(path, query, headers)
        if refused is not None:
            return refused
        form: dict[str, list[str]] = {}
        if scope["method"] == "POST":
            body = await self._body(headers.get("content-length"), receive)
            if isinstance(body, Response):
                return body
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(
            self.pool, self.app.handle, scope["method"], path, query, headers, form, self.origin
        )
        if _accepts_gzip(headers.get("accept-encoding", "")):
            return await loop.run_in_executor(self.pool, response.gzipped)
        return response

    async def _body(self, declared: str | None, receive: ASGIReceiveCallable) -> bytes | Response:
        # h11 has refused a Content-Length that is not digits; chunked bodies are counted as they come
        if declared is not None and int(declared) > MAX_FORM:
            return _plain(413, "Form too large.\n")
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":  # the client left
                        return _plain(400, "Incomplete form.\n")
                    chunks.append(message["body"])
                    size += len(message["body"])
                    if size > MAX_FORM:
                        return _plain(413, "Form too large.\n")
                    if not message["more_body"]:
                        return b"".join(chunks)
        except TimeoutError:
            return _plain(408, "The form took too long to arrive.\n")

    @staticmethod
    async def _send(send: ASGISendCallable, response: Response) -> None:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
        headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body, "more_body": False})


def _accepts_gzip(accept_encoding: str) -> bool:
    """Whether Accept-Encoding allows gzip (named without q=0; a browser always sends it)."""
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        if name.strip() == "gzip":
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


class WebServer:
    """``with WebServer(app) as server:`` serves in a thread; ``server.url`` carries the token."""

    def __init__(
        self,
        app: App,
        port: int = 0,
        *,
        header_timeout: float = HEADER_TIMEOUT,
        body_timeout: float = BODY_TIMEOUT,
    ) -> None:
        self.app = app
        # listening from here on: connections made before the server runs wait in the backlog
        self._socket = socket.create_server(("127.0.0.1", port), backlog=BACKLOG)
        host, bound = self._socket.getsockname()[:2]
        self.base = f"http://{host!s}:{bound}"
        self.header_timeout, self.body_timeout = header_timeout, body_timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: BaseException | None = None

    @property
    def url(self) -> str:
        return f"{self.base}/?token={self.app.token}"

    async def _serve(self, in_thread: bool) -> None:
        config = Config()
        config.bind = [f"fd://{self._socket.detach()}"]  # Hypercorn's to close from now on
        config.backlog = BACKLOG
        config.keep_alive_timeout = self.header_timeout
        config.loglevel = "WARNING"  # not its "Running on" line; the app's errors still show
        config.accesslog = None  # the first request's URL carries the token
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="reclaim-web") as pool:
            app = _Asgi(self.app, self.base, self.body_timeout, pool)
            # in the main thread (reclaim serve), Hypercorn stops on SIGINT and SIGTERM itself
            trigger = (lambda: asyncio.to_thread(self._stop.wait)) if in_thread else None
            await serve(app, config, shutdown_trigger=trigger)

    def _run_in_thread(self) -> None:
        try:
            asyncio.run(self._serve(in_thread=True))
        except BaseException as exc:  # shown by __exit__
            self._failed = exc

    def __enter__(self) -> WebServer:
        self._thread = threading.Thread(target=self._run_in_thread, name="reclaim-web", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        if self._failed is not None:
            raise RuntimeError("the web server stopped with an error") from self._failed

    def serve_forever(self) -> None:
        """Until Ctrl+C or SIGTERM."""
        asyncio.run(self._serve(in_thread=False))
