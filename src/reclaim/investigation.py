"""The investigation (I1-I3): rules loaded, run over a case, a dataset or Spark, and every user judged.

Every front end gets its verdicts here: ``reclaim investigate``, ``reclaim fleet``, the demo, the
report, the web UI and remediation's facts. ``Kept`` holds investigations for a front end that asks
again and again (the web UI), keyed on the case's evidence so that new evidence is judged anew.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from reclaim.detect import context, engine, rules, verdict
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
    analysis: engine.Analysis
    verdicts: list[verdict.UserVerdict]  # riskiest first

    def verdict_of(self, upn: str) -> verdict.UserVerdict | None:
        upn = upn.lower()
        return next((v for v in self.verdicts if v.upn == upn), None)


def _judged(analysis: engine.Analysis, ruleset: RuleSet) -> Investigation:
    analysis.skipped.extend(ruleset.skipped)  # nobody was checked for these: clean users say so
    return Investigation(analysis, verdict.verdicts(analysis))


def run(
    con: duckdb.DuckDBPyConnection,
    options: context.Options | None = None,
    ruleset: RuleSet | None = None,
    progress: engine.Progress | None = None,
) -> Investigation:
    """Every rule (the built-in ones unless ``ruleset``) over the case or dataset ``con`` holds."""
    ruleset = load_rules() if ruleset is None else ruleset
    return _judged(engine.run(con, ruleset.rules, options, progress), ruleset)


def run_spark(
    dataset: Path,
    ruleset: RuleSet,
    options: context.Options | None = None,
    master: str | None = None,
    remote: str | None = None,
    progress: engine.Progress | None = None,
) -> Investigation:
    """The rules on Apache Spark over a Parquet dataset (local ``master``, or Spark Connect ``remote``)."""
    from reclaim.detect import spark

    why = spark.java_missing(remote=bool(remote))
    if why:
        raise UsageError(f"--engine spark cannot start: {why}", hint="install Java 17 and reclaim[spark]")
    session = spark.session(master or "local[*]", remote)
    try:
        return _judged(spark.run(session, dataset, ruleset.rules, options, progress), ruleset)
    finally:
        session.stop()


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
    """Investigations by (case folder, user or None, evidence fingerprint), the oldest dropped
    beyond ``size``: every rule over a large case takes seconds, and the same pages are visited again
    and again. What remediation did is not in them (the report reads the journal anew). Not
    thread-safe: the caller serialises its calls."""

    size: int = 64
    _kept: OrderedDict[tuple[Path, str | None, str], Investigation] = field(
        default_factory=OrderedDict, repr=False
    )

    def get(self, case: Case, user: str | None = None) -> Investigation:
        key = (case.root.resolve(), user.lower() if user else None, evidence_key(case.con))
        found = self._kept.get(key)
        if found is None:
            found = run(case.con, context.Options(user=user))
            while len(self._kept) >= self.size:
                self._kept.popitem(last=False)
            self._kept[key] = found
        return found
