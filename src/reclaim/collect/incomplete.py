"""How a collector says "this is all I could get": a warning, not a failure."""

from __future__ import annotations

from reclaim.errors import ReclaimError


class Incomplete(ReclaimError):
    """Raised by a collector after its last batch when the service held records back (a search
    stopped at its record limit, say). The records already yielded are kept and count as collected;
    the runner shows the message (what is missing) and keeps it for a resumed run."""

    code = "incomplete"
