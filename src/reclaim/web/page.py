"""HTML for the UI's own pages: Jinja2 templates in ``templates/`` (autoescaped, every value from a case
through the ``reveal`` filter; see ``reclaim.report.templating``), one stylesheet allowed by its hash, no
script."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from reclaim.report import templating

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1d2430;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1rem;align-items:baseline}
header a{color:#fff;text-decoration:none;font-weight:600}
main{padding:1rem 1.2rem;max-width:1200px}
table{border-collapse:collapse;width:100%;background:#fff;margin:.6rem 0}
th,td{border-bottom:1px solid #e2e5ea;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#eef0f3;font-weight:600}
.compromised,.failed,.false{color:#b3261e;font-weight:600}
.suspicious,.change{color:#a15c00;font-weight:600}
.clean,.done,.true,.already{color:#1e7b34}
.skip,.skipped,.info,.inconclusive,.none{color:#5b6472}
form{margin:.8rem 0;padding:.8rem;background:#fff;border:1px solid #e2e5ea}
fieldset{border:0;padding:0;margin:.3rem 0}
label{margin-right:1rem}
button{font:inherit;padding:.35rem .9rem;border:1px solid #1d2430;background:#1d2430;color:#fff}
button.danger{background:#b3261e;border-color:#b3261e}
.note{color:#5b6472}
code{font-size:90%}
"""
CSP = (
    f"default-src 'none'; style-src {templating.sha256_source(STYLE)}; img-src data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def page(template: str, title: str, crumbs: Iterable[tuple[str, str]] = (), **context: Any) -> str:
    """The page ``template`` (one that extends ``page.html.j2``) under ``title``, with a trail of
    (address, text) links to where it lies."""
    return templating.render(
        "reclaim.web", template, title=title, crumbs=list(crumbs), style=templating.markup(STYLE), **context
    )


def message(title: str, text: object, *, failed: bool = False, hint: str | None = None) -> str:
    """A page of one sentence (``failed``: shown as a failure, with its ``hint``)."""
    return page("message.html.j2", title, text=text, failed=failed, hint=hint)
