"""Options that several commands share, defined once so that their names and help agree."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from reclaim.cli.common import SHOWN_CHARS
from reclaim.ingest.sources import Inputs

rules_option = click.option(
    "--rules", "rule_dirs", multiple=True, type=click.Path(path_type=Path, exists=True),
    help="A folder (or file) of your own rules, added to the built-in ones. Repeatable.",
)  # fmt: skip

sigma_option = click.option(
    "--sigma", "sigma_dirs", multiple=True, type=click.Path(path_type=Path, exists=True),
    help="A folder (or file) of Sigma rules (such as SigmaHQ's rules/cloud/m365) to run on the audit log "
    "too; a rule that cannot run is listed as skipped, with its file and why. Repeatable.",
)  # fmt: skip

internal_domain_option = click.option(
    "--internal-domain", "domains", multiple=True,
    help="A domain of the tenant (beside those found in the data): forwarding there is internal. Repeatable.",
)  # fmt: skip

def _read_indicators(ctx: click.Context, param: click.Parameter, value: Path | None) -> Any:
    """The file's indicators (reclaim.indicators.Brought), read as the options are: a bad file stops
    the command before any work."""
    if value is None:
        return None
    from reclaim import indicators

    return indicators.read(value)


indicators_option = click.option(
    "--indicators", "brought", type=click.Path(path_type=Path, dir_okay=False, exists=True),
    callback=_read_indicators,
    help="Indicators from elsewhere (a STIX 2.1 bundle or CSV from reclaim indicators, or a list of IP "
    "addresses, networks and e-mail addresses, one a line): every user who shows one gets a finding.",
)  # fmt: skip

full_option = click.option(
    "--full", is_flag=True, help=f"Print values longer than {SHOWN_CHARS} characters whole, not cut."
)


date_order_option = click.option(
    "--date-order",
    type=click.Choice(["mdy", "dmy"]),
    help="Order of slash dates such as 03/04/2021 when the data cannot tell (mdy = US).",
)

_SIZE_UNITS = {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}


def _expansion_limits(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, int]:
    """``Inputs`` fields: {"max_ratio": 200} for 200x; {"max_size": bytes} for 64G, 500M, 1T or bytes."""
    limits = {}
    for value in values:
        text = value.strip().upper().removesuffix("B").removesuffix("I")  # 64G, 64GB, 64GiB
        if text.endswith("X"):
            kind, number, shift = "max_ratio", text[:-1], 0
        else:
            unit = text[-1:] if text[-1:] in _SIZE_UNITS else ""
            kind, number, shift = "max_size", text.removesuffix(unit), _SIZE_UNITS[unit]
        try:
            limit = int(float(number) * (1 << shift))
        except ValueError:
            limit = 0
        if limit < 1:
            raise click.BadParameter(f"'{value}' is neither a size such as 64G nor a ratio such as 100x")
        limits[kind] = limit
    return limits


def input_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options that bound what an ingest reads, handed over as ``inputs``."""

    @functools.wraps(command)
    def run(*args: Any, max_expand: dict[str, int], follow_symlinks: bool, **kwargs: Any) -> Any:
        return command(*args, inputs=Inputs(follow_symlinks=follow_symlinks, **max_expand), **kwargs)

    defaults = Inputs()
    run = click.option(
        "--max-expand", multiple=True, metavar="SIZE|RATIOx", callback=_expansion_limits,
        help=f"Refuse a .zip or .gz that expands past this: a size per file (default "
        f"{defaults.max_size >> 30}G) or a ratio to its compressed size (default {defaults.max_ratio}x); "
        "repeat to set both. Decompression bombs stop there, before they fill the disk.",
    )(run)  # fmt: skip
    return click.option(
        "--follow-symlinks", is_flag=True,
        help="Read what symbolic links inside input folders point to (without it they are listed, not read).",
    )(run)  # fmt: skip


def parse_time(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(f"'{value}' is not a date such as 2026-11-01 or 2026-11-01T08:00") from exc
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed
