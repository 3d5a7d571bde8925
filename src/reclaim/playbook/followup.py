"""R7 in the case folder: who got mail from the account during the compromise (CSV), a notice to send
them (a draft: Reclaim never sends mail), and what else the user and the admin must check.

Subjects and addresses come from the attacker's mail: control and invisible characters are shown as
marks, and CSV cells that a spreadsheet would run as a formula are quoted."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from reclaim.case.store import safe_name
from reclaim.report.text import reveal

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def followup_dir(case_root: Path, upn: str) -> Path:
    return Path(case_root) / "remediation" / safe_name(upn)


def _cell(value: object) -> str:
    text = reveal(value)
    return "'" + text if text.startswith(_FORMULA) else text


def _write(path: Path, text: str) -> None:
    """Whole or not at all: a crash never leaves half a file for the next run to trust."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def draft(upn: str, data: dict[str, Any]) -> str:
    since = data.get("window_start") or "the start of the incident"
    lines = [
        "Subject: Please disregard recent messages sent from " + upn,
        "",
        "Hello,",
        "",
        f"The mailbox {upn} was accessed by someone else from {since} (UTC) until we secured it.",
        "Messages you received from this address in that period may not have been written by us.",
        "",
        "Please do not act on any payment request, changed bank details, link or attachment in those",
        "messages, and do not reply to them. If you already acted on one, contact us by phone on a",
        "number you already know, not one given in the message.",
        "",
        "We apologise for the inconvenience.",
        "",
        "-- draft written by Reclaim; review and send it yourself, from a mailbox you trust --",
    ]
    return "\n".join(lines) + "\n"


def checklist(upn: str, data: dict[str, Any]) -> str:
    lines = [f"Follow-up for {upn}", ""]
    sections = (
        (
            "Contact details changed during the compromise (check phone numbers and addresses)",
            "contact_changes",
        ),
        (
            "App passwords created (a password reset does not revoke them: the user must delete them)",
            "app_passwords",
        ),
        ("Remaining persistence (remove with --steps persistence)", "persistence"),
    )
    for title, key in sections:
        items = data.get(key) or []
        lines.append(title + ":")
        lines += [f"  - {reveal(item)}" for item in items] or ["  - none found"]
        lines.append("")
    lines += [
        "Also:",
        "  - other services that use this address as an alternate or recovery e-mail",
        "  - scan the user's computers and phones for malware before they sign in again",
        "  - make sure the user registers MFA again from a trusted device",
    ]
    return "\n".join(lines) + "\n"


def write_followup(case_root: Path, upn: str, data: dict[str, Any]) -> Path:
    folder = followup_dir(case_root, upn)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["address", "external", "messages", "subjects"])
    for r in data.get("recipients") or []:
        writer.writerow(
            [
                _cell(r["address"]),
                "yes" if r["external"] else "no",
                r["messages"],
                " | ".join(_cell(s) for s in r["subjects"]),
            ]
        )
    _write(folder / "recipients.csv", buffer.getvalue())
    _write(folder / "notification-draft.txt", draft(upn, data))
    _write(folder / "follow-up.txt", checklist(upn, data))
    return folder
