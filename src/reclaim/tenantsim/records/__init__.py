"""Record shapes, one module per export format: the fields and values Microsoft writes, filled
from what the simulation decided (``entra``: Graph sign-ins and directory audits; ``ual``: the
Unified Audit Log's AuditData; ``exchange``: Exchange Online's state as ConvertTo-Json writes it).

A builder draws from the ``rng`` it is given in the order the fields appear, so a seed gives the
same bytes whoever calls it.
"""

from __future__ import annotations

import random
import time


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))


def guid(rng: random.Random) -> str:
    """A random (version 4) GUID; formatted by hand, uuid.UUID is slow for half a million."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"
