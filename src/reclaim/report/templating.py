"""HTML from Jinja2 templates, for the report and the web UI alike.

Autoescaping is on and an undefined name is an error. The ``reveal`` filter is ``html_text``: it
escapes and shows hidden characters (control, bidi, zero-width) as ``<U+XXXX>``, so every value from a
case goes through it; a value that is markup on purpose (our own SVG, stylesheet, script) is passed
in as ``markup(text)``. ``sha256_source`` is the Content-Security-Policy hash of inline code.

A package's templates are in its ``templates/`` folder. They are written over many lines for reading,
and the loader joins them: a line break and the indentation after it are dropped, so a page is the
one line it always was. A break therefore goes only where no space is wanted: between tags, or next
to a ``{% ... %}`` tag, never inside a tag or a sentence (and no tag spans two lines).

Jinja2 is imported on the first page rendered, not with this module (``reclaim --help`` stays light).
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache, partial
from importlib import resources
from typing import TYPE_CHECKING, Any

from reclaim.report.text import html_text

if TYPE_CHECKING:
    import jinja2
    from markupsafe import Markup

_LINE_BREAK = re.compile(r"\n[ \t]*")


def sha256_source(text: str) -> str:
    """A CSP hash source (``'sha256-...'``) for an inline script or style element's exact text."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def render(package: str, name: str, **context: Any) -> str:
    """The template ``name`` of ``package`` (from its ``templates/`` folder) filled with ``context``."""
    return environment(package).get_template(name).render(context)


@cache
def environment(package: str) -> jinja2.Environment:
    """The one environment of ``package``'s templates, made on first use."""
    import jinja2

    def reveal(value: object) -> Markup:
        """``value`` escaped, hidden characters shown (None is empty)."""
        return markup(html_text(value))

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(partial(_source, package)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["reveal"] = reveal
    return env


def markup(text: str) -> Markup:
    """``text`` put in a page as it is: only for markup made on purpose (our own SVG, stylesheet and
    script, escaped text), never for a value from a case."""
    from markupsafe import Markup

    return Markup(text)  # noqa: S704 (the callers' own markup)


def _source(package: str, name: str) -> tuple[str, str, None] | None:
    path = resources.files(package) / "templates" / name
    if not path.is_file():
        return None
    return _LINE_BREAK.sub("", path.read_text(encoding="utf-8")), str(path), None
