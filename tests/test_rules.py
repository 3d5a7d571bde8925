"""Every rule against its positive and negative fixture, and the checks on the built-in queries.

A fixture is ``tests/rules/<rule id>/match.yaml`` or ``nomatch.yaml``::

    user: eve@contoso.example         # match only: whose finding it must be (null: the tenant's)
    count: 3                          # match only, optional: how many records must match
    summaries: [...]                  # match only, optional: words some match's summary must say
    internal_domains: [contoso.example]  # optional
    files:                            # written to a folder and ingested by the real parsers
      ual.json: [ {...}, ... ]        # YAML data is written as JSON
      trace.csv: |                    # text is written as it stands
        Received,SenderAddress,...
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from reclaim.case.store import Case
from reclaim.detect import check, context, engine, rules
from reclaim.ingest.pipeline import ingest_paths

FIXTURES = Path(__file__).parent / "rules"
BUILTIN = {r.id: r for r in rules.load()}


def fixture_case(fixture: Path, tmp_path: Path) -> tuple[Case, dict, context.Options]:
    """The fixture's files ingested by the real parsers into a new case; its spec and options."""
    spec = yaml.safe_load(fixture.read_text(encoding="utf-8"))
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name, content in spec["files"].items():
        text = content if isinstance(content, str) else json.dumps(content)
        (inputs / name).write_text(text, encoding="utf-8")
    case = Case.open(tmp_path / "case")
    report = ingest_paths(case, [inputs])
    assert report.complete, report.files
    return case, spec, context.Options(internal_domains=tuple(spec.get("internal_domains", ())))


def _run_fixture(rule: rules.Rule, fixture: Path, tmp_path: Path) -> tuple[engine.Analysis, dict]:
    case, spec, options = fixture_case(fixture, tmp_path)
    with case:
        return engine.run(case.con, [rule], options), spec


@pytest.mark.parametrize("rule_id", sorted(BUILTIN))
def test_rule_has_both_fixtures(rule_id: str) -> None:
    for kind in ("match", "nomatch"):
        assert (FIXTURES / rule_id / f"{kind}.yaml").is_file(), f"tests/rules/{rule_id}/{kind}.yaml is missing"


@pytest.mark.parametrize(
    ("rule_id", "kind"), [(r, k) for r in sorted(BUILTIN) for k in ("match", "nomatch")]
)
def test_rule_fixture(rule_id: str, kind: str, tmp_path: Path) -> None:
    fixture = FIXTURES / rule_id / f"{kind}.yaml"
    if not fixture.is_file():
        pytest.fail(f"{fixture} is missing")
    analysis, spec = _run_fixture(BUILTIN[rule_id], fixture, tmp_path)
    assert not analysis.skipped, f"the rule did not run: {analysis.skipped[0].reason}"
    if kind == "match":
        assert analysis.findings, "the positive fixture raised nothing"
        if "user" in spec:
            assert spec["user"] in {f.upn for f in analysis.findings}
        assert all(f.evidence for f in analysis.findings), "a finding without evidence rows"
        if "count" in spec:
            assert sum(f.count for f in analysis.findings) == spec["count"], [f.summary for f in analysis.findings]
        said = [h.summary for f in analysis.findings for h in f.hits]
        for text in spec.get("summaries", []):  # words a match's summary must say
            assert any(text in s for s in said), (text, said)
    else:
        assert not analysis.findings, f"the negative fixture raised: {analysis.findings[0].summary}"


def test_fixture_folders_name_existing_rules() -> None:
    stray = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir() and p.name not in BUILTIN)
    assert not stray, f"fixtures for unknown rules: {stray}"


def test_builtin_queries_compile_against_the_empty_schema() -> None:
    """The check every user rule gets when it loads; a built-in rule's `graded`, read from its
    query's text when it loads, must be what the compiled query says."""
    found = check.check_queries((r.query, r.requires) for r in BUILTIN.values())
    checked = dict(zip(BUILTIN, found, strict=True))
    assert {rid: c.problems for rid, c in checked.items() if c.problems} == {}
    assert {rid for rid, c in checked.items() if c.graded} == {rid for rid, r in BUILTIN.items() if r.graded}
