"""Attacker-controlled text (rule names, subjects, display names, user agents) shown safely.

Control characters could rewrite a terminal (ANSI escapes) or fake extra lines; bidi
overrides and zero-width characters make a name read differently from what it is. They
are replaced by visible ``<U+XXXX>`` marks, so the reader sees that they are there.
"""

from __future__ import annotations

import re

_HIDDEN = re.compile(
    "[\x00-\x1f\x7f-\x9f"  # C0 and C1 controls, newlines and tabs included
    "\u061c\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\u3164\ufeff\uffa0]"
)


def reveal(text: object) -> str:
    return _HIDDEN.sub(lambda m: f"<U+{ord(m.group()):04X}>", str(text))
