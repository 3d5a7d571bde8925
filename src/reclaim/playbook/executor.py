"""Apply a plan, verify what was applied, roll it back: all through the journal.

Apply writes each change's before-state (flushed) first, then makes it, then writes its typed result.
Actions of one lane run in order (a password reset before the session revocation); lanes run
concurrently. A failure is recorded with its hint and the rest go on. A rerun after a crash finds
the actions whose result was never written and settles them against the tenant's state, and it
never repeats a password reset or a revocation an earlier run completed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio

from reclaim.errors import TenantError
from reclaim.playbook.actions import KINDS, Context
from reclaim.playbook.followup import followup_dir
from reclaim.playbook.journal import Journal
from reclaim.playbook.model import (
    ALREADY,
    CHANGE,
    DONE,
    FAILED,
    INFO,
    RETRY,
    SKIP,
    SKIPPED,
    STEPS,
    Action,
    Plan,
    Result,
)
from reclaim.playbook.state import UserState, read_state

ONCE = ("reset-password", "revoke-sessions")  # never repeated once a run completed them
# ("before", action) once its before-state is journaled, ("after", action) once the change is made and
# before its result is journaled: where tests inject crashes
Hook = Callable[[str, Action], None]


FIRST = ("block-signin",)  # within its lane, before anything else: it shuts the door at once


def _lanes(actions: list[Action]) -> list[list[Action]]:
    lanes: dict[str, list[Action]] = {}
    for a in sorted(actions, key=lambda a: a.kind not in FIRST):  # stable: the plan's order otherwise
        lanes.setdefault(a.lane, []).append(a)
    return list(lanes.values())


def _revoked_before_reset(journal: Journal, upn: str, action: Action) -> bool:
    """A revocation must follow the last password reset: one made before it (the reset failed that
    run, and a rerun made it) left sessions signed in with the old password possible in between."""
    if action.kind != "revoke-sessions":
        return False
    return journal.last_done(upn, "reset-password") > journal.last_done(upn, "revoke-sessions")


def _settle_owed(plan: Plan, journal: Journal) -> None:
    """What an earlier run failed to do and this plan, read from the tenant's state now, no longer
    calls for (its step planned in full, the action not in it) is owed no more."""
    planned = {a.key for a in plan.actions}
    unplannable = {a.step for a in plan.actions if a.status == RETRY}
    for key, entry in journal.not_done(plan.upn).items():
        owed = Action.from_dict(entry.data)
        if key not in planned and owed.step in plan.steps and owed.step not in unplannable:
            detail = "no longer needed by the state now"
            journal.result("apply", plan.upn, owed, plan.tenant_id, ALREADY, detail)


def _export_rules(ctx: Context, plan: Plan) -> None:
    """R3: the rules to disable, as Get-InboxRule showed them, kept in the case before any change."""
    rules = [a.before for a in plan.actions if a.kind == "disable-rule" and a.status == CHANGE]
    if not rules:
        return
    folder = followup_dir(ctx.case_root, plan.upn)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"inbox-rules-before-{stamp}.json"
    path.write_text(json.dumps(rules, indent=2, ensure_ascii=False, default=str), encoding="utf-8")


def _settle_interrupted(
    plan: Plan, state: UserState, journal: Journal, earlier: dict[str, Action]
) -> list[Result]:
    """Actions an interrupted run began: done if the tenant shows their change (keeping the original
    before-state, so rollback restores the right thing), else left to this run."""
    results = []
    planned = {a.key: a for a in plan.actions}
    for key, (action, begun) in journal.interrupted(plan.upn).items():
        kind = KINDS.get(action.kind)
        now = planned.get(key)
        # a reset whose result was never written may have set a password nobody received: it is
        # made again, so that the password handed over is the one in force
        if kind is None or action.kind == "reset-password" or not kind.holds(state, action, begun):
            continue  # not in place: this run makes the change (if the plan still wants it)
        detail = "completed before an interruption"
        journal.result("apply", plan.upn, action, plan.tenant_id, DONE, detail)
        earlier[key] = action
        results.append(Result(key, action.step, action.title, DONE, detail))
        if now is not None:
            plan.actions.remove(now)
    return results


async def apply(
    ctx: Context, plan: Plan, state: UserState, journal: Journal, hook: Hook | None = None
) -> list[Result]:
    """Carry out ``plan``; one result per action that is not a mere report."""
    earlier = journal.applied(plan.upn)
    results = _settle_interrupted(plan, state, journal, earlier)
    _settle_owed(plan, journal)
    _export_rules(ctx, plan)

    async def one(action: Action) -> None:
        if action.status == INFO:
            return
        if action.status in (SKIP, ALREADY):
            status = SKIPPED if action.status == SKIP else ALREADY
            journal.result("apply", plan.upn, action, plan.tenant_id, status, action.reason)
            results.append(Result(action.key, action.step, action.title, status, action.reason))
            return
        if action.status == RETRY:  # could not be planned for now: owed, and said so until done
            detail, hint = f"not done: {action.reason}", "run reclaim remediate --apply again"
            journal.result("apply", plan.upn, action, plan.tenant_id, FAILED, detail, hint)
            results.append(Result(action.key, action.step, action.title, FAILED, detail, hint))
            return
        repeat = _revoked_before_reset(journal, plan.upn, action)
        if action.kind in ONCE and action.key in earlier and not repeat:
            detail = "done by an earlier run; not repeated"
            journal.result("apply", plan.upn, action, plan.tenant_id, ALREADY, detail)
            results.append(Result(action.key, action.step, action.title, ALREADY, detail))
            return
        journal.before("apply", plan.upn, action, plan.tenant_id)
        if hook:
            hook("before", action)
        try:
            already = await KINDS[action.kind].apply(ctx, action)
        except TenantError as exc:
            journal.result("apply", plan.upn, action, plan.tenant_id, FAILED, exc.message, exc.hint or "")
            results.append(Result(action.key, action.step, action.title, FAILED, exc.message, exc.hint or ""))
            return
        if hook:
            hook("after", action)  # the change is made, its result not yet written: the worst moment to die
        status = ALREADY if already else DONE
        journal.result("apply", plan.upn, action, plan.tenant_id, status, already or "")
        results.append(Result(action.key, action.step, action.title, status, already or ""))

    async def lane(actions: list[Action]) -> None:
        for action in actions:
            await one(action)

    async with anyio.create_task_group() as group:
        for actions in _lanes(plan.actions):
            group.start_soon(lane, actions)
    order = {a.key: i for i, a in enumerate(plan.actions)}
    return sorted(results, key=lambda r: order.get(r.key, -1))


@dataclass
class Check:
    key: str
    step: str
    title: str
    holds: bool | None  # None: could not be read
    detail: str = ""


async def verify(ctx: Context, journal: Journal) -> list[Check]:
    """Re-read the tenant and check that every action an apply settled still holds."""
    settled = journal.settled(ctx.upn)
    done_at: dict[str, datetime | None] = {}  # when each was first changed
    for e in journal.entries():
        if e.op == "apply" and e.phase == "result" and e.status == DONE and e.upn == ctx.upn:
            done_at.setdefault(e.key, _time(e.data.get("time")))
    actions = {k: Action.from_dict(e.data) for k, e in settled.items() if e.data.get("kind") in KINDS}
    parts = tuple(dict.fromkeys(p for a in actions.values() for p in KINDS[a.kind].reads))
    state = await read_state(ctx.client, ctx.upn, parts)
    checks = []
    for key, action in actions.items():
        kind = KINDS[action.kind]
        gaps = [state.unavailable[p] for p in kind.reads if p in state.unavailable]
        if gaps:
            checks.append(Check(key, action.step, action.title, None, "; ".join(gaps)))
            continue
        ok = kind.holds(state, action, done_at.get(key) or _time(settled[key].data.get("time")))
        detail = "" if ok else "undone since it was applied"
        if ok and _revoked_before_reset(journal, ctx.upn, action):
            ok, detail = False, "revoked before the last password reset: sessions may have been opened since"
        checks.append(Check(key, action.step, action.title, ok, detail))
    for key, entry in journal.not_done(ctx.upn).items():  # owed: never applied, so it cannot hold
        owed = Action.from_dict(entry.data)
        detail = str(entry.data.get("detail") or "")
        detail = detail if detail.startswith("not done") else f"not done: {detail}".rstrip(": ")
        checks.append(Check(key, owed.step, owed.title, False, detail))
    order = {step: i for i, step in enumerate(STEPS)}
    checks.sort(key=lambda c: (order.get(c.step, len(order)), c.key))
    for c in checks:  # kept with the changes, for the report: what held, and when it was checked
        journal.append(
            {
                "op": "verify",
                "phase": "result",
                "tenant": state.tenant_id,
                "upn": ctx.upn,
                "key": c.key,
                "step": c.step,
                "title": c.title,
                "holds": c.holds,
                "detail": c.detail,
            }
        )
    return checks


def _time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


async def rollback(
    ctx: Context,
    journal: Journal,
    tenant_id: str,
    steps: tuple[str, ...] | None = None,
    include: tuple[str, ...] = (),
) -> list[Result]:
    """Restore what apply changed, from the journal's before-states: roles, sign-in and protocols
    always; rules, forwarding, grants and delegates only when named in ``include``; never a password
    or a revocation. Each restore is journaled; a rerun skips what is restored."""
    restored = journal.restored(ctx.upn)
    results: list[Result] = []
    wanted = {k.casefold() for k in include}

    async def one(action: Action) -> None:
        kind = KINDS[action.kind]
        named = action.key.casefold() in wanted
        if action.key in restored:
            results.append(Result(action.key, action.step, action.title, ALREADY, "restored earlier"))
            return
        if kind.undo is None or kind.restore == "never":
            results.append(Result(action.key, action.step, action.title, SKIPPED, "cannot be undone"))
            return
        if kind.restore == "on-request" and not named:
            results.append(
                Result(
                    action.key,
                    action.step,
                    action.title,
                    SKIPPED,
                    f"restored only when asked: --include {action.key}",
                )
            )
            return
        journal.before("rollback", ctx.upn, action, tenant_id)
        try:
            await kind.undo(ctx, action)
        except TenantError as exc:
            journal.result("rollback", ctx.upn, action, tenant_id, FAILED, exc.message, exc.hint or "")
            results.append(Result(action.key, action.step, action.title, FAILED, exc.message, exc.hint or ""))
            return
        journal.result("rollback", ctx.upn, action, tenant_id, DONE)
        results.append(Result(action.key, action.step, action.title, DONE, "restored"))

    chosen = [a for a in journal.applied(ctx.upn).values() if steps is None or a.step in steps]

    async def lane(actions: list[Action]) -> None:
        for action in actions:
            await one(action)

    async with anyio.create_task_group() as group:
        for actions in _lanes(chosen):
            group.start_soon(lane, actions)
    order = {a.key: i for i, a in enumerate(chosen)}
    return sorted(results, key=lambda r: order.get(r.key, -1))
