"""Attacker-controlled text (rule names, subjects, display names, user agents) shown safely.

Control characters could rewrite a terminal (ANSI escapes) or fake extra lines; bidi
overrides and zero-width characters make a name read differently from what it is. They
are replaced by visible ``<U+XXXX>`` marks, so the reader sees that they are there.
"""

from __future__ import annotations

import html
import re

_HIDDEN = re.compile(
    "[\x00-\x1f\x7f-\x9f"  # C0 and C1 controls, newlines and tabs included
    "\u061c\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\u3164\ufeff\uffa0]"
)


def reveal(text: object) -> str:
    return _HIDDEN.sub(lambda m: f"<U+{ord(m.group()):04X}>", str(text))


def html_text(text: object) -> str:
    """Text for HTML content and attribute values alike: escaped, hidden characters shown."""
    return html.escape(reveal("" if text is None else text), quote=True)


# What could start markup inside a line (a link, emphasis, code, a table cell, HTML). Line-start
# markup (#, +, -) cannot occur: hidden characters, newlines included, are shown as <U+XXXX>.
_MARKDOWN = re.compile(r"([\\`*_\[\]<>|~])")
_URL = re.compile(r"(?i)\bhttp(s?)://")
_WWW = re.compile(r"(?i)\b(www)\.")


def markdown_text(text: object) -> str:
    """Text for Markdown (a ticket): nothing in it becomes markup, a link or HTML.

    URLs are defanged as incident notes do (``hxxps://``, ``www[.]``), since a Markdown renderer
    turns a bare URL into a link whatever the escaping.
    """
    shown = reveal("" if text is None else text).replace("&", "&amp;")
    shown = _WWW.sub(r"\1[.]", _URL.sub(r"hxxp\1://", shown))
    return _MARKDOWN.sub(r"\\\1", shown)
