"""Detection rules as data: one YAML file per rule, its id the file name.

The loader checks every file completely and reports every problem as ``file:line: what``,
so that a typo never silently disables a rule. A rule's logic is one SQL query over the
normalized tables and the analysis views (see ``context.py``) returning at least
``upn, time, evidence, summary``. This module only parses: ``check.py`` compiles the user's
queries as they load, and tests/test_rules.py the built-in ones.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from reclaim.errors import RuleError

SEVERITIES = ("low", "medium", "high", "critical")
STEPS = tuple(f"R{n}" for n in range(1, 8))
_SYMPTOM = re.compile(r"^(S([1-9]|10)|I2)$")
_MITRE = re.compile(r"^T\d{4}(\.\d{3})?$")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# A query that grades its matches names a `severity` column; check.py tells for sure from the
# compiled query, and tests/test_rules.py that both agree on the built-in rules.
_GRADES = re.compile(r"\bAS\s+severity\b", re.IGNORECASE)

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML has it: 10x faster
_REQUIRED = ("title", "severity", "symptom", "mitre", "description", "remediation", "requires", "query")
_OPTIONAL = ("false_positives", "sigma")
# The Unified Audit Log's Sigma log sources (product m365): what a `sigma:` section may name.
SIGMA_SERVICES = ("audit", "exchange", "threat_management", "threat_detection")


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: str
    symptom: str  # S1-S10, or I2 for sign-in analytics
    mitre: str
    description: str
    false_positives: tuple[str, ...]
    remediation: tuple[str, ...]
    requires: tuple[str, ...]  # tables or views that must hold data ("a|b": either), else skipped
    query: str
    path: Path
    builtin: bool
    query_line: int = 1
    graded: bool = False  # the query grades each match with a `severity` column
    # the audit records the rule matches as a Sigma detection, for `reclaim rules export --sigma`
    sigma: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def is_access(self) -> bool:
        """Sign-in analytics: how the attacker got in, as opposed to what they did."""
        return self.symptom == "I2"

    def meta(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "severity": self.severity, "symptom": self.symptom,
            "mitre": self.mitre, "description": self.description,
            "false_positives": list(self.false_positives), "remediation": list(self.remediation),
            "requires": list(self.requires), "path": str(self.path), "builtin": self.builtin,
        }  # fmt: skip


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def builtin_dir() -> Path:
    return Path(str(resources.files("reclaim.detect") / "rules"))


def rule_files(paths: Iterable[Path], nested: bool = False) -> list[Path]:
    """The YAML files given, and those in the folders given (``nested``: in their subfolders
    too, as SigmaHQ lays its rules out)."""
    files: list[Path] = []
    for path in paths:
        if path.is_file():
            files.append(path)
        else:
            found = path.rglob("*") if nested else path.iterdir()
            files.extend(sorted(f for f in found if f.suffix in (".yaml", ".yml") and f.is_file()))
    return files


def parse_file(path: Path, builtin: bool = False) -> tuple[Rule | None, list[Problem]]:
    """One rule file: the rule, or every problem found in it."""
    problems: list[Problem] = []

    def bad(line: int, what: str) -> None:
        problems.append(Problem(path, line, what))

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(path, 1, f"cannot read: {exc}")]
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return None, [Problem(path, mark.line + 1 if mark else 1, f"not valid YAML: {exc}")]
    if not isinstance(node, yaml.MappingNode):
        return None, [Problem(path, 1, "a rule is a YAML mapping of keys to values")]
    rule_id = path.stem
    if not _ID.match(rule_id):
        bad(1, f"file name '{rule_id}' is no rule id: use lowercase letters, digits and dashes")
    lines: dict[str, int] = {}
    data: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        line = key_node.start_mark.line + 1
        if key in lines:
            bad(line, f"'{key}' is given twice")
        lines[key] = line
        if key not in _REQUIRED + _OPTIONAL:
            if key == "id":
                bad(line, "no 'id' key: a rule's id is its file name")
                continue
            close = difflib.get_close_matches(key, _REQUIRED + _OPTIONAL, n=1)
            bad(line, f"unknown key '{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
            continue
        data[key] = yaml.constructor.SafeConstructor().construct_object(value_node, deep=True)
    for key in _REQUIRED:
        if key not in data and key not in lines:
            bad(1, f"missing '{key}'")

    def text_of(key: str) -> str:
        value = data.get(key)
        if key in data and (not isinstance(value, str) or not value.strip()):
            bad(lines[key], f"'{key}' must be non-empty text")
            return ""
        return str(value or "").strip()

    def list_of(key: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
        value = data.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            bad(lines.get(key, 1), f"'{key}' must be a list of text")
            return ()
        for v in value:
            if allowed is not None and v not in allowed:
                bad(lines[key], f"'{key}' has '{v}', expected one of {', '.join(allowed)}")
        return tuple(value)

    title, description, query = text_of("title"), text_of("description"), text_of("query")
    severity, symptom, mitre = text_of("severity"), text_of("symptom"), text_of("mitre")
    if severity and severity not in SEVERITIES:
        bad(lines["severity"], f"severity '{severity}' is not one of {', '.join(SEVERITIES)}")
    if symptom and not _SYMPTOM.match(symptom):
        bad(lines["symptom"], f"symptom '{symptom}' is not a playbook id (S1-S10, or I2)")
    if mitre and not _MITRE.match(mitre):
        bad(lines["mitre"], f"mitre '{mitre}' is not an ATT&CK technique id such as T1564.008")
    remediation = list_of("remediation", STEPS)
    requires = list_of("requires")
    if "requires" in lines and not requires:
        bad(lines["requires"], "'requires' must name the tables the query needs ('a|b': either of them)")
    false_positives = list_of("false_positives")
    sigma = data.get("sigma")
    if "sigma" in lines:
        for what in _sigma_problems(sigma, requires):
            bad(lines["sigma"], what)
    if problems:
        return None, problems
    rule = Rule(
        rule_id, title, severity, symptom, mitre, description, false_positives, remediation,
        requires, query, path, builtin, lines["query"], bool(_GRADES.search(query)), sigma=sigma,
    )  # fmt: skip
    return rule, []


def _sigma_problems(section: Any, requires: tuple[str, ...]) -> list[str]:
    """The shape of a `sigma:` section; pySigma checks the detection itself on export (docs/rules.md)."""
    if not isinstance(section, dict) or not isinstance(section.get("detection"), dict):
        return ["'sigma' must be a mapping with a 'detection' (Sigma's selections and condition)"]
    found = [f"'sigma' has unknown key '{k}' (expected detection, service)" for k in section
             if k not in ("detection", "service")]  # fmt: skip
    if "condition" not in section["detection"]:
        found.append("'sigma' detection has no 'condition'")
    if section.get("service", "audit") not in SIGMA_SERVICES:
        found.append(f"'sigma' service must be one of {', '.join(SIGMA_SERVICES)}")
    if not any("audit" in r.split("|") for r in requires):
        found.append("'sigma' describes audit records, but the rule does not read the audit table")
    return found


def load(dirs: Iterable[Path] = (), include_builtin: bool = True) -> list[Rule]:
    """Built-in rules plus the user's, theirs compiled against the schema; RuleError lists all problems."""
    sources = ([(builtin_dir(), True)] if include_builtin else []) + [(Path(d), False) for d in dirs]
    rules: list[Rule] = []
    problems: list[Problem] = []
    seen: dict[str, Rule] = {}
    for folder, builtin in sources:
        if not folder.exists():
            problems.append(Problem(folder, 0, "no such file or folder"))
            continue
        for path in rule_files([folder]):
            rule, found = parse_file(path, builtin)
            problems.extend(found)
            if rule is None:
                continue
            if rule.id in seen:
                taken = f"rule id '{rule.id}' is already defined in {seen[rule.id].path}"
                problems.append(Problem(path, 1, taken))
                continue
            seen[rule.id] = rule
            rules.append(rule)
    mine = [r for r in rules if not r.builtin]
    if mine:
        from reclaim.detect.check import check_queries  # DuckDB and the analysis objects: for these only

        graded: set[str] = set()
        for rule, checked in zip(mine, check_queries((r.query, r.requires) for r in mine), strict=True):
            problems.extend(Problem(rule.path, rule.query_line, what) for what in checked.problems)
            if checked.graded:
                graded.add(rule.id)
        rules = [r if r.builtin else replace(r, graded=r.id in graded) for r in rules]
    if problems:
        raise RuleError(problems)
    return rules


def lint(paths: Iterable[Path]) -> list[Problem]:
    """Every problem in the rule files under ``paths`` (built-in ids count as taken)."""
    try:
        load(paths, include_builtin=True)
    except RuleError as exc:
        return exc.problems
    return []


def markdown(rules: list[Rule]) -> str:
    """docs/detections.md: the built-in rules by playbook id, made from their metadata."""
    order = {f"S{n}": n for n in range(1, 11)} | {"I2": 11}
    lines = [
        "# Built-in detections\n",
        "Made from the rule files (`src/reclaim/detect/rules/`); `reclaim rules show ID` prints one",
        "with its query. Playbook ids: `../shared/design/PLAYBOOK.md` (S = symptom, I2 = sign-in",
        "analytics); remediation steps R1-R7.\n",
        "| playbook | rule | severity | ATT&CK | what it finds | fixed by |",
        "|---|---|---|---|---|---|",
    ]
    for r in sorted(rules, key=lambda r: (order[r.symptom], r.id)):
        title = r.title.replace("|", "\\|")
        lines.append(
            f"| {r.symptom} | `{r.id}` | {r.severity} | {r.mitre} | {title} | {', '.join(r.remediation)} |"
        )
    return "\n".join(lines) + "\n"
