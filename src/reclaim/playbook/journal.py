"""``journal.jsonl`` in the case: every change's before-state, written and flushed before the change,
and its typed result after. A rerun reads it to resume; ``rollback`` restores from it.

One JSON object per line; a line cut short by a crash is ignored (and reported), never fatal. Secrets
never get here: actions carry no password, and ``append`` refuses a record with a key that names one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from reclaim.playbook.model import ALREADY, DONE, FAILED, Action

JOURNAL = "journal.jsonl"
VERSION = 1
# Keys that would hold a secret if a bug ever put one in an action: refused, not written.
_FORBIDDEN = frozenset(
    {"password", "newpassword", "secret", "clientsecret", "accesstoken", "refreshtoken", "token"}
)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Entry:
    line: int
    data: dict[str, Any]

    @property
    def key(self) -> str:
        return str(self.data.get("key") or "")

    @property
    def op(self) -> str:
        return str(self.data.get("op") or "")

    @property
    def phase(self) -> str:
        return str(self.data.get("phase") or "")

    @property
    def status(self) -> str:
        return str(self.data.get("status") or "")

    @property
    def upn(self) -> str:
        return str(self.data.get("upn") or "")

    @property
    def time(self) -> datetime | None:
        try:
            return datetime.fromisoformat(str(self.data.get("time")).replace("Z", "+00:00"))
        except ValueError:
            return None


def _check_no_secret(node: Any, where: str = "") -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if str(key).lower().replace("_", "") in _FORBIDDEN and value not in (None, "", False):
                raise ValueError(f"refusing to journal {where}{key}: it may hold a secret")
            _check_no_secret(value, f"{where}{key}.")
    elif isinstance(node, list):
        for item in node:
            _check_no_secret(item, where)


class Journal:
    """Append-only; each record is flushed and fsynced before ``append`` returns."""

    def __init__(self, case_root: Path) -> None:
        self.path = Path(case_root) / JOURNAL
        self.run = str(uuid.uuid4())
        self.damaged: list[int] = []  # line numbers that were not JSON (a crash mid-write)

    def entries(self) -> list[Entry]:
        found: list[Entry] = []
        self.damaged = []
        if not self.path.exists():
            return found
        with self.path.open("rb") as f:
            for number, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                try:
                    data = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    self.damaged.append(number)
                    continue
                if isinstance(data, dict):
                    found.append(Entry(number, data))
        return found

    def append(self, record: dict[str, Any]) -> None:
        _check_no_secret(record)
        line = orjson.dumps({"v": VERSION, "time": now_iso(), "run": self.run, **record}) + b"\n"
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            # a crash may have cut the last line: start on a fresh one, so one torn record never
            # swallows the next
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def before(self, op: str, upn: str, action: Action, tenant_id: str) -> None:
        self.append({"op": op, "phase": "before", "tenant": tenant_id, "upn": upn, **action.as_dict()})

    def result(
        self, op: str, upn: str, action: Action, tenant_id: str, status: str, detail: str = "", hint: str = ""
    ) -> None:
        """The outcome, with the action itself: verify and rollback work from these records alone."""
        self.append(
            {
                "op": op,
                "phase": "result",
                "tenant": tenant_id,
                "upn": upn,
                **action.as_dict(),
                "status": status,
                "detail": detail,
                "hint": hint,
            }
        )

    # -- what earlier runs did ------------------------------------------------------------------
    def applied(self, upn: str) -> dict[str, Action]:
        """Per key, the action as an apply run first changed it: its before-state is the original."""
        found: dict[str, Action] = {}
        for e in self.entries():
            if e.op == "apply" and e.phase == "result" and e.upn == upn and e.status == DONE:
                found.setdefault(e.key, Action.from_dict(e.data))
        return found

    def interrupted(self, upn: str) -> dict[str, tuple[Action, datetime | None]]:
        """Actions whose before-state was written but whose result never was (a crash or a kill in
        between), with when that was: the change may or may not have been made."""
        pending: dict[str, tuple[Action, datetime | None]] = {}
        for e in self.entries():
            if e.op != "apply" or e.upn != upn:
                continue
            if e.phase == "before":
                pending.setdefault(e.key, (Action.from_dict(e.data), e.time))
            elif e.phase == "result":
                pending.pop(e.key, None)
        return pending

    def settled(self, upn: str) -> dict[str, Entry]:
        """Per key, the last apply result that left it in the desired state (done or already), unless
        a rollback restored it since."""
        last: dict[str, Entry] = {}
        for e in self.entries():
            if e.phase != "result" or e.upn != upn:
                continue
            if e.op == "apply" and e.status in (DONE, ALREADY):
                last[e.key] = e
            elif e.op == "rollback" and e.status == DONE:
                last.pop(e.key, None)
        return last

    def not_done(self, upn: str) -> dict[str, Entry]:
        """Per key, the apply result that failed, when no later apply settled it: what remediation
        still owes (a step throttled past its wait, refused, or not plannable)."""
        owed: dict[str, Entry] = {}
        for e in self.entries():
            if e.op != "apply" or e.phase != "result" or e.upn != upn:
                continue
            if e.status == FAILED:
                owed[e.key] = e
            elif e.status in (DONE, ALREADY):
                owed.pop(e.key, None)
        return owed

    def last_done(self, upn: str, kind: str) -> int:
        """The journal line of the last change of ``kind`` an apply made for ``upn`` (0: none): the
        order of a password reset and a session revocation is read from here."""
        lines = [
            e.line
            for e in self.entries()
            if e.op == "apply" and e.phase == "result" and e.upn == upn and e.status == DONE
            and e.data.get("kind") == kind
        ]  # fmt: skip
        return max(lines, default=0)

    def restored(self, upn: str) -> dict[str, Entry]:
        """Per key, the rollback that restored it after its last change (a later apply resets it)."""
        state: dict[str, Entry] = {}
        for e in self.entries():
            if e.upn != upn or e.phase != "result":
                continue
            if e.op == "rollback" and e.status in (DONE, ALREADY):
                state[e.key] = e
            elif e.op == "apply" and e.status == DONE:
                state.pop(e.key, None)
        return state

    def users(self) -> list[str]:
        return sorted({e.upn for e in self.entries() if e.upn})

    def tenant_of(self, upn: str) -> str | None:
        for e in self.entries():
            if e.upn == upn and e.data.get("tenant"):
                return str(e.data["tenant"])
        return None

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries())
