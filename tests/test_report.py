"""``reclaim report``: the HTML, JSON and Markdown of a case whose data is full of HTML, script and Unicode
tricks. Nothing of it may run, load or hide: escaped everywhere, one script allowed by its hash."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from reclaim.case.store import Case, RowRef
from reclaim.cli.main import cli
from reclaim.detect import context
from reclaim.ingest.original import read_original, read_originals
from reclaim.ingest.pipeline import ingest_paths
from reclaim.playbook.journal import Journal
from reclaim.playbook.model import DONE, Action
from reclaim.report import data, html, markdown
from reclaim.report.text import markdown_text
from reclaim.timeline import timeline, timeline_size

EVE = "eve@contoso.example"
RULE_NAME = "<script>alert(1)</script>"
SUBJECT = "</script><img src=x onerror=alert(1)>"
DISPLAY = "Eve \u202eevlE\u200b Holt"
AGENT = 'Mozilla/5.0 "><svg onload=alert(document.domain)>'
LINK = "[click](javascript:alert(1)) https://evil.example/x | `tick`"
HOSTILE = (RULE_NAME, SUBJECT, DISPLAY, AGENT, LINK)


def _signin(
    n: int, when: str, ip: str, city: str, country: str, agent: str = "Mozilla/5.0"
) -> dict[str, object]:
    return {"createdDateTime": when, "id": f"s{n}", "userPrincipalName": EVE, "userDisplayName": DISPLAY,
            "ipAddress": ip, "clientAppUsed": "Browser", "appDisplayName": "One Outlook Web", "userAgent": agent,
            "status": {"errorCode": 0}, "location": {"city": city, "countryOrRegion": country}}  # fmt: skip


def _exports(folder: Path) -> None:
    folder.mkdir()
    home = [
        _signin(i, f"2026-11-0{1 + i // 2}T0{8 + i % 2}:00:00Z", "81.224.0.1", "Stockholm", "SE")
        for i in range(8)
    ]
    # the attacker: a DigitalOcean server in another country, with a hostile user agent
    attacker = _signin(99, "2026-11-05T22:00:00Z", "159.89.0.1", "Frankfurt am Main", "DE", AGENT)
    (folder / "signins.json").write_text(json.dumps({"value": [*home, attacker]}), encoding="utf-8")
    ual = [
        {"CreationTime": "2026-11-05T22:04:00", "Id": "a1", "Operation": "New-InboxRule", "RecordType": 1,
         "Workload": "Exchange", "UserId": EVE, "ClientIP": "159.89.0.1", "ResultStatus": "True",
         "ObjectId": f"contoso.example/Users/eve\\{RULE_NAME}",
         "Parameters": [{"Name": "Name", "Value": RULE_NAME}, {"Name": "MoveToFolder", "Value": "RSS Feeds"},
                        {"Name": "SubjectContainsWords", "Value": LINK}]},
        {"CreationTime": "2026-11-05T22:06:00", "Id": "a2", "Operation": "Send", "RecordType": 2,
         "Workload": "Exchange", "UserId": EVE, "ClientIP": "159.89.0.1", "Item": {"Subject": SUBJECT}},
    ]  # fmt: skip
    (folder / "ual.json").write_text(json.dumps(ual), encoding="utf-8")
    current = [{"Name": RULE_NAME, "Identity": "eve\\1", "MailboxOwnerId": EVE, "Enabled": True, "Priority": 1,
                "MoveToFolder": "RSS Feeds", "ForwardTo": None}]  # fmt: skip
    (folder / "rules.json").write_text(json.dumps(current), encoding="utf-8")
    audits = {"value": [
        {"id": "d1", "activityDateTime": "2026-11-05T22:10:00Z", "category": "UserManagement",
         "activityDisplayName": "Update user", "result": "success", "loggedByService": "Core Directory",
         "initiatedBy": {"user": {"userPrincipalName": EVE, "ipAddress": "159.89.0.1"}},
         "targetResources": [{"id": "u1", "type": "User", "userPrincipalName": EVE, "modifiedProperties": [
             {"displayName": "DisplayName", "oldValue": '["Eve Holt"]', "newValue": json.dumps([DISPLAY])}]}]},
    ]}  # fmt: skip
    (folder / "audits.json").write_text(json.dumps(audits), encoding="utf-8")


def _journal(case_root: Path) -> None:
    """What remediate and verify leave: an apply result with hostile text, and its check."""
    journal = Journal(case_root)
    action = Action(key="R3:rule:eve\\1", step="R3", kind="inbox_rule", title=f"disable inbox rule '{RULE_NAME}'",
                    target={"identity": "eve\\1"}, before={"Enabled": True}, desired={"Enabled": False})  # fmt: skip
    journal.before("apply", EVE, action, "tenant-1")
    journal.result("apply", EVE, action, "tenant-1", DONE, detail=f"disabled {SUBJECT}", hint=LINK)
    journal.append({"op": "verify", "phase": "result", "tenant": "tenant-1", "upn": EVE, "key": action.key,
                    "step": "R3", "title": action.title, "holds": True, "detail": ""})  # fmt: skip


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    _exports(root / "exports")
    with Case.open(root / "case") as case:
        assert ingest_paths(case, [root / "exports"]).complete
    _journal(root / "case")
    return root / "case"


@pytest.fixture(scope="module")
def report(case_dir: Path) -> data.Report:
    with Case.open(case_dir, create=False) as case:
        return data.gather(case, context.Options(), "hostile-case")


@pytest.fixture(scope="module")
def page(report: data.Report) -> str:
    return html.render(report)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = dict(attrs)

    def handle_data(self, text: str) -> None:
        if self._script is not None:
            self.scripts.append((self._script, text))
            self._script = None


def _parsed(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    return parser


def test_the_case_has_what_the_report_must_show(report: data.Report) -> None:
    (eve,) = [u for u in report.users if u.upn == EVE]
    fired = {f.finding.rule.id for f in eve.findings}
    assert {"inbox-rule-hiding-folder", "display-name-changed", "signin-hosting-network"} <= fired, fired
    assert eve.verdict.verdict == "compromised"
    assert any(e.row for e in eve.timeline if e.action == "Send")
    (action,) = eve.actions
    assert action.results[0].status == DONE and action.verified is not None and action.verified.holds
    assert report.document["actions"][0]["key"] == action.key


def test_hostile_text_never_reaches_the_page_as_markup(page: str) -> None:
    for text in (RULE_NAME, SUBJECT, AGENT, "<svg onload", "<img", "\u202e", "\u200b"):
        assert text not in page, text
    # shown, escaped, with the hidden characters named
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "Eve &lt;U+202E&gt;evlE&lt;U+200B&gt; Holt" in page
    assert (
        "&quot;&gt;&lt;svg onload=alert(document.domain)&gt;" in page
    )  # the user agent, in the original record
    parsed = _parsed(page)
    allowed = {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "h5", "p", "nav", "a",
               "span", "main", "section", "table", "thead", "tbody", "tr", "th", "td", "ul", "li", "details",
               "summary", "div", "pre", "strong", "em", "br", "figure", "figcaption", "svg", "defs", "path", "use",
               "rect", "circle", "g", "text", "label", "select", "option", "input", "button", "footer",
               "script"}  # fmt: skip
    assert {tag for tag, _ in parsed.tags} <= allowed
    for tag, attrs in parsed.tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        for name in ("href", "src", "action", "xlink:href"):
            value = attrs.get(name)
            assert value is None or value.startswith("#"), (tag, name, value)


def test_one_script_allowed_by_its_hash(page: str) -> None:
    parsed = _parsed(page)
    assert [tag for tag, _ in parsed.tags].count("script") == 2  # the findings JSON and the report's script
    code = [text for attrs, text in parsed.scripts if "type" not in attrs]
    assert len(code) == 1
    (csp,) = [attrs["content"] for tag, attrs in parsed.tags
              if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"]  # fmt: skip
    assert csp is not None
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    digest = base64.b64encode(hashlib.sha256(code[0].encode()).digest()).decode()
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == f"'sha256-{digest}'"
    style = re.search(r"<style>(.*?)</style>", page, re.S)
    assert style is not None
    style_digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert directives["style-src"] == f"'sha256-{style_digest}'"
    assert directives["img-src"] == "data:"
    assert "unsafe" not in csp
    # the CSP comes before anything it governs
    assert page.index("Content-Security-Policy") < page.index("<style>") < page.index("<script")


def test_nothing_is_loaded_from_the_network(page: str) -> None:
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "url(" not in page and "@import" not in page and "xmlns" not in page
    assert not re.search(r"\bfetch\(|XMLHttpRequest|WebSocket|import\(", html._asset("report.js"))


def test_the_findings_json_is_embedded_safely(page: str, report: data.Report) -> None:
    parsed = _parsed(page)
    (text,) = [t for attrs, t in parsed.scripts if attrs.get("type") == "application/json"]
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    doc = json.loads(text)
    assert doc["schema"] == "reclaim.findings/1"
    assert json.dumps(doc, sort_keys=True) == json.dumps(json.loads(json.dumps(report.document, default=str)),
                                                         sort_keys=True)  # fmt: skip
    assert RULE_NAME in json.dumps(doc, ensure_ascii=False)  # the data is intact, only encoded
    assert html.script_json({"a": "\u2028</script>&"}) == '{"a":"\\u2028\\u003c/script\\u003e\\u0026"}'


def test_findings_expand_to_their_original_records(page: str, report: data.Report) -> None:
    (eve,) = [u for u in report.users if u.upn == EVE]
    rule = next(f for f in eve.findings if f.finding.rule.id == "inbox-rule-hiding-folder")
    shown = {r.row for r in rule.records}
    assert shown and shown <= set(rule.finding.evidence)
    record = rule.records[0]
    assert record.original is not None and record.normalized is not None and record.table
    assert f'data-row="{record.row}"' in page
    hosting = next(f for f in eve.findings if f.finding.rule.id == "signin-hosting-network")
    assert hosting.records[0].original["userAgent"] == AGENT


def test_the_map_marks_the_foreign_sign_in(report: data.Report, page: str) -> None:
    (eve,) = [u for u in report.users if u.upn == EVE]
    by_country = {loc.country: loc for loc in eve.locations}
    assert by_country["DE"].suspicious and not by_country["SE"].suspicious
    assert re.search(r'<circle class="dot suspicious[^"]*"[^>]*data-country="DE"', page)
    assert eve.signins == 9 and sum(b.total for b in eve.by_hour) == 9
    assert [b.label for b in eve.by_country] == ["Sweden", "Germany"]


def test_markdown_escapes_everything(report: data.Report) -> None:
    text = markdown.render(report)
    for raw in ("https://", "\u202e", "\u200b"):
        assert raw not in text, raw
    # no HTML, link, code span or emphasis can start: each such character is backslash-escaped
    assert not re.search(r"(?<!\\)[<>\[\]`]", text), re.findall(r".{20}(?<!\\)[<>\[\]`].{20}", text)
    assert "\\<script\\>alert(1)\\</script\\>" in text
    assert "hxxps://evil.example/x \\| \\`tick\\`" in markdown_text(LINK)
    assert "## eve@contoso.example: compromised" in text
    assert "| R3 | disable inbox rule '\\<script\\>alert(1)\\</script\\>' | apply done" in text
    # every table row keeps its column count: no cell is broken by a pipe
    for line in text.splitlines():
        if line.startswith("| ") and "severity" not in line:
            cells = re.split(r"(?<!\\)\|", line)
            assert len(cells) in (5, 6, 8), line


def test_the_cli_writes_all_three(case_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(cli, ["report", str(case_dir), "--html", str(out / "r.html"), "--json",
                                      str(out / "r.json"), "--md", str(out / "r.md"), "--user", "EVE@contoso.example"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "HTML report written to" in result.output and "compromised" in result.output
    doc = json.loads((out / "r.json").read_text())
    assert [u["upn"] for u in doc["users"]] == [EVE] and doc["actions"][0]["verified"]["holds"] is True
    assert (out / "r.html").read_text().startswith("<!DOCTYPE html>")
    assert "## eve@contoso.example" in (out / "r.md").read_text()


def test_the_cli_says_what_is_wrong(case_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    unknown = runner.invoke(cli, ["report", str(case_dir), "--html", str(tmp_path / "r.html"), "--user",
                                  "eva@contoso.example"])  # fmt: skip
    assert unknown.exit_code == 2 and "no user eva@contoso.example" in unknown.output
    assert EVE in unknown.output  # the close match
    missing = runner.invoke(cli, ["report", str(tmp_path / "nowhere"), "--html", str(tmp_path / "r.html")])
    assert missing.exit_code == 1 and "no case at" in missing.output
    nothing = runner.invoke(cli, ["report", str(case_dir)])
    assert nothing.exit_code == 2 and "--html FILE" in nothing.output
    assert not (tmp_path / "r.html").exists()


def test_caps_keep_a_big_case_small(case_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "TIMELINE_SHOWN", 3)
    monkeypatch.setattr(data, "EVIDENCE_SHOWN", 1)
    with Case.open(case_dir, create=False) as case:
        capped = data.gather(case, context.Options(user=EVE))
        total = timeline_size(case, EVE)
    (eve,) = capped.users
    assert len(eve.timeline) == 3 and eve.timeline_total == total > 3
    # the entries kept are those nearest the findings: the attack, not the quiet days before
    assert all(e.time is not None and e.time.day == 5 for e in eve.timeline)
    assert all(len(f.records) <= 1 for f in eve.findings)
    page = html.render(capped)
    assert f"Showing the 3 entries nearest to the findings out of {total}" in page
    many = next(f for f in eve.findings if len(f.finding.evidence) > 1)
    assert many.more == len(many.finding.evidence) - 1
    assert f"{many.more} more evidence rows are not shown here" in page


def test_timeline_limit_and_batch_reads(case_dir: Path) -> None:
    with Case.open(case_dir, create=False) as case:
        everything = timeline(case, EVE)
        newest = timeline(case, EVE, limit=2)
        assert newest == everything[-2:]
        refs = [RowRef.parse(e.row) for e in everything if e.source == "signin"]
        rows = case.find_rows(refs)
        assert set(rows) == set(refs) and {table for table, _ in rows.values()} == {"signins"}
        ev = case.evidence(refs[0].evidence_id)
        assert ev is not None
        path = case.evidence_dir / ev["stored_as"]
        numbers = [r.record_no for r in refs]
        batch = read_originals(path, ev["container"], ev["encoding"], numbers)
    assert [batch[n] for n in numbers] == [
        read_original(path, ev["container"], ev["encoding"], n) for n in numbers
    ]
