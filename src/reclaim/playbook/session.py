"""One remediation session for one user: plan, guard rails, apply, verify, roll back. The CLI and the
web UI call these; they hold no logic of their own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from reclaim.case.store import Case
from reclaim.errors import ReclaimError, Refused
from reclaim.playbook import executor, facts, planner
from reclaim.playbook.actions import Context
from reclaim.playbook.executor import Check, Hook
from reclaim.playbook.journal import Journal
from reclaim.playbook.model import Plan, Result
from reclaim.playbook.state import UserState, parts_for, read_state
from reclaim.tenant.client import TenantClient


@dataclass
class Guard:
    break_glass: tuple[str, ...] = ()  # UPNs never to act on without force (config: break_glass)
    operator: str | None = None  # the signed-in admin (delegated sign-in), never to lock out
    force: bool = False


@dataclass
class Session:
    client: TenantClient
    case: Case
    upn: str
    deliver_password: Callable[[str, str], None] = field(default=lambda upn, password: None)

    def __post_init__(self) -> None:
        self.upn = self.upn.strip().lower()
        self.journal = Journal(self.case.root)

    def context(self, user_id: str) -> Context:
        return Context(self.client, self.upn, user_id, self.case.root, self.deliver_password)

    async def plan(
        self, steps: tuple[str, ...], since: datetime | None = None, internal_domains: tuple[str, ...] = ()
    ) -> tuple[Plan, UserState]:
        state = await read_state(self.client, self.upn, parts_for(steps))
        known = facts.gather(self.case, self.upn, internal_domains, since)
        return planner.build(state, known, steps, self.case.root), state

    async def apply(self, plan: Plan, state: UserState, hook: Hook | None = None) -> list[Result]:
        return await executor.apply(self.context(plan.user_id), plan, state, self.journal, hook)

    async def verify(self) -> list[Check]:
        user_id = await self._user_id()
        return await executor.verify(self.context(user_id), self.journal)

    async def rollback(
        self, steps: tuple[str, ...] | None = None, include: tuple[str, ...] = ()
    ) -> list[Result]:
        user_id = await self._user_id()
        tenant = self.journal.tenant_of(self.upn) or self.client.tenant_id
        return await executor.rollback(self.context(user_id), self.journal, tenant, steps, include)

    async def _user_id(self) -> str:
        """The user's object id, once the journal and the tenant are known to match."""
        known = self.journal.users()
        if self.upn not in known:
            raise ReclaimError(
                f"the journal of {self.case.root} records no remediation of {self.upn}",
                "run reclaim remediate --apply for this user first"
                + (f"; the journal knows {', '.join(known)}" if known else ""),
            )
        state = await read_state(self.client, self.upn, ())
        recorded = self.journal.tenant_of(self.upn)
        if recorded and recorded.casefold() not in {
            state.tenant_id.casefold(),
            self.client.tenant_id.casefold(),
        }:
            raise Refused(
                f"the journal's changes were made in tenant {recorded}, not {state.tenant_id}",
                "connect to the tenant the remediation was applied in",
            )
        return state.user_id


def check_guard(plan: Plan, guard: Guard) -> None:
    """Refuse a break-glass account or the operator's own, unless forced."""
    if guard.force:
        return
    if plan.upn.casefold() in {b.strip().casefold() for b in guard.break_glass}:
        raise Refused(
            f"{plan.upn} is listed as a break-glass account in the config: Reclaim does not act on it",
            "if this emergency account really is compromised, run again with --force",
        )
    if guard.operator and guard.operator.strip().casefold() == plan.upn.casefold():
        raise Refused(
            f"{plan.upn} is the account you are signed in with: remediating it would lock you out",
            "sign in as another administrator, or run again with --force",
        )
