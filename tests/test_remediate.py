"""The playbook against the lab: plan, apply, verify, crash and resume, throttling, rollback, secrets."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reclaim import tenantsim
from reclaim.case.store import Case
from reclaim.cli.main import cli
from reclaim.cli.tenant import TOKEN_VARIABLE
from reclaim.lab import Lab, LabTenant, serve
from reclaim.playbook.executor import Check
from reclaim.playbook.journal import Journal
from reclaim.playbook.model import ALREADY, CHANGE, DONE, FAILED, RETRY, STEPS, Plan, Result
from reclaim.playbook.session import Session
from reclaim.playbook.state import PARTS, UserState, read_state
from tests.lablib import collect_from_lab, lab_client

USERS, DAYS, SEED = 14, 14, 11
SINCE = tenantsim.START.replace(tzinfo=None)
UNTIL = SINCE + timedelta(days=DAYS)
UPNS = tenantsim.SimTenant(USERS, DAYS, SEED).upns
VICTIM = UPNS[2]
ALL_STEPS = tuple(STEPS)
CONTAIN = ("R1", "sessions", "R2", "R3", "R4", "R5", "R6")


def _tenant() -> LabTenant:
    """The same simulated tenant every time (deterministic): each test changes its own copy."""
    return LabTenant.simulated(users=USERS, days=DAYS, seed=SEED, scenarios={"bec": [VICTIM]})


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A case holding the victim's collected evidence, as `reclaim investigate --tenant` leaves it."""
    root = tmp_path_factory.mktemp("remediate") / "case"
    with serve(_tenant()) as lab, Case.open(root) as case:
        lab.audit_log.polls = 1
        assert collect_from_lab(lab, case, VICTIM, SINCE, UNTIL).complete
    return root


@pytest.fixture
def lab() -> Iterator[Lab]:
    with serve(_tenant(), grant_writes=True) as running:
        yield running


@pytest.fixture
def case_dir(template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "case"
    shutil.copytree(template, target)
    return target


class Passwords:
    def __init__(self) -> None:
        self.given: list[tuple[str, str]] = []

    def __call__(self, upn: str, password: str) -> None:
        self.given.append((upn, password))


def _run(lab: Lab, case_dir: Path, work: Any, passwords: Passwords | None = None) -> Any:
    async def go() -> Any:
        async with lab_client(lab) as client:
            with Case.open(case_dir, create=False) as case:
                return await work(Session(client, case, VICTIM, passwords or Passwords()))

    return asyncio.run(go())


def _plan(lab: Lab, case_dir: Path, steps: tuple[str, ...] = ALL_STEPS) -> tuple[Plan, UserState]:
    async def work(s: Session) -> tuple[Plan, UserState]:
        return await s.plan(steps)

    result: tuple[Plan, UserState] = _run(lab, case_dir, work)
    return result


def _apply(
    lab: Lab,
    case_dir: Path,
    steps: tuple[str, ...] = CONTAIN,
    passwords: Passwords | None = None,
    hook: Any = None,
) -> tuple[Plan, list[Result]]:
    async def work(s: Session) -> tuple[Plan, list[Result]]:
        plan, state = await s.plan(steps)
        return plan, await s.apply(plan, state, hook)

    result: tuple[Plan, list[Result]] = _run(lab, case_dir, work, passwords)
    return result


def _verify(lab: Lab, case_dir: Path) -> list[Check]:
    async def work(s: Session) -> list[Check]:
        return await s.verify()

    result: list[Check] = _run(lab, case_dir, work)
    return result


def _rollback(
    lab: Lab, case_dir: Path, steps: tuple[str, ...] | None = None, include: tuple[str, ...] = ()
) -> list[Result]:
    async def work(s: Session) -> list[Result]:
        return await s.rollback(steps, include)

    result: list[Result] = _run(lab, case_dir, work)
    return result


_MOVING = {"@odata.context", "WhenChanged", "lastPasswordChangeDateTime", "signInSessionsValidFromDateTime"}


def _steady(node: Any) -> Any:
    """``node`` without what differs between two runs of the same changes: times of the change itself,
    the lab's port; the password method's creation is its last change."""
    if isinstance(node, list):
        return [_steady(n) for n in node]
    if isinstance(node, dict):
        password = node.get("@odata.type") == "#microsoft.graph.passwordAuthenticationMethod"
        return {
            k: _steady(v)
            for k, v in node.items()
            if k not in _MOVING and not (password and k == "createdDateTime")
        }
    return node


def _snapshot(lab: Lab) -> dict[str, Any]:
    """Everything remediation may change, as the tenant shows it (times that always move left out)."""

    async def go() -> UserState:
        async with lab_client(lab) as client:
            parts = tuple(dict.fromkeys(p for ps in PARTS.values() for p in ps if p != "domain"))
            return await read_state(client, VICTIM, parts)

    state = asyncio.run(go())
    user = _steady(state.user)
    roles = sorted((r["roleDefinitionId"], r.get("directoryScopeId")) for r in state.parts["roles"] or [])
    eligible = sorted(
        (r["roleDefinitionId"], r.get("directoryScopeId")) for r in state.parts["eligible"] or []
    )
    return {
        "user": user,
        **{k: _steady(v) for k, v in state.parts.items() if k not in ("roles", "eligible")},
        "roles": roles,
        "eligible": eligible,
        "unavailable": state.unavailable,
    }


def _writes(lab: Lab) -> list[tuple[str, str, int]]:
    return [
        (m, p, s)
        for m, p, s in lab.requests
        if m in ("PATCH", "DELETE")
        or (m == "POST" and "InvokeCommand" not in p and not p.endswith("/queries"))
    ]


# -- plan ------------------------------------------------------------------------------------------
def test_plan_shows_exactly_the_planted_artifacts(lab: Lab, case_dir: Path) -> None:
    box = lab.tenant.mailbox(VICTIM) or {}
    attacker_address = str(box["ForwardingSmtpAddress"]).split(":", 1)[1]
    planted_rules = [
        r
        for r in lab.tenant.inbox_rules
        if str(r.get("MoveToFolder", "")).endswith("RSS Feeds") and r["MailboxOwnerId"] == VICTIM
    ]
    own = {
        **planted_rules[0],
        "Name": "Newsletters",
        "RuleIdentity": "1234",
        "Identity": f"{box['Alias']}\\1234",
        "MoveToFolder": f"{box['Alias']}:\\Newsletters",
        "MarkAsRead": False,
        "StopProcessingRules": False,
        "SubjectOrBodyContainsWords": ["newsletter"],
    }
    lab.tenant.inbox_rules.append(own)
    before = _snapshot(lab)

    plan, _ = _plan(lab, case_dir)

    assert _snapshot(lab) == before and not _writes(lab)  # a plan changes nothing
    changes = {a.key: a for a in plan.changes}
    rules = [a for a in changes.values() if a.kind == "disable-rule"]
    assert sorted(a.target["name"] for a in rules) == sorted(r["Name"] for r in planted_rules)
    assert all(a.why for a in rules)
    forwarding = changes["R2:forwarding"]
    assert attacker_address in forwarding.title and forwarding.before["ForwardingSmtpAddress"]
    roles = [a for a in changes.values() if a.kind == "remove-role"]
    assert "Exchange Administrator" in {a.target["role_name"] for a in roles}
    methods = [a for a in changes.values() if a.kind == "remove-method"]
    assert methods and all("microsoftAuthenticator" in a.target["segment"] for a in methods)
    assert {"R1:password", "sessions:revoke", "R5:block-signin", "R5:protocols", "R7:follow-up"} <= set(
        changes
    )
    assert plan.tenant_name == "Contoso" and plan.tenant_id == lab.tenant_id
    assert plan.window_start is not None
    assert any("1 other inbox rule" in n for n in plan.notes)  # the user's own rule (below) is left alone


# -- apply, verify, apply again ----------------------------------------------------------------------
def test_apply_then_verify_is_clean_and_a_second_apply_changes_nothing(lab: Lab, case_dir: Path) -> None:
    passwords = Passwords()
    plan, results = _apply(lab, case_dir, passwords=passwords)
    assert results and all(r.status in (DONE, ALREADY) for r in results), [
        r for r in results if r.status not in (DONE, ALREADY)
    ]
    assert {r.key for r in results if r.status == DONE} == {a.key for a in plan.changes}
    assert len(passwords.given) == 1 and passwords.given[0][0] == VICTIM

    after = _snapshot(lab)
    assert after["user"]["accountEnabled"] is False
    assert not after["mailbox"]["ForwardingSmtpAddress"] and not after["blocked"]
    assert all(
        after["cas"][k] is False
        for k in ("MAPIEnabled", "EwsEnabled", "ImapEnabled", "PopEnabled", "OWAEnabled", "ActiveSyncEnabled")
    )
    assert after["roles"] == [] and after["eligible"] == []
    assert all(c.holds for c in _verify(lab, case_dir))

    lab.requests.clear()
    plan2, results2 = _apply(lab, case_dir, passwords=passwords)
    assert plan2.changes == [] or {a.kind for a in plan2.changes} <= {"reset-password", "revoke-sessions"}
    assert all(r.status == ALREADY for r in results2 if r.key in {a.key for a in plan.changes}), results2
    assert not _writes(lab) and len(passwords.given) == 1  # nothing repeated, no second password
    assert _snapshot(lab) == after


def test_verify_notices_an_undone_change(lab: Lab, case_dir: Path) -> None:
    _apply(lab, case_dir, steps=("R2", "R5"))
    box = lab.tenant.mailbox(VICTIM) or {}
    box["ForwardingSmtpAddress"] = "smtp:back@evil.example"  # the attacker (or a sync) puts it back
    checks = {c.key: c for c in _verify(lab, case_dir)}
    assert checks["R2:forwarding"].holds is False and checks["R5:block-signin"].holds is True


# -- failures, faults, crashes ------------------------------------------------------------------------
def test_a_failed_step_does_not_stop_the_others(lab: Lab, case_dir: Path) -> None:
    lab.granted.discard("RoleManagement.ReadWrite.Directory")
    _, results = _apply(lab, case_dir)
    failed = [r for r in results if r.status == FAILED]
    assert failed and all(
        r.step == "R6" and "RoleManagement.ReadWrite.Directory" in r.hint
        for r in failed
        if r.key.startswith("R6:role")
    )
    assert {r.step for r in results if r.status == DONE} >= {"R1", "sessions", "R2", "R3", "R5"}


def test_throttling_and_service_errors_during_apply_are_survived(lab: Lab, case_dir: Path) -> None:
    lab.faults.throttle("/graph/v1.0/users", 2, retry_after=1)
    lab.faults.fail("/exo", 2, status=503)
    lab.faults.fail("/graph/v1.0/roleManagement", 1, status=503)
    _, results = _apply(lab, case_dir)
    assert all(r.status in (DONE, ALREADY) for r in results), [r for r in results if r.status == FAILED]
    assert any(s == 429 for _, _, s in lab.requests) and any(s == 503 for _, _, s in lab.requests)
    assert all(c.holds for c in _verify(lab, case_dir))


class Crash(BaseException):
    """A kill between writing a before-state and making the change."""


@pytest.mark.parametrize(("phase", "at"), [("after", 1), ("before", 3), ("after", 4), ("after", 7)])
def test_a_crash_then_a_rerun_ends_like_an_uninterrupted_run(
    case_dir: Path, tmp_path: Path, phase: str, at: int
) -> None:
    """Killed after a change was made but before its result was journaled ("after"), or between the
    before-state and the change ("before"): the rerun ends where an uninterrupted run does."""
    with serve(_tenant(), grant_writes=True) as clean:
        shutil.copytree(case_dir, tmp_path / "clean")
        _apply(clean, tmp_path / "clean")
        expected = _snapshot(clean)

    with serve(_tenant(), grant_writes=True) as lab:
        seen: list[str] = []

        def crash(when: str, action: Any) -> None:
            if when == phase:
                seen.append(action.key)
                if len(seen) == at:
                    raise Crash()

        passwords = Passwords()
        with pytest.raises(BaseException) as info:  # the task group wraps it
            _apply(lab, case_dir, passwords=passwords, hook=crash)
        assert info.errisinstance((Crash, BaseExceptionGroup))
        reset_recorded = "R1:password" in Journal(case_dir).applied(VICTIM)
        given = len(passwords.given)
        _, results = _apply(lab, case_dir, passwords=passwords)
        assert all(r.status != FAILED for r in results)
        assert _snapshot(lab) == expected
        # a journaled reset is never repeated; one cut off before its result is made again, so that
        # the password handed over is the one in force
        assert len(passwords.given) == (1 if reset_recorded else given + 1)
        assert all(c.holds for c in _verify(lab, case_dir))


# -- rollback -------------------------------------------------------------------------------------------
def test_rollback_restores_roles_signin_and_protocols_exactly(lab: Lab, case_dir: Path) -> None:
    before = _snapshot(lab)
    plan, _ = _apply(lab, case_dir)
    results = _rollback(lab, case_dir)
    restored = {r.key for r in results if r.status == DONE}
    assert {a.key for a in plan.changes if a.step in ("R5", "R6")} == restored
    after = _snapshot(lab)
    assert after["roles"] == before["roles"] and after["eligible"] == before["eligible"]
    assert after["user"]["accountEnabled"] is True and after["cas"] == before["cas"]
    # the attacker's rule and forwarding stay off unless asked for by key
    assert not after["mailbox"]["ForwardingSmtpAddress"]
    rule_keys = [a.key for a in plan.changes if a.kind == "disable-rule"]
    assert all(any(r.key == k and r.status == "skipped" for r in results) for k in rule_keys)
    # a second rollback changes nothing; then the analyst marks one rule legitimate
    again = _rollback(lab, case_dir)
    assert all(r.status != DONE for r in again)
    one = _rollback(lab, case_dir, include=(rule_keys[0],))
    assert [r.key for r in one if r.status == DONE] == [rule_keys[0]]
    rule = next(a for a in plan.changes if a.key == rule_keys[0])
    current = [r for r in _snapshot(lab)["rules"] if str(r["RuleIdentity"]) == rule.target["rule_identity"]]
    assert current and current[0]["Enabled"] is True


def test_role_groups_are_recorded_removed_and_restored(lab: Lab, case_dir: Path) -> None:
    lab.tenant.add_role_group_member("exchange", "Organization Management", VICTIM)
    lab.tenant.add_role_group_member("compliance", "eDiscoveryManager", VICTIM)
    before = _snapshot(lab)
    plan, results = _apply(lab, case_dir, steps=("R6",))
    groups = [a for a in plan.changes if a.kind == "leave-role-group"]
    held = {("exchange", g["Name"]) for g in before["exchange_groups"]}
    held |= {("compliance", g["Name"]) for g in before["compliance_groups"]}
    assert {(a.target["service"], a.target["group"]) for a in groups} == held
    assert {("exchange", "Organization Management"), ("compliance", "eDiscoveryManager")} <= held
    assert all(r.status == DONE for r in results)
    emptied = _snapshot(lab)
    assert emptied["exchange_groups"] == [] and emptied["compliance_groups"] == [] and emptied["roles"] == []
    _rollback(lab, case_dir, steps=("R6",))
    after = _snapshot(lab)
    for part in ("exchange_groups", "compliance_groups", "roles", "eligible"):
        assert after[part] == before[part], part


@contextmanager
def _scenario(
    tmp_path: Path, upn: str, scenarios: dict[str, list[str]]
) -> Iterator[tuple[LabTenant, Lab, Case]]:
    """A lab with ``scenarios`` planted, and a case holding ``upn``'s collected evidence."""
    tenant = LabTenant.simulated(users=USERS, days=DAYS, seed=SEED, scenarios=scenarios)
    with serve(tenant, grant_writes=True) as lab, Case.open(tmp_path / "scenario") as case:
        lab.audit_log.polls = 1
        assert collect_from_lab(lab, case, upn, SINCE, UNTIL).complete
        yield tenant, lab, case


def _plan_and_apply(lab: Lab, case: Case, upn: str, steps: tuple[str, ...]) -> tuple[Plan, list[Result]]:
    async def go() -> tuple[Plan, list[Result]]:
        async with lab_client(lab) as client:
            session = Session(client, case, upn, Passwords())
            plan, state = await session.plan(steps)
            return plan, await session.apply(plan, state)

    return asyncio.run(go())


def test_methods_and_persistence_are_opt_in_and_removable(tmp_path: Path) -> None:
    phished = UPNS[5]
    with _scenario(tmp_path, phished, {"bec": [VICTIM], "consent-phishing": [phished]}) as (
        tenant,
        lab,
        case,
    ):
        default_plan, _ = _plan_and_apply(lab, case, phished, ("R1", "R2", "R3", "R4"))
        assert not [a for a in default_plan.changes if a.kind in ("remove-grant", "remove-method")]
        plan, results = _plan_and_apply(lab, case, phished, ("persistence",))
        grants = [a for a in plan.changes if a.kind == "remove-grant"]
        assert len(grants) == 1 and "Mail.ReadWrite" in grants[0].title
        assert all(r.status == DONE for r in results)
        user_id = str((tenant.user(phished) or {})["id"])

        async def grants_now() -> list[str]:
            async with lab_client(lab) as client:
                found = await client.get(
                    "/oauth2PermissionGrants", {"$filter": f"principalId eq '{user_id}'"}
                )
                return [g["scope"] for g in found["value"]]

        assert not any("Mail.ReadWrite" in s for s in asyncio.run(grants_now()))

        async def undo(include: tuple[str, ...]) -> list[Result]:
            async with lab_client(lab) as client:
                return await Session(client, case, phished).rollback(None, include)

        assert all(r.status != DONE for r in asyncio.run(undo(())))  # a grant comes back only when named
        assert [r.key for r in asyncio.run(undo((grants[0].key,))) if r.status == DONE] == [grants[0].key]
        assert any("Mail.ReadWrite" in s for s in asyncio.run(grants_now()))


def test_a_synced_account_is_told_to_change_its_password_on_premises(lab: Lab, case_dir: Path) -> None:
    (lab.tenant.user(VICTIM) or {})["onPremisesSyncEnabled"] = True
    _, results = _apply(lab, case_dir, steps=("R1", "sessions"))
    reset = next(r for r in results if r.key == "R1:password")
    assert reset.status == "skipped" and "on-premises" in reset.detail
    assert not [p for m, p, _ in _writes(lab) if m == "PATCH"]
    assert next(r for r in results if r.key == "sessions:revoke").status == DONE


def test_follow_up_lists_recipients_and_drafts_a_notice(lab: Lab, case_dir: Path) -> None:
    _, results = _apply(lab, case_dir, steps=("R7",))
    assert [r.status for r in results] == [DONE]
    folder = case_dir / "remediation" / VICTIM.replace("@", "_")
    rows = (folder / "recipients.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "address,external,messages,subjects" and any(",yes," in r for r in rows[1:])
    assert "do not act on any payment request" in (folder / "notification-draft.txt").read_text(
        encoding="utf-8"
    )
    assert not _writes(lab)  # R7 writes to the case, never to the tenant


# -- the command line: guard rails, confirmation, secrets ------------------------------------------------
def _cli(lab: Lab, *args: str, env: dict[str, str] | None = None, input: str | None = None) -> Any:
    from click.testing import CliRunner

    from reclaim.cli.main import cli

    where = [
        "--tenant",
        lab.tenant_id,
        "--graph-url",
        lab.graph_url,
        "--exo-url",
        lab.exo_url,
        "--scc-url",
        lab.scc_url,
    ]
    environment = {"RECLAIM_ACCESS_TOKEN": lab.token, "XDG_CONFIG_HOME": "/nonexistent", **(env or {})}
    return CliRunner().invoke(cli, [*args, *where], env=environment, input=input)


def _remediate(lab: Lab, case_dir: Path, *args: str, **options: Any) -> Any:
    return _cli(lab, "remediate", "--user", VICTIM, "--case", str(case_dir), *args, **options)


def test_cli_plan_apply_verify_rollback_and_no_secret_leaks(lab: Lab, case_dir: Path, tmp_path: Path) -> None:
    plan = _remediate(lab, case_dir)
    assert plan.exit_code == 0, plan.output
    assert "Contoso" in plan.output and lab.tenant_id in plan.output and "Plan only" in plan.output
    declined = _remediate(
        lab,
        case_dir,
        "--apply",
        "--password-file",
        str(tmp_path / "declined.pw"),
        input="n\n",
    )
    assert declined.exit_code != 0 and not _writes(lab)
    secret_file = tmp_path / "new.pw"
    applied = _remediate(
        lab,
        case_dir,
        "--steps",
        "R1,sessions,R2,R3,R5,R6",
        "--apply",
        "--yes",
        "--password-file",
        str(secret_file),
        "--json",
        str(case_dir / "run.json"),
    )
    assert applied.exit_code == 0, applied.output
    assert secret_file.stat().st_mode & 0o777 == 0o600
    upn, password = secret_file.read_text(encoding="utf-8").strip().split("\t")
    assert upn == VICTIM and len(password) == 20
    verified = _cli(lab, "verify", str(case_dir))
    assert verified.exit_code == 0, verified.output
    rolled = _cli(lab, "rollback", str(case_dir), "--yes")
    assert rolled.exit_code == 0, rolled.output
    outputs = [plan.output, declined.output, applied.output, verified.output, rolled.output]
    assert not any(password in text for text in outputs)
    for path in case_dir.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    assert not any(password in str(record) for record in lab.log)


def test_cli_refuses_a_break_glass_account_without_force(lab: Lab, case_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"break_glass:\n  - {VICTIM.upper()}\n", encoding="utf-8")
    args = ["--config", str(config), "--steps", "R5", "--apply", "--yes"]
    refused = _remediate(lab, case_dir, *args)
    assert refused.exit_code == 3 and "break-glass" in refused.output and not _writes(lab)
    forced = _remediate(lab, case_dir, *args, "--force")
    assert forced.exit_code == 0, forced.output
    assert _writes(lab)


def test_cli_will_not_print_a_password_to_a_pipe(lab: Lab, case_dir: Path) -> None:
    result = _remediate(lab, case_dir, "--apply", "--yes")
    assert result.exit_code == 2 and "--password-file" in result.output and not _writes(lab)


def test_steps_the_app_may_not_read_are_skipped_with_the_fix(lab: Lab, case_dir: Path) -> None:
    lab.exchange_role = False
    _, results = _apply(lab, case_dir, steps=("R1", "sessions", "R2", "R3", "R4"))
    by_step = {r.step: r for r in results}
    for step in ("R2", "R3", "R4"):
        assert by_step[step].status == "skipped" and "Exchange Administrator" in by_step[step].detail
    assert by_step["R1"].status == DONE and by_step["sessions"].status == DONE


def test_internal_forwarding_no_finding_names_is_left_alone(lab: Lab, case_dir: Path) -> None:
    colleague = UPNS[0]
    box = lab.tenant.mailbox(VICTIM) or {}
    box["ForwardingSmtpAddress"] = f"smtp:{colleague}"  # since the investigation: the user's own choice
    plan, _ = _plan(lab, case_dir, ("R2",))
    (action,) = plan.actions
    assert action.status == "skip" and colleague in action.reason


def test_guard_refuses_the_operators_own_account() -> None:
    from reclaim.errors import Refused
    from reclaim.playbook.session import Guard, check_guard

    plan = Plan("t", "Contoso", VICTIM, "id", ("R5",), [])
    with pytest.raises(Refused, match="signed in with"):
        check_guard(plan, Guard(operator=VICTIM.upper()))
    check_guard(plan, Guard(operator=VICTIM, force=True))
    check_guard(plan, Guard(operator="someone.else@contoso.example"))


def test_cli_never_overwrites_a_password_file(lab: Lab, case_dir: Path, tmp_path: Path) -> None:
    existing = tmp_path / "old.pw"
    existing.write_text("keep me\n", encoding="utf-8")
    result = _remediate(
        lab,
        case_dir,
        "--apply",
        "--yes",
        "--password-file",
        str(existing),
    )
    assert result.exit_code == 2 and "exists" in result.output and not _writes(lab)
    assert existing.read_text(encoding="utf-8") == "keep me\n"


def test_a_restricted_sender_is_unblocked(tmp_path: Path) -> None:
    spammer = UPNS[6]
    with _scenario(tmp_path, spammer, {"outbound-spam": [spammer]}) as (_, lab, case):
        plan, results = _plan_and_apply(lab, case, spammer, ("R4",))
        (action,) = plan.actions
        assert action.status == CHANGE and any("restricted-from-sending" in w for w in action.why)
        assert [r.status for r in results] == [DONE] and not lab.tenant.blocked_senders


def test_a_rule_flagged_by_several_detections_gives_every_reason(lab: Lab, case_dir: Path) -> None:
    plan, _ = _plan(lab, case_dir, ("R3",))
    (rule,) = [a for a in plan.actions if a.kind == "disable-rule"]
    fired = {w.rsplit("[", 1)[-1].rstrip("]") for w in rule.why}
    assert {"inbox-rule-hiding-folder", "inbox-rule-meaningless-name", "inbox-rule-marks-read"} <= fired, (
        rule.why
    )


def test_a_federated_account_is_told_to_change_its_password_on_premises(lab: Lab, case_dir: Path) -> None:
    lab.tenant.federated_domains.add(VICTIM.rpartition("@")[2])
    plan, _ = _plan(lab, case_dir, ("R1",))
    reset = next(a for a in plan.actions if a.key == "R1:password")
    assert reset.status == "skip" and "federated" in reset.reason and "on-premises" in reset.reason


# -- containment always completes ---------------------------------------------------------------------
# A revocation follows the last password reset; throttling is waited out (up to --max-wait) or reported
# as not done with a non-zero exit; no request goes to a throttled service before its Retry-After ends.
IDENTITY = ("R1", "sessions")


def _apply_with(lab: Lab, case_dir: Path, steps: tuple[str, ...], **client: Any) -> tuple[Plan, list[Result]]:
    """Apply with the client's waiting options (``max_wait``, ``on_wait``, ``max_retry_after``)."""
    async def go() -> tuple[Plan, list[Result]]:
        async with lab.client(backoff=0.05, **client) as c:
            with Case.open(case_dir, create=False) as case:
                session = Session(c, case, VICTIM, Passwords())
                plan, state = await session.plan(steps)
                return plan, await session.apply(plan, state)

    return asyncio.run(go())


def _by_kind(results: list[Result], plan: Plan) -> dict[str, str]:
    kinds = {a.key: a.kind for a in plan.actions}
    return {kinds[r.key]: r.status for r in results}


def _revocations(lab: Lab) -> int:
    return sum(1 for m, p, s in lab.requests if m == "POST" and p.endswith("/revokeSignInSessions") and s < 300)


def test_a_reset_done_after_the_revocation_is_followed_by_another(lab: Lab, case_dir: Path) -> None:
    lab.password_role = False  # the reset fails; the revocation after it in the lane goes ahead
    plan, results = _apply_with(lab, case_dir, IDENTITY)
    assert _by_kind(results, plan) == {"reset-password": FAILED, "revoke-sessions": DONE}
    checks = {c.step: c for c in _verify(lab, case_dir)}
    assert checks["R1"].holds is False and checks["R1"].detail.startswith("not done")  # owed: cannot hold
    assert checks["sessions"].holds is True

    lab.password_role = True
    plan, results = _apply_with(lab, case_dir, IDENTITY)
    assert _by_kind(results, plan) == {"reset-password": DONE, "revoke-sessions": DONE}  # revoked again
    assert _revocations(lab) == 2
    assert all(c.holds for c in _verify(lab, case_dir))

    plan, results = _apply_with(lab, case_dir, IDENTITY)  # nothing more is owed: neither is repeated
    assert set(_by_kind(results, plan).values()) == {ALREADY} and _revocations(lab) == 2


def test_verify_says_when_the_revocation_came_before_the_last_reset(lab: Lab, case_dir: Path) -> None:
    lab.password_role = False
    _apply_with(lab, case_dir, IDENTITY)
    lab.password_role = True
    _apply_with(lab, case_dir, ("R1",))  # the reset alone: the sessions opened in between stay valid
    (sessions,) = [c for c in _verify(lab, case_dir) if c.step == "sessions"]
    assert sessions.holds is False and "before the last password reset" in sessions.detail


def test_a_long_retry_after_is_waited_out_up_to_max_wait(lab: Lab, case_dir: Path) -> None:
    waits: list[tuple[str, float]] = []
    lab.faults.throttle("/graph/v1.0/users", 1, retry_after=2)  # longer than the client's cap below
    plan, results = _apply_with(
        lab, case_dir, ("sessions",), max_retry_after=0.5, max_wait=10, on_wait=lambda s, t: waits.append((s, t))
    )
    assert _by_kind(results, plan) == {"revoke-sessions": DONE}
    assert waits and waits[0][0] == "Microsoft Graph" and 1 < waits[0][1] <= 2


def test_throttling_past_max_wait_is_not_done_and_exits_non_zero(
    lab: Lab, case_dir: Path, monkeypatch: Any
) -> None:
    user_id = (lab.tenant.user(VICTIM) or {})["id"]
    lab.faults.throttle(f"/graph/v1.0/users/{user_id}/revokeSignInSessions", 50, retry_after=30)
    monkeypatch.setenv(TOKEN_VARIABLE, lab.token)
    args = ["remediate", "--tenant", lab.tenant_id, "--graph-url", lab.graph_url, "--exo-url", lab.exo_url,
            "--scc-url", lab.scc_url, "--user", VICTIM, "--case", str(case_dir), "--steps", "R2,sessions",
            "--apply", "--yes", "--max-wait", "1"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "Not done" in result.output and "sessions" in result.output
    owed = [c for c in _verify(lab, case_dir) if c.step == "sessions"]
    assert owed and owed[0].holds is False and "not done" in owed[0].detail

    lab.faults.clear()  # the service answers again: a rerun does it, and nothing is owed any more
    _, results = _apply_with(lab, case_dir, ("R2", "sessions"))
    assert all(r.status in (DONE, ALREADY) for r in results)
    assert all(c.holds for c in _verify(lab, case_dir))


def test_a_step_that_cannot_be_planned_for_throttling_is_owed(lab: Lab, case_dir: Path) -> None:
    lab.faults.throttle("/exo/", 100, retry_after=30)  # Exchange throttles the app for a long while
    plan, results = _apply_with(lab, case_dir, ("R2", "sessions"), max_retry_after=0.5, max_wait=0.5)
    (r2,) = [a for a in plan.actions if a.step == "R2"]
    assert r2.status == RETRY
    assert {r.step: r.status for r in results} == {"R2": FAILED, "sessions": DONE}


def test_no_request_goes_to_a_throttled_service_before_its_retry_after(lab: Lab) -> None:
    lab.faults.throttle("/exo/", 1, retry_after=2)

    async def go() -> None:
        async with lab.client(backoff=0.05, max_retry_after=5) as c:

            async def after_the_429() -> None:
                await asyncio.sleep(0.3)  # Exchange has said "wait 2 s" by now
                await asyncio.gather(
                    *(c.run("Get-Mailbox", {"Identity": VICTIM}) for _ in range(3)), c.get("/users", {"$top": "1"})
                )

            await asyncio.gather(c.run("Get-Mailbox", {"Identity": VICTIM}), after_the_429())

    asyncio.run(go())
    exo = [r for r in lab.log if r.path.startswith("/exo/")]
    (throttled,) = [r for r in exo if r.status == 429]
    assert len(exo) == 5 and all(r.started >= throttled.finished + 1.9 for r in exo if r is not throttled)
    (graph,) = [r for r in lab.log if r.path == "/graph/v1.0/users"]
    assert graph.started < throttled.finished + 1  # another service is not held
