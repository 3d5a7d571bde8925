"""The investigation (I1-I3): rules loaded, run over a case, a dataset or Spark, and every user judged.

Every front end gets its verdicts here: ``reclaim investigate``, ``reclaim fleet``, the demo, the
report, the web UI and remediation's facts. ``Kept`` holds investigations for a front end that asks
again and again (the web UI), keyed on the case's evidence so that new evidence is judged anew.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from reclaim.detect import context, engine, identity, links, rules, verdict
from reclaim.errors import UsageError

if TYPE_CHECKING:
    import duckdb

    from reclaim.case.store import Case


@dataclass(frozen=True)
class RuleSet:
    """The rules to run, and those (Sigma's) that cannot run, each with why."""

    rules: list[rules.Rule]
    skipped: list[engine.Skipped] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rules)


def load_rules(rule_dirs: Iterable[Path] = (), sigma_dirs: Iterable[Path] = ()) -> RuleSet:
    """The built-in rules, the user's (a broken file is a RuleError listing every problem) and
    Sigma rules (one that cannot run is skipped with its file and why; pySigma loads only if asked)."""
    loaded = rules.load(rule_dirs)
    sigma_dirs = tuple(sigma_dirs)
    if not sigma_dirs:
        return RuleSet(loaded)
    from reclaim.detect import sigma

    found = sigma.load(sigma_dirs)
    return RuleSet(loaded + found.rules, list(found.skipped))


@dataclass(frozen=True)
class Investigation:
    analysis: engine.Analysis  # the findings about users and the tenant
    verdicts: list[verdict.UserVerdict]  # riskiest first
    # findings about names that are no user: service actors, names no evidence resolves
    not_users: list[identity.NotAUser] = field(default_factory=list)
    # what the compromises left behind, and those brought with --indicators, each with who shows it
    indicators: list[links.Indicator] = field(default_factory=list)

    def verdict_of(self, upn: str) -> verdict.UserVerdict | None:
        upn = upn.lower()
        return next((v for v in self.verdicts if v.upn == upn), None)


Connect = Callable[[], AbstractContextManager["duckdb.DuckDBPyConnection"]]


def _judged(
    analysis: engine.Analysis,
    ruleset: RuleSet,
    options: context.Options | None,
    given: Sequence[links.Indicator],
    connect: Connect,
) -> Investigation:
    """The verdicts, with the attacker links (detect/links.py) of the whole case: a user is judged
    with what another's compromise left behind, so ``options.user`` only narrows what is returned."""
    analysis.skipped.extend(ruleset.skipped)  # nobody was checked for these: clean users say so
    not_users = identity.set_apart(analysis)  # never judged as users
    judged = verdict.verdicts(analysis)
    indicators: list[links.Indicator] = []
    if given or any(v.verdict == "compromised" for v in judged):
        with connect() as con:  # one query per kind of indicator over the case, not per user
            indicators = links.attributed(con, judged) + [replace(i, linked=[]) for i in given]
            linked = links.link(con, indicators)
        if linked:
            analysis.findings.extend(linked)
            judged = verdict.verdicts(analysis)  # a link counts like any finding: judged again
    found = Investigation(analysis, judged, not_users, indicators)
    return _of_user(found, options.user) if options and options.user else found


def _of_user(found: Investigation, upn: str) -> Investigation:
    """What the investigation of the case says about ``upn``: as an investigation run for that user."""
    upn = upn.lower()
    a = found.analysis
    mine = [f for f in a.findings if f.upn == upn]
    analysis = replace(a, findings=mine, coverage={u: c for u, c in a.coverage.items() if u == upn})
    indicators = [i for i in found.indicators if upn in i.sources or upn in i.linked]
    return Investigation(analysis, [v for v in found.verdicts if v.upn == upn], [], indicators)


def _everyone(options: context.Options | None) -> context.Options:
    return replace(options or context.Options(), user=None)


def run(
    con: duckdb.DuckDBPyConnection,
    options: context.Options | None = None,
    ruleset: RuleSet | None = None,
    progress: engine.Progress | None = None,
    indicators: Sequence[links.Indicator] = (),
) -> Investigation:
    """Every rule (the built-in ones unless ``ruleset``) over the case or dataset ``con`` holds;
    ``indicators`` brought from elsewhere (investigate --indicators) are looked for too."""
    ruleset = load_rules() if ruleset is None else ruleset
    analysis = engine.run(con, ruleset.rules, _everyone(options), progress)
    return _judged(analysis, ruleset, options, indicators, lambda: nullcontext(con))


def run_spark(
    dataset: Path,
    ruleset: RuleSet,
    options: context.Options | None = None,
    master: str | None = None,
    remote: str | None = None,
    progress: engine.Progress | None = None,
    indicators: Sequence[links.Indicator] = (),
) -> Investigation:
    """The rules on Apache Spark over a Parquet dataset (local ``master``, or Spark Connect ``remote``);
    the attacker links on DuckDB over the same dataset, as ``investigate --dataset`` makes them."""
    from reclaim.detect import spark

    why = spark.java_missing(remote=bool(remote))
    if why:
        raise UsageError(f"--engine spark cannot start: {why}", hint="install Java 17 and reclaim[spark]")
    session = spark.session(master or "local[*]", remote)
    try:
        analysis = spark.run(session, dataset, ruleset.rules, _everyone(options), progress)
    finally:
        session.stop()
    return _judged(analysis, ruleset, options, indicators, lambda: _attached(dataset, options))


@contextmanager
def _attached(dataset: Path, options: context.Options | None) -> Iterator[duckdb.DuckDBPyConnection]:
    from reclaim.case import dataset as datasets

    with datasets.attach(dataset) as con:
        context.prepare(con, _everyone(options))
        yield con


_EVIDENCE_KEY = """
SELECT md5(coalesce(string_agg(concat_ws(',', evidence_id, status, records, rejected), ';'
ORDER BY evidence_id), '')) FROM evidence
"""


def evidence_key(con: duckdb.DuckDBPyConnection) -> str:
    """A fingerprint of what the case holds: it changes when evidence is added or finishes loading."""
    row = con.execute(_EVIDENCE_KEY).fetchone()
    return str(row[0]) if row else ""


@dataclass
class Kept:
    """Investigations by (case folder, evidence fingerprint), the oldest dropped beyond ``size``:
    every rule over a large case takes seconds, and the same pages are visited again and again. A
    user's is read off the case's (a user is judged with the whole case anyway: attacker links).
    What remediation did is not in them (the report reads the journal anew). Not thread-safe: the
    caller serialises its calls."""

    size: int = 64
    _kept: OrderedDict[tuple[Path, str], Investigation] = field(default_factory=OrderedDict, repr=False)

    def get(self, case: Case, user: str | None = None) -> Investigation:
        key = (case.root.resolve(), evidence_key(case.con))
        found = self._kept.get(key)
        if found is None:
            found = run(case.con, context.Options())
            while len(self._kept) >= self.size:
                self._kept.popitem(last=False)
            self._kept[key] = found
        return _of_user(found, user) if user else found
