"""Report time and size on a large case: ``reclaim report`` over a million audit records.

The UAL export (``synth.ual_records``) is spread over few users, so that each has tens of thousands
of timeline entries and the report's cap (``report.data.TIMELINE_SHOWN`` per user) is what keeps
the page small. Sign-ins are Graph pages for the same users. Inputs are cached under bench/data/.
    python bench/report_bench.py --records 1000000 --users 20
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from reclaim import investigation
from reclaim.case.store import Case
from reclaim.detect import context
from reclaim.ingest.pipeline import ingest_paths
from reclaim.report import data, html, markdown
from reclaim.tenantsim import synth

DATA = Path(__file__).parent / "data"
PAGE = 1000


def _inputs(records: int, users: int, signins: int) -> list[Path]:
    DATA.mkdir(exist_ok=True)
    ual = DATA / f"ual-{records}-u{users}.ndjson"
    if not ual.exists():
        partial = ual.with_suffix(".partial")
        synth.write_ndjson(partial, synth.ual_records(records, synth.Tenant(users=users, seed=1)))
        partial.rename(ual)
    pages = DATA / f"report-signins-{signins}-u{users}"
    if not pages.exists():
        partial_dir = pages.with_suffix(".partial")
        partial_dir.mkdir(exist_ok=True)
        tenant = synth.Tenant(users=users, seed=1)
        for n in range(0, signins, PAGE):
            page = synth.graph_signin_page(min(PAGE, signins - n), tenant)
            (partial_dir / f"signins-{n // PAGE:04d}.json").write_text(json.dumps(page))
        partial_dir.rename(pages)
    return [ual, pages]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--signins", type=int, default=20_000)
    args = parser.parse_args()
    inputs = _inputs(args.records, args.users, args.signins)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        with Case.open(Path(tmp) / "case") as case:
            assert ingest_paths(case, inputs).complete
            print(f"ingest: {time.perf_counter() - started:.1f} s")
            ruleset = investigation.load_rules()
            upn = synth.Tenant(users=args.users, seed=1).upns[0]
            runs = (("whole case", context.Options()), (f"--user {upn}", context.Options(user=upn)))
            for label, options in runs:
                started = time.perf_counter()
                report = data.gather(case, options, "bench", ruleset)
                gathered = time.perf_counter() - started
                started = time.perf_counter()
                page = html.render(report)
                rendered = time.perf_counter() - started
                md = markdown.render(report)
                entries = sum(len(u.timeline) for u in report.users)
                total = sum(u.timeline_total for u in report.users)
                print(
                    f"{label}: {len(report.verdicts)} users, {len(report.users)} with a section; gather "
                    f"{gathered:.1f} s, HTML {rendered:.2f} s; HTML {len(page.encode()) / 1e6:.1f} MB, "
                    f"Markdown {len(md.encode()) / 1e3:.0f} KB; timeline entries shown {entries:,} "
                    f"of {total:,}"
                )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
