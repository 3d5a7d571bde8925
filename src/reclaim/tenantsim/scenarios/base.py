"""What a scenario is, for the registry in ``scenarios/__init__.py``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reclaim.tenantsim.people import User
    from reclaim.tenantsim.writer import Writer

Step = Callable[["Writer", "User"], None]


@dataclass(frozen=True)
class Scenario:
    """A named story planted on chosen users before their ordinary days are written.

    ``run`` adds its records (any day of the window) and may change the user's rules and mailbox,
    which the Exchange state then shows. ``prepare``, when there is one, runs for every scenario's
    users before any ``run``: for a change of the user's plans (where they are, which days) that
    the other scenarios and the ordinary days must follow.
    """

    name: str
    description: str  # for ``--scenario`` help and errors
    run: Step
    compromising: bool = True  # its users are taken over: the lab's ground truth
    prepare: Step | None = None
