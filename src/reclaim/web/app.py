"""The UI's pages and actions. ``App.handle`` answers one request; it holds no logic of its own:
verdicts come from ``reclaim.detect``, plans and their application from ``reclaim.playbook.session``,
reports from ``reclaim.report``.

Access: a random token, given once in the URL the command prints, becomes an HttpOnly, SameSite=Strict
cookie; nothing answers without one or the other. Changes need a POST from our own origin carrying
the form's CSRF value and, for apply and rollback, the account typed again.
"""

from __future__ import annotations

import asyncio
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

from reclaim.case.store import Case
from reclaim.detect import context, engine, rules, verdict
from reclaim.errors import ReclaimError
from reclaim.playbook.journal import JOURNAL
from reclaim.playbook.model import DEFAULT_STEPS, STEPS, Result, parse_steps
from reclaim.playbook.session import Guard, Session, check_guard
from reclaim.tenant.client import TenantClient
from reclaim.web.page import CSP, esc, page, status, table

COOKIE = "reclaim"
_ANALYSES_KEPT = 64  # analyses kept (a case's, and its users' as they are opened)
_PAGES_KEPT = 128 << 20  # bytes of pages kept (a case's, its users', their reports: megabytes each)
# what a case's pages are made of: the database, DuckDB's write-ahead log beside it, the journal
_CASE_FILES = ("case.duckdb", "case.duckdb.wal", JOURNAL)
# (case, user or None, its analysis and verdicts) -> the HTML report
RenderReport = Callable[[Case, str | None, engine.Analysis, list[verdict.UserVerdict]], str]


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


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
    # analyses and verdicts by (case, user or None, evidence fingerprint): every rule over a
    # large case takes seconds, and the same pages are visited again and again
    _analyses: dict[tuple[int, str | None, str], tuple[engine.Analysis, list[verdict.UserVerdict]]] = field(
        default_factory=dict, repr=False
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
            return _html(page("Refused", "<p>The form did not come from this page.</p>"), 403)
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        with self._lock:
            try:
                return self._route(method, parts, query, form)
            except ReclaimError as exc:
                hint = f"<p class=note>{esc(exc.hint)}</p>" if exc.hint else ""
                return _html(page("Could not do that", f"<p class=failed>{esc(exc.message)}</p>{hint}"), 400)

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
        return _html(page("Not found", "<p>No such page.</p>"), 404)

    # -- pages -------------------------------------------------------------------------------------
    def _cases(self) -> Response:
        rows = [
            [
                f'<a href="/case/{i}">{esc(p.name)}</a>',
                esc(p.resolve()),
                "yes" if (p / "journal.jsonl").exists() else "no",
            ]
            for i, p in enumerate(self.cases)
        ]
        note = (
            ""
            if self.connect
            else "<p class=note>No tenant given: plans and changes are off (reclaim serve --tenant ...).</p>"
        )
        return _html(page("Cases", table(("case", "folder", "remediated"), rows) + note))

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

    def _analysis(
        self, case: Case, index: int, user: str | None = None
    ) -> tuple[engine.Analysis, list[verdict.UserVerdict]]:
        """The case's analysis and verdicts (of one user, or of all), run again once its
        evidence changed. What remediation did is not in them: the report reads it anew."""
        row = case.con.execute(
            "SELECT md5(coalesce(string_agg(concat_ws(',', evidence_id, status, records, rejected), ';' "
            "ORDER BY evidence_id), '')) FROM evidence"
        ).fetchone()
        key = (index, user, row[0] if row else "")
        kept = self._analyses.get(key)
        if kept is None:
            analysis = engine.run(case.con, rules.load(), context.Options(user=user))
            kept = (analysis, verdict.verdicts(analysis))
            if len(self._analyses) >= _ANALYSES_KEPT:
                self._analyses.pop(next(iter(self._analyses)))  # the oldest
            self._analyses[key] = kept
        return kept

    def _verdicts(self, case: Case, index: int, user: str | None = None) -> list[verdict.UserVerdict]:
        return self._analysis(case, index, user)[1]

    def _case(self, index: int) -> Response:
        with self._open(index) as case:
            judged = self._verdicts(case, index)
        rows = [
            [
                status(v.verdict),
                str(v.score),
                f'<a href="/case/{index}/user/{quote(v.upn)}">{esc(v.upn)}</a>',
                "<br>".join(esc(r) for r in v.reasons[:3]),
            ]
            for v in judged
        ]
        body = f'<p><a href="/case/{index}/report">The whole report</a></p>' + table(
            ("verdict", "score", "user", "reasons"), rows
        )
        return _html(page(self.cases[index].name, body, [(f"/case/{index}", self.cases[index].name)]))

    def _report(self, index: int, user: str | None) -> Response:
        with self._open(index) as case:
            text = self.render_report(case, user, *self._analysis(case, index, user))
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
            judged = self._verdicts(case, index, upn)
        v = next((j for j in judged if j.upn == upn), None)
        head = (
            f"<p>{status(v.verdict)} (score {v.score})</p><ul>"
            + "".join(f"<li>{esc(r)}</li>" for r in v.reasons)
            + "</ul>"
            if v
            else "<p class=note>The case holds no evidence of this user.</p>"
        )
        link = f"/case/{index}/report?user={quote(upn)}"
        head += f'<p><a href="{link}">Timeline, map, findings and their records</a></p>'
        return _html(page(upn, head + self._forms(index, upn), self._crumbs(index, upn)))

    def _crumbs(self, index: int, upn: str) -> list[tuple[str, str]]:
        return [(f"/case/{index}", self.cases[index].name), (f"/case/{index}/user/{quote(upn)}", upn)]

    def _forms(self, index: int, upn: str, plan_steps: tuple[str, ...] = DEFAULT_STEPS) -> str:
        if self.connect is None:
            return "<p class=note>Remediation needs a tenant: start reclaim serve with --tenant.</p>"
        base = f"/case/{index}/user/{quote(upn)}"
        boxes = "".join(
            f'<label title="{esc(STEPS[s])}"><input type=checkbox name=steps value="{esc(s)}"'
            f"{' checked' if s in plan_steps else ''}> {esc(s)}</label>"
            for s in STEPS
        )
        hidden = f'<input type=hidden name=csrf value="{self.csrf}">'
        return (
            f'<h2>Remediation</h2><form method=post action="{base}/plan">{hidden}<fieldset>{boxes}</fieldset>'
            "<button>Plan (changes nothing)</button></form>"
            f'<form method=post action="{base}/verify">{hidden}'
            "<button>Verify what was applied</button></form>"
        )

    # -- actions -----------------------------------------------------------------------------------
    def _act(self, index: int, upn: str, verb: str, form: Mapping[str, list[str]]) -> Response:
        if self.connect is None:
            return _html(
                page("No tenant", "<p>Start reclaim serve with --tenant to plan and apply.</p>"), 400
            )
        try:
            steps = parse_steps(",".join(form.get("steps") or []) or None)
        except ValueError as exc:  # a form edited by hand: say so, as the CLI does
            return _html(page("Unknown step", f"<p class=failed>{esc(exc)}</p>"), 400)
        confirmed = (form.get("confirm") or [""])[0].strip().lower() == upn
        if verb in ("apply", "rollback") and not confirmed:
            return _html(page("Not confirmed", f"<p class=failed>Type {esc(upn)} to confirm.</p>"), 400)
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
            return _html(page(f"Plan for {upn}", self._plan_html(index, upn, outcome, steps), crumbs))
        if verb == "verify":
            rows = [
                [
                    esc(c.step),
                    esc(c.title),
                    status({True: "true", False: "false", None: "none"}[c.holds]),
                    esc(c.detail),
                ]
                for c in outcome
            ]
            return _html(page(f"Verify {upn}", table(("step", "action", "holds", "detail"), rows), crumbs))
        results: list[Result] = outcome if verb == "rollback" else outcome[1]
        body = self._results_html(results)
        for who, password in passwords:  # shown this once; never stored, logged or journaled
            body = (
                f"<p><b>New password for {esc(who)}</b> (shown once: hand it over in person or by phone): "
                f"<code>{esc(password)}</code></p>"
            ) + body
        passwords.clear()
        return _html(page(f"{verb.capitalize()} {upn}", body + self._forms(index, upn), crumbs))

    def _plan_html(self, index: int, upn: str, plan: Any, steps: tuple[str, ...]) -> str:
        name = f"{plan.tenant_name} ({plan.tenant_id})" if plan.tenant_name else plan.tenant_id
        rows = [
            [
                esc(a.step),
                esc(a.title),
                status(a.status),
                esc(
                    ", ".join(f"{k}: {a.before.get(k)} → {v}" for k, v in a.desired.items() if k in a.before)
                ),
                "<br>".join(esc(w) for w in a.why) or esc(a.reason),
                f"<code>{esc(a.key)}</code>",
            ]
            for a in plan.actions
        ]
        notes = "".join(f"<p class=note>{esc(n)}</p>" for n in plan.notes)
        base = f"/case/{index}/user/{quote(upn)}"
        hidden = f'<input type=hidden name=csrf value="{self.csrf}">' + "".join(
            f'<input type=hidden name=steps value="{esc(s)}">' for s in steps
        )
        apply = (
            f'<form method=post action="{base}/apply">{hidden}<p>Apply {len(plan.changes)} change(s) to '
            f"<b>{esc(upn)}</b> in tenant <b>{esc(name)}</b>. Type the account to confirm: "
            f"<input name=confirm autocomplete=off> <button class=danger>Apply</button></p></form>"
            if plan.changes
            else "<p>Nothing to change.</p>"
        )
        keys = "".join(
            f'<label><input type=checkbox name=include value="{esc(a.key)}"> {esc(a.key)}</label>'
            for a in plan.actions
            if a.kind in ("disable-rule", "remove-forwarding", "remove-grant", "remove-delegate")
        )
        rollback = (
            f'<form method=post action="{base}/rollback"><input type=hidden name=csrf value="{self.csrf}">'
            f"<p>Roll back what was applied (roles, sign-in, protocols; and the ones ticked): {keys} "
            "Type the account to confirm: <input name=confirm autocomplete=off> "
            "<button class=danger>Roll back</button></p></form>"
        )
        header = (
            f"<p>Tenant <b>{esc(name)}</b>"
            + (f"; compromise from {esc(plan.window_start)}" if plan.window_start else "")
            + "</p>"
        )
        return (
            header
            + table(("step", "action", "status", "now → wanted", "why", "key"), rows)
            + notes
            + apply
            + rollback
        )

    @staticmethod
    def _results_html(results: list[Result]) -> str:
        rows = [
            [
                esc(r.step),
                esc(r.title),
                status(r.status),
                esc(r.detail + (f" (hint: {r.hint})" if r.hint else "")),
            ]
            for r in results
        ]
        return table(("step", "action", "result", "detail"), rows)


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
