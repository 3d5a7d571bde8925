"""``python -m reclaim.tenantsim``: write a simulated tenant's exports, or the shipped example."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from reclaim.tenantsim import __doc__ as overview
from reclaim.tenantsim.generate import write_example, write_tenant
from reclaim.tenantsim.tenant import SimTenant


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m reclaim.tenantsim", description=(overview or "").split("\n")[0]
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--compromise", type=int, default=0, help="how many users suffer a takeover")
    parser.add_argument("--example", action="store_true", help="write the example shipped in examples/")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.example:
        written = write_example(args.folder)
    else:
        victims = SimTenant(args.users, args.days, args.seed).upns[: args.compromise]
        written = write_tenant(args.folder, args.users, args.days, args.seed, victims)
    print(f"{len(written)} files in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
