"""HTML for the UI's own pages: one escaping helper, one stylesheet allowed by its hash, no script."""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable

from reclaim.report.text import reveal

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
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; style-src '{STYLE_HASH}'; img-src data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def esc(value: object) -> str:
    """Text for HTML content and attributes: invisible characters shown, markup escaped."""
    return html.escape(reveal("" if value is None else value), quote=True)


def page(title: str, body: str, crumbs: Iterable[tuple[str, str]] = ()) -> str:
    trail = " › ".join(f'<a href="{esc(href)}">{esc(text)}</a>' for href, text in crumbs)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{esc(title)} · Reclaim</title><style>{STYLE}</style></head><body>"
        f'<header><a href="/">Reclaim</a><span>{trail}</span></header>'
        f"<main><h1>{esc(title)}</h1>{body}</main></body></html>"
    )


def table(head: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    """``rows`` hold HTML already escaped by the caller."""
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def status(value: object) -> str:
    return f'<span class="{esc(str(value).lower())}">{esc(value)}</span>'
