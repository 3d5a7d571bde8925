"""What a remediation plan is made of: steps, actions, their results.

An ``Action`` is one change to one object (a rule, a role, the account's sign-in), with the state
it found, the state it wants, and why. It is plain data (JSON in the journal), so that a later
``verify`` or ``rollback`` can work from the journal alone, without the plan that made it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Step ids: the playbook's R1-R7, plus what modern practice adds (PLAYBOOK.md, after the table).
STEPS: dict[str, str] = {
    "R1": "reset the password (never mailed), report app passwords and MFA registration",
    "sessions": "revoke every sign-in session and refresh token",
    "methods": "remove the MFA methods registered during the compromise",
    "R2": "remove mailbox forwarding",
    "R3": "export, then disable the suspicious inbox rules (hidden ones included)",
    "R4": "remove the mailbox from the restricted senders",
    "R5": "block sign-in and disable the mail protocols",
    "R6": "record, then remove every admin role and role-group membership",
    "R7": "list who got mail during the compromise, draft a notice, list contact changes",
    "persistence": "remove the OAuth grants and mailbox delegates that findings flag",
}
DEFAULT_STEPS = ("R1", "sessions", "R2", "R3", "R4")

# An action's plan status: what apply would do. RETRY: the step could not even be planned for a passing
# reason (throttling, an outage): it is not done, and the command and verify say so until a rerun does it.
CHANGE, ALREADY, SKIP, INFO, RETRY = "change", "already", "skip", "info", "retry"
# A result's status, as the journal and the CLI report it.
DONE, FAILED, SKIPPED = "done", "failed", "skipped"
RESULTS = (DONE, ALREADY, SKIPPED, FAILED)


def parse_steps(text: str | None) -> tuple[str, ...]:
    """``"R1,R5,sessions"`` or ``"all"`` as step ids in playbook order; ValueError names a bad one."""
    if not text:
        return DEFAULT_STEPS
    wanted = {part.strip() for part in text.split(",") if part.strip()}
    if "all" in wanted:
        return tuple(STEPS)
    by_fold = {s.casefold(): s for s in STEPS}
    unknown = sorted(w for w in wanted if w.casefold() not in by_fold)
    if unknown:
        raise ValueError(f"unknown step {', '.join(unknown)}: choose from {', '.join(STEPS)} or all")
    chosen = {by_fold[w.casefold()] for w in wanted}
    return tuple(s for s in STEPS if s in chosen)


@dataclass
class Action:
    key: str  # stable across runs: "R3:rule:<RuleIdentity>"; the journal is keyed by it
    step: str
    kind: str  # a name in reclaim.playbook.actions.KINDS
    title: str
    target: dict[str, Any]  # what it acts on (ids)
    before: dict[str, Any]  # the state found (recorded in the journal before any change)
    desired: dict[str, Any]
    status: str = CHANGE  # CHANGE, ALREADY, SKIP or RETRY (with reason), INFO (reported, nothing to apply)
    why: list[str] = field(default_factory=list)
    reason: str = ""  # for SKIP, RETRY and INFO
    lane: str = "identity"  # actions of one lane run in order; lanes run concurrently

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Action:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Result:
    key: str
    step: str
    title: str
    status: str  # DONE, ALREADY, SKIPPED, FAILED
    detail: str = ""
    hint: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Plan:
    tenant_id: str
    tenant_name: str
    upn: str
    user_id: str
    steps: tuple[str, ...]
    actions: list[Action]
    notes: list[str] = field(default_factory=list)  # what the plan could not see, and why
    window_start: str | None = None  # ISO time the compromise began, as the findings date it

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "tenant_name": self.tenant_name,
            "upn": self.upn,
            "user_id": self.user_id,
            "steps": list(self.steps),
            "window_start": self.window_start,
            "notes": self.notes,
            "actions": [a.as_dict() for a in self.actions],
        }

    @property
    def changes(self) -> list[Action]:
        return [a for a in self.actions if a.status == CHANGE]
