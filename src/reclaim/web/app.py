"""The UI's pages and actions. ``App.handle`` answers one request; it holds no logic of its own:
verdicts come from ``reclaim.investigation``, plans and their application from ``reclaim.playbook.session``,
reports from ``reclaim.report``.

Access: a random token, given once in the URL the command prints, becomes an HttpOnly, SameSite=Strict
cookie; nothing answers without one or the other. Changes need a POST from our own origin carrying
the form's CSRF value and, for apply and rollback, the account typed again.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from reclaim import investigation
from reclaim.case.store import Case
from reclaim.errors import ReclaimError
from reclaim.playbook.journal import JOURNAL
from reclaim.playbook.model import DEFAULT_STEPS, STEPS, Result, parse_steps
from reclaim.playbook.session import Guard, Session, check_guard
from reclaim.tenant.client import TenantClient
from reclaim.web.page import CSP, message, page

COOKIE = "reclaim"
_INVESTIGATIONS_KEPT = 64  # a case's, and its users' as they are opened
GZIP_MIN = 1024  # bytes: a smaller answer gains less than gzip's header costs
_PAGES_KEPT = 128 << 20  # bytes of pages kept (a case's, its users', their reports: megabytes each)
# what a case's pages are made of: the database, DuckDB's write-ahead log beside it, the journal
_CASE_FILES = ("case.duckdb", "case.duckdb.wal", JOURNAL)
_UNDONE_WHEN_TICKED = ("disable-rule", "remove-forwarding", "remove-grant", "remove-delegate")
# (case, user or None, its investigation) -> the HTML report
RenderReport = Callable[[Case, str | None, investigation.Investigation], str]


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    # the gzip form, made once for a kept page: 200 loads of a 9 MB report would each copy 9 MB
    _gzipped: Response | None = field(default=None, repr=False, compare=False)
    _gzipping: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def gzipped(self) -> Response:
        """This answer gzip-compressed, when it is text worth compressing; else itself."""
        kind = self.headers.get("Content-Type", "")
        if len(self.body) < GZIP_MIN or not kind.startswith(("text/", "application/json")):
            return self
        with self._gzipping:
            if self._gzipped is None:
                headers = dict(self.headers, **{"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
                self._gzipped = Response(self.status, gzip.compress(self.body, 6, mtime=0), headers)
        return self._gzipped


def _html(text: str, status_code: int = 200) -> Response:
    return Response(
        status_code,
        text.encode("utf-8"),
        {
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": CSP,
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            # not no-referrer: with it, Chromium sends "Origin: null" on our own forms' POSTs
            "Referrer-Policy": "same-origin",
        },
    )


@dataclass
class App:
    cases: list[Path]
    render_report: RenderReport
    connect: Callable[[], TenantClient] | None = None  # None: no tenant given, nothing can change
    guard: Guard = field(default_factory=Guard)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    _lock: threading.Lock = field(
        default_factory=threading.Lock, repr=False
    )  # one request at a case at a time
    _investigations: investigation.Kept = field(
        default_factory=lambda: investigation.Kept(_INVESTIGATIONS_KEPT), repr=False
    )
    # pages by (case, page, user or None) with the stamp of the case's files they were made from:
    # opening a case costs more than its page, and concurrent visits would each open it
    _pages: dict[tuple[int, str, str | None], tuple[tuple[object, ...], Response]] = field(
        default_factory=dict, repr=False
    )

    @property
    def csrf(self) -> str:
        return hmac.new(self.token.encode(), b"csrf", hashlib.sha256).hexdigest()

    # -- one request ------------------------------------------------------------------------------
    def admit(self, path: str, query: Mapping[str, str], headers: Mapping[str, str]) -> Response | None:
        """The access check, on the request line and headers alone (the server makes it before reading
        any body): the token's redirect to a cookie, a refusal, or None to go on. ``headers`` with
        lower-case names."""
        given = query.get("token")
        cookie = _cookie(headers.get("cookie", ""), COOKIE)
        if given is not None and secrets.compare_digest(given.encode(), self.token.encode()):
            # the token leaves the address bar and lives on as a cookie only this origin sends
            return Response(
                303,
                b"",
                {
                    "Location": path,
                    "Cache-Control": "no-store",
                    "Set-Cookie": f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/",
                },
            )
        if cookie is None or not secrets.compare_digest(cookie.encode(), self.token.encode()):
            return Response(
                403,
                b"Forbidden: open the address reclaim serve printed.\n",
                {"Content-Type": "text/plain; charset=utf-8"},
            )
        return None

    def handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        form: Mapping[str, list[str]],
        origin: str,
    ) -> Response:
        """``headers`` with lower-case names; ``origin``: this server's own, for the Origin check."""
        refused = self.admit(path, query, headers)
        if refused is not None:
            return refused
        form_csrf = (form.get("csrf") or [""])[0].encode()
        if method == "POST" and (
            headers.get("origin") not in (None, origin)
            or not secrets.compare_digest(form_csrf, self.csrf.encode())
        ):
            return _html(message("Refused", "The form did not come from this page."), 403)
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        with self._lock:
            try:
                return self._route(method, parts, query, form)
            except ReclaimError as exc:
                return _html(message("Could not do that", exc.message, failed=True, hint=exc.hint), 400)

    def _route(
        self, method: str, parts: list[str], query: Mapping[str, str], form: Mapping[str, list[str]]
    ) -> Response:
        if not parts and method == "GET":
            return self._cases()
        if len(parts) >= 2 and parts[0] == "case" and parts[1].isdigit() and int(parts[1]) < len(self.cases):
            index, rest = int(parts[1]), parts[2:]
            if not rest and method == "GET":
                return self._kept(index, "case", None, lambda: self._case(index))
            if rest == ["report"] and method == "GET":
                asked = query.get("user")
                user = asked.lower() if asked else None
                return self._kept(index, "report", user, lambda: self._report(index, user))
            if len(rest) == 2 and rest[0] == "user" and method == "GET":
                upn = rest[1].lower()
                return self._kept(index, "user", upn, lambda: self._user(index, upn))
            if (
                len(rest) == 3
                and rest[0] == "user"
                and method == "POST"
                and rest[2] in ("plan", "apply", "verify", "rollback")
            ):
                return self._act(index, rest[1].lower(), rest[2], form)
        return _html(message("Not found", "No such page."), 404)

    # -- pages -------------------------------------------------------------------------------------
    def _cases(self) -> Response:
        cases = [(p.name, p.resolve(), (p / JOURNAL).exists()) for p in self.cases]
        return _html(page("cases.html.j2", "Cases", cases=cases, connected=self.connect is not None))

    def _kept(self, index: int, name: str, user: str | None, make: Callable[[], Response]) -> Response:
        """The page ``make`` returns, made again only once the case's files changed; kept only if
        they did not change while it was made (a write in another process meanwhile)."""
        key = (index, name, user)
        stamp = _stamp(self.cases[index])
        kept = self._pages.get(key)
        if kept is not None and kept[0] == stamp:
            return kept[1]
        response = make()
        if response.status == 200 and _stamp(self.cases[index]) == stamp:
            self._pages.pop(key, None)
            self._pages[key] = (stamp, response)
            # the oldest go first; the newest stays, even alone over the limit
            while len(self._pages) > 1 and sum(len(r.body) for _, r in self._pages.values()) > _PAGES_KEPT:
                self._pages.pop(next(iter(self._pages)))
        return response

    def _open(self, index: int) -> Case:
        return Case.open(self.cases[index], create=False)

    def _investigation(self, case: Case, user: str | None = None) -> investigation.Investigation:
        return self._investigations.get(case, user)

    def _case(self, index: int) -> Response:
        with self._open(index) as case:
            judged = self._investigation(case).verdicts
        name = self.cases[index].name
        return _html(page("case.html.j2", name, [(f"/case/{index}", name)], index=index, verdicts=judged))

    def _report(self, index: int, user: str | None) -> Response:
        with self._open(index) as case:
            text = self.render_report(case, user, self._investigation(case, user))
        # the report brings its own Content-Security-Policy (a meta tag allowing its one script)
        return Response(
            200,
            text.encode("utf-8"),
            {
                "Content-Type": "text/html; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    def _user(self, index: int, upn: str) -> Response:
        with self._open(index) as case:
            judged = self._investigation(case, upn).verdicts
        v = next((j for j in judged if j.upn == upn), None)
        crumbs = self._crumbs(index, upn)
        return _html(
            page("user.html.j2", upn, crumbs, verdict=v, index=index, upn=upn, **self._forms(index, upn))
        )

    def _crumbs(self, index: int, upn: str) -> list[tuple[str, str]]:
        return [(f"/case/{index}", self.cases[index].name), (_user_path(index, upn), upn)]

    def _forms(self, index: int, upn: str) -> dict[str, Any]:
        """What the remediation forms of a user's pages need (forms.html.j2)."""
        return {
            "connected": self.connect is not None,
            "base": _user_path(index, upn),
            "csrf": self.csrf,
            "steps": STEPS,
            "chosen": DEFAULT_STEPS,
        }

    # -- actions -----------------------------------------------------------------------------------
    def _act(self, index: int, upn: str, verb: str, form: Mapping[str, list[str]]) -> Response:
        if self.connect is None:
            return _html(message("No tenant", "Start reclaim serve with --tenant to plan and apply."), 400)
        try:
            steps = parse_steps(",".join(form.get("steps") or []) or None)
        except ValueError as exc:  # a form edited by hand: say so, as the CLI does
            return _html(message("Unknown step", exc, failed=True), 400)
        confirmed = (form.get("confirm") or [""])[0].strip().lower() == upn
        if verb in ("apply", "rollback") and not confirmed:
            return _html(message("Not confirmed", f"Type {upn} to confirm.", failed=True), 400)
        passwords: list[tuple[str, str]] = []
        connect = self.connect

        async def run() -> Any:
            async with connect() as client:
                with self._open(index) as case:
                    session = Session(client, case, upn, lambda u, p: passwords.append((u, p)))
                    if verb == "verify":
                        return await session.verify()
                    if verb == "rollback":
                        return await session.rollback(None, tuple(form.get("include") or ()))
                    plan, state = await session.plan(steps)
                    check_guard(plan, self.guard)
                    if verb == "plan":
                        return plan
                    return plan, await session.apply(plan, state)

        outcome = asyncio.run(run())
        crumbs = self._crumbs(index, upn)
        if verb == "plan":
            return _html(
                page("plan.html.j2", f"Plan for {upn}", crumbs, **self._plan(index, upn, outcome, steps))
            )
        if verb == "verify":
            return _html(page("verify.html.j2", f"Verify {upn}", crumbs, checks=outcome))
        results: list[Result] = outcome if verb == "rollback" else outcome[1]
        # the passwords are shown this once; never stored, logged or journaled
        shown = page(
            "results.html.j2",
            f"{verb.capitalize()} {upn}",
            crumbs,
            passwords=passwords[::-1],
            results=results,
            **self._forms(index, upn),
        )
        passwords.clear()
        return _html(shown)

    def _plan(self, index: int, upn: str, plan: Any, steps: tuple[str, ...]) -> dict[str, Any]:
        """What plan.html.j2 shows of ``plan``, made for ``steps``."""
        return {
            "plan": plan,
            "upn": upn,
            "tenant": f"{plan.tenant_name} ({plan.tenant_id})" if plan.tenant_name else plan.tenant_id,
            "changes": _changes,
            # what a rollback undoes only when ticked
            "undoable": [a.key for a in plan.actions if a.kind in _UNDONE_WHEN_TICKED],
            "base": _user_path(index, upn),
            "csrf": self.csrf,
            "chosen": steps,
        }


def _user_path(index: int, upn: str) -> str:
    return f"/case/{index}/user/{quote(upn)}"


def _changes(action: Any) -> str:
    """What ``action`` changes: each setting as it is now and as it will be."""
    return ", ".join(
        f"{k}: {action.before.get(k)} → {v}" for k, v in action.desired.items() if k in action.before
    )


def _stamp(root: Path) -> tuple[object, ...]:
    """Which version of each case file is there: any write changes its size, times or inode."""
    stamps: list[object] = []
    for name in _CASE_FILES:
        try:
            st = os.stat(root / name)
        except OSError:  # not there (the WAL between checkpoints, the journal before any change)
            stamps.append(None)
        else:
            stamps.append((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(stamps)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None
