"""The web UI under load: bursts of concurrent page loads, each a new connection, as ``reclaim serve``
answers them.

The case is synthetic UAL records (``synth.ual_records``) ingested into a temporary case. The server
runs in its own process (the client's event loop would otherwise share its interpreter); each burst
opens ``--clients`` connections at once, asking as a browser does (gzip accepted), and times every
load from the burst's start to the last byte; the size printed is the size sent. Beside the pages,
the floor: the same server, access check and thread hand-off answering a static 'hello', measured in
the same run.
    python bench/web_bench.py --clients 200 --records 20000
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import quote

from reclaim.case.store import Case
from reclaim.ingest.pipeline import ingest_paths
from reclaim.tenantsim import synth
from reclaim.web.app import App, Response

USERS = 25
LOAD_TIMEOUT = 120.0  # seconds: a load that takes longer counts as failed, and the bench still ends


class _Hello(App):
    """Every page a static 'hello': what the server costs with no page work."""

    def _route(self, *args: Any) -> Response:
        return Response(200, b"hello\n", {"Content-Type": "text/plain; charset=utf-8"})


def _serve(case: str, hello: bool, pipe: Connection) -> None:
    from reclaim.cli.serve import render_report
    from reclaim.web.server import WebServer

    app = (_Hello if hello else App)([Path(case)], render_report)
    server = WebServer(app)
    pipe.send((server.base, app.token))
    server.serve_forever()


async def _load(host: str, port: int, path: str, cookie: str) -> tuple[float, int, int]:
    """One page load: connect, ask, read to the end. Seconds (from the call), the retries made
    after a connection reset (the stdlib server's backlog of 5 overflows) and the bytes received."""
    started, retries = time.perf_counter(), 0
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: reclaim={cookie}\r\n"
        "Accept-Encoding: gzip, deflate, br\r\nConnection: close\r\n\r\n"  # as every browser asks
    ).encode()
    while True:
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            await writer.drain()
            answer = await reader.read()
            writer.close()
            break
        except ConnectionError:
            retries += 1
    if not answer.startswith(b"HTTP/1.1 200 "):
        raise RuntimeError(f"{path}: {answer[:80]!r}")
    return time.perf_counter() - started, retries, len(answer)


async def _burst(base: str, token: str, path: str, clients: int) -> tuple[list[float], int, int, int]:
    host, port = base.removeprefix("http://").rsplit(":", 1)

    async def bounded() -> tuple[float, int, int]:
        async with asyncio.timeout(LOAD_TIMEOUT):
            return await _load(host, int(port), path, token)

    results = await asyncio.gather(*(bounded() for _ in range(clients)), return_exceptions=True)
    times = [r[0] for r in results if isinstance(r, tuple)]
    retries = sum(r[1] for r in results if isinstance(r, tuple))
    size = max((r[2] for r in results if isinstance(r, tuple)), default=0)
    return times, retries, clients - len(times), size


def _label(path: str) -> str:
    return "/case/0/user/U" if "/user/" in path else path


def _measure(case: Path, hello: bool, paths: list[str], clients: int, rounds: int) -> None:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(str(case), hello, child), daemon=True)
    process.start()
    try:
        base, token = parent.recv()
        for path in paths:
            asyncio.run(_burst(base, token, path, 1))  # warm: the case opened and judged once
            times: list[float] = []
            retries = failed = size = 0
            for _ in range(rounds):
                burst, retried, lost, size = asyncio.run(_burst(base, token, path, clients))
                times += burst
                retries += retried
                failed += lost
            p95 = statistics.quantiles(times, n=20)[18] if len(times) > 1 else float("nan")
            label = "floor (static hello)" if hello else _label(path)
            print(
                f"{label:<22} {size / 1024:7.0f} KB   median {statistics.median(times):6.3f} s   "
                f"p95 {p95:6.3f} s   max {max(times):6.3f} s   resets {retries}   failed {failed}"
            )
    finally:
        process.terminate()
        process.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=200, help="page loads at once")
    parser.add_argument("--rounds", type=int, default=3, help="bursts per page")
    parser.add_argument("--records", type=int, default=20_000, help="UAL records in the case")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        records = Path(tmp) / "ual.ndjson"
        tenant = synth.Tenant(users=USERS, seed=1)
        synth.write_ndjson(records, synth.ual_records(args.records, tenant))
        with Case.open(Path(tmp) / "case") as case:
            assert ingest_paths(case, [records]).complete
        user = quote(tenant.upns[0])
        pages = ["/", "/case/0", f"/case/0/user/{user}", "/case/0/report"]
        print(
            f"{args.clients} concurrent page loads x {args.rounds}, {args.records} records, {USERS} users "
            f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
        )
        _measure(Path(tmp) / "case", True, ["/"], args.clients, args.rounds)
        _measure(Path(tmp) / "case", False, pages, args.clients, args.rounds)


if __name__ == "__main__":
    main()
