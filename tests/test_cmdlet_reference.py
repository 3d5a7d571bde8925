"""The cmdlet parameter reference (lab/exchange/cmdlets.yaml, from Microsoft's cmdlet reference), and every
parameter Reclaim sends to Exchange Online or Security & Compliance checked against it.

The check runs the real code paths (collectors, sweep, remediation state, planner and every action's
apply and undo, doctor) against a client that records each cmdlet call and answers with canned objects,
so a parameter built at run time is checked as well as one written out; a static scan then makes sure no
cmdlet named in the client code escaped the walk.
"""

from __future__ import annotations

import ast
import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reclaim.case.store import Case
from reclaim.collect import directory, sweep
from reclaim.collect.collectors import COLLECTORS
from reclaim.collect.target import Target
from reclaim.lab.exchange import reference as ref
from reclaim.lab.exchange.cmdlets import SERVICES as LAB_SERVICES
from reclaim.playbook.actions import KINDS, PROTOCOLS, SMTP_AUTH_OFF, Context
from reclaim.playbook.facts import CaseFacts, Flag
from reclaim.playbook.model import CHANGE, parse_steps
from reclaim.playbook.planner import build
from reclaim.playbook.state import PARTS, read_state
from reclaim.tenant import doctor

SRC = Path(__file__).resolve().parents[1] / "src" / "reclaim"
CMDLET = re.compile(r"^(?:Get|Set|Add|Remove|New|Enable|Disable|Search|Start|Stop|Update|Test|Clear|Export|"
                    r"Import|Invoke|Resume|Suspend|Restore|Undo|Release)-[A-Z][A-Za-z0-9]+$")  # fmt: skip
NOT_CMDLETS = {"Set-Cookie"}  # an HTTP header in the web app

# Calls that do not match Microsoft's reference, reported and awaiting a fix in the calling code; an
# entry that no longer happens must be removed (the test says so).
KNOWN_SENT: set[tuple[str, str, str]] = set()
# Parameters the lab accepts that the real cmdlet does not have (same rule).
KNOWN_LAB_EXTRAS: set[tuple[str, str, str]] = set()

UPN = "adele@contoso.example"
USER_ID = "8a3f1c2e-0d7b-4e55-9d7e-2b1f0c9a6e11"
DELEGATE = "mallory@contoso.example"
GROUP_ID = "5f0c3e6a-1b2d-4c8e-9f00-7a6b5c4d3e21"


# -- the data ------------------------------------------------------------------------------------------
def test_the_data_loads_and_names_its_source() -> None:
    assert ref.SOURCE.repository == "MicrosoftDocs/office-docs-powershell"
    assert re.fullmatch(r"[0-9a-f]{40}", ref.SOURCE.commit)
    assert ref.page("Get-InboxRule") == f"{ref.SOURCE.folder}/Get-InboxRule.md"
    for service in ref.SERVICES:
        assert ref.cmdlets(service)
        for cmdlet in ref.cmdlets(service):
            params = ref.parameters(service, cmdlet)
            assert params and ref.page(cmdlet)
            assert not {"ErrorAction", "WarningAction", "Verbose", "Debug", "InformationAction"} & set(params)
    with pytest.raises(ValueError, match="service"):
        ref.parameters("graph", "Get-Mailbox")


def test_every_cmdlet_the_lab_serves_is_in_the_data_for_its_service() -> None:
    assert set(LAB_SERVICES) == set(ref.SERVICES)
    for service, served in LAB_SERVICES.items():
        missing = sorted(c for c in served if ref.parameters(service, c) is None)
        assert not missing, f"{service}: no reference for {missing}"


def test_the_lab_accepts_only_parameters_the_cmdlets_have() -> None:
    extras = {
        (service, cmdlet, name)
        for service, served in LAB_SERVICES.items()
        for cmdlet, (allowed, _) in served.items()
        for name in allowed
        if name not in (ref.parameters(service, cmdlet) or {})
    }
    assert extras <= KNOWN_LAB_EXTRAS, (
        f"the lab accepts parameters Microsoft's cmdlets lack: {extras - KNOWN_LAB_EXTRAS}"
    )
    assert extras == KNOWN_LAB_EXTRAS, (
        f"fixed in the lab, drop from KNOWN_LAB_EXTRAS: {KNOWN_LAB_EXTRAS - extras}"
    )


def test_known_facts() -> None:
    exchange = ref.parameters("exchange", "Remove-RoleGroupMember")
    compliance = ref.parameters("compliance", "Remove-RoleGroupMember")
    assert exchange and compliance
    assert exchange["BypassSecurityGroupManagerCheck"] == "SwitchParameter"
    assert "BypassSecurityGroupManagerCheck" not in compliance
    assert {"Identity", "Member"} <= set(compliance)
    for cmdlet in ("Get-RoleGroup", "Get-RoleGroupMember", "Add-RoleGroupMember", "Remove-RoleGroupMember"):
        assert ref.parameters("exchange", cmdlet) and ref.parameters("compliance", cmdlet)
    trace = ref.parameters("exchange", "Get-MessageTraceV2")
    assert trace and {"StartingRecipientAddress", "ResultSize", "SenderAddress", "StartDate"} <= set(trace)
    assert ref.parameters("compliance", "Get-MessageTraceV2") is None
    assert ref.parameters("compliance", "Get-Mailbox") is None
    assert ref.parameters("exchange", "Get-NoSuchThing") is None
    rule = ref.parameters("exchange", "Get-InboxRule")
    assert rule and rule["IncludeHidden"] == "SwitchParameter" and "Confirm" not in rule
    assert (ref.parameters("exchange", "Set-Mailbox") or {})["GrantSendOnBehalfTo"] == "MultiValuedProperty"
    assert ref.parameter("exchange", "Set-CASMailbox", "owaenabled") == ("OWAEnabled", "Boolean")
    assert ref.parameter("exchange", "Set-CASMailbox", "Nope") is None


# -- a client that records ----------------------------------------------------------------------------
class _NoGraph(Exception):
    """A collector's Graph request: not what this test is about."""


class Recorder:
    """Enough of TenantClient for the code paths walked here: records each cmdlet call (service, name,
    parameters) and answers it from canned objects; Graph answers canned objects too, or (``graph``
    False) stops the caller."""

    backoff = 0.01
    tenant_id = "0b6f2c3d-4e5f-4a1b-8c9d-0e1f2a3b4c5d"

    def __init__(self, graph: bool = True) -> None:
        self.graph = graph
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.traced = 0

    def service_now(self) -> datetime:
        return UNTIL.replace(tzinfo=UTC)  # the service's clock: the walk's window is within its 90 days

    async def compliance_url(self) -> str:
        return "https://eur02b.ps.compliance.protection.outlook.com"

    def _answer(self, cmdlet: str, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
        if cmdlet == "Get-MessageTraceV2":  # one full answer, so the continuation is asked for too
            self.traced += 1
            if self.traced > 1:
                return []
            size = int(parameters["ResultSize"])
            return [
                {"MessageTraceId": f"m{i}", "RecipientAddress": f"r{i}@fabrikam.example",
                 "Received": "2026-03-01T10:00:00Z"}
                for i in range(size)
            ]  # fmt: skip
        canned: dict[str, list[dict[str, Any]]] = {
            "Get-Mailbox": [
                {"UserPrincipalName": UPN, "PrimarySmtpAddress": UPN, "Identity": "adele", "Name": "adele",
                 "ForwardingSmtpAddress": "smtp:drop@evil.example", "ForwardingAddress": None,
                 "DeliverToMailboxAndForward": True, "GrantSendOnBehalfTo": ["Mallory"]}
            ],
            "Get-InboxRule": [
                {"RuleIdentity": "42", "Identity": "adele\\42", "Name": "x", "Enabled": True, "Priority": 1}
            ],
            "Get-BlockedSenderAddress": [{"SenderAddress": UPN, "Reason": "OutboundSpamLastHour"}],
            "Get-CASMailbox": [{**{p: True for p in PROTOCOLS}, SMTP_AUTH_OFF: None}],
            "Get-MailboxPermission": [
                {"User": DELEGATE, "AccessRights": ["FullAccess"], "IsInherited": False, "Deny": False}
            ],
            "Get-RecipientPermission": [{"Trustee": DELEGATE, "AccessRights": ["SendAs"], "IsInherited": False}],
            "Get-RoleGroup": [{"Name": "Organization Management", "ExchangeObjectId": GROUP_ID}],
            "Get-RoleGroupMember": [{"PrimarySmtpAddress": UPN, "ExternalDirectoryObjectId": USER_ID}],
        }  # fmt: skip
        return canned.get(cmdlet, [])

    async def exo(
        self,
        cmdlet: str,
        parameters: Mapping[str, Any],
        mailbox: str | None = None,
        *,
        idempotent: bool | None = None,
        service: str = "exchange",
    ) -> AsyncIterator[list[dict[str, Any]]]:
        assert service in ("exchange", "compliance")
        self.calls.append((service, cmdlet, dict(parameters)))
        yield self._answer(cmdlet, parameters)

    async def run(
        self,
        cmdlet: str,
        parameters: Mapping[str, Any],
        mailbox: str | None = None,
        *,
        idempotent: bool | None = None,
        service: str = "exchange",
    ) -> list[dict[str, Any]]:
        return [r async for page in self.exo(cmdlet, parameters, mailbox, service=service) for r in page]

    def _graph(self) -> None:
        if not self.graph:
            raise _NoGraph

    async def get(self, path: str, params: Any = None, api: str = "v1.0") -> dict[str, Any]:
        self._graph()
        if path.startswith("/users/"):
            return {"id": USER_ID, "userPrincipalName": UPN, "accountEnabled": True}
        if path == "/organization":
            return {"value": [{"id": self.tenant_id, "displayName": "Contoso"}]}
        if path.startswith("/domains/"):
            return {"id": "contoso.example", "authenticationType": "Managed"}
        return {}

    async def pages(
        self, path: str, params: Any = None, api: str = "v1.0"
    ) -> AsyncIterator[list[dict[str, Any]]]:
        self._graph()
        yield []

    async def post(self, path: str, body: Any, api: str = "v1.0", idempotent: bool = False) -> dict[str, Any]:
        self._graph()
        return {}

    async def patch(self, path: str, body: Any, api: str = "v1.0") -> dict[str, Any]:
        self._graph()
        return {}

    async def delete(self, path: str, api: str = "v1.0") -> dict[str, Any]:
        self._graph()
        return {}

    async def token_claims(self, resource: str = "graph") -> dict[str, Any] | None:
        return None


# -- the walk --------------------------------------------------------------------------------------------
UNTIL = datetime(2026, 3, 20)


async def _collect(client: Recorder) -> None:
    target = Target(UPN, USER_ID, UNTIL - timedelta(days=15), UNTIL)
    for collector in COLLECTORS:
        try:
            async for _ in collector.gather(client, target):  # type: ignore[arg-type]
                pass
        except _NoGraph:
            pass


async def _remediate(client: Recorder, root: Path) -> set[str]:
    """Plan every step on the canned state and apply, then undo, every action that changes something."""
    state = await read_state(client, UPN, tuple(dict.fromkeys(p for ps in PARTS.values() for p in ps)))  # type: ignore[arg-type]
    assert not state.unavailable, state.unavailable
    flag = Flag("flagged by a finding", "test")
    facts = CaseFacts(
        UPN,
        internal_domains=["contoso.example"],
        rules={"42": [flag]},
        forwarding=[Flag("forwarding to drop@evil.example", "test")],
        delegates={DELEGATE: [flag], "mallory": [flag]},
    )
    plan = build(state, facts, parse_steps("all"), root)
    ctx = Context(client, UPN, USER_ID, root, lambda upn, password: None)  # type: ignore[arg-type]
    done = set()
    for action in plan.actions:
        kind = KINDS.get(action.kind)
        if kind is None or action.status != CHANGE:
            continue
        await kind.apply(ctx, action)
        if kind.undo is not None:
            await kind.undo(ctx, action)
        done.add(f"{action.kind}:{action.target.get('service') or action.target.get('right') or ''}")
    return done


def _walk(tmp_path: Path) -> tuple[list[tuple[str, str, dict[str, Any]]], set[str]]:
    async def go() -> tuple[list[tuple[str, str, dict[str, Any]]], set[str]]:
        collecting = Recorder(graph=False)
        await _collect(collecting)
        client = Recorder()
        with Case.open(tmp_path / "case") as case:
            report = await sweep.sweep(client, case)  # type: ignore[arg-type]
            assert report.complete
        done = await _remediate(client, tmp_path)
        await doctor._exchange(client)  # type: ignore[arg-type]
        await doctor._compliance(client)  # type: ignore[arg-type]
        return collecting.calls + client.calls, done

    return asyncio.run(go())


def _fits(kind: str, value: Any) -> bool:
    """Whether a JSON value can bind to a parameter of the reference's type (the types the lab checks)."""
    if kind == "SwitchParameter":
        return isinstance(value, bool)
    if kind == "Boolean":
        return value is None or isinstance(value, bool)
    if kind in ("Int32", "Unlimited"):
        return (isinstance(value, int) and not isinstance(value, bool) and value > 0) or (
            kind == "Unlimited" and value == "Unlimited"
        )
    if kind == "MultiValuedProperty" or kind.endswith("[]"):
        if isinstance(value, dict):  # @{Add=...; Remove=...}
            return bool(value) and {str(k).casefold() for k in value} <= {"add", "remove"}
        items = value if isinstance(value, list) else [value]
        return all(isinstance(v, str) for v in items)
    return value is None or isinstance(value, str | int | float | bool)


def test_every_parameter_reclaim_sends_is_one_the_cmdlet_has(tmp_path: Path) -> None:
    calls, done = _walk(tmp_path)
    assert done >= {
        "remove-forwarding:", "disable-rule:", "unblock-sender:", "disable-protocols:",
        "leave-role-group:exchange", "leave-role-group:compliance",
        "remove-delegate:FullAccess", "remove-delegate:SendAs", "remove-delegate:SendOnBehalf",
    }, done  # fmt: skip
    sent = {(s, c) for s, c, _ in calls}
    assert ("exchange", "Get-MessageTraceV2") in sent and ("compliance", "Get-RoleGroupMember") in sent
    assert any("StartingRecipientAddress" in p for _, c, p in calls if c == "Get-MessageTraceV2")

    wrong: set[tuple[str, str, str]] = set()
    problems: list[str] = []
    for service, cmdlet, params in calls:
        known = ref.parameters(service, cmdlet)
        if known is None:
            problems.append(f"{cmdlet} does not exist in {service}")
            continue
        for name, value in params.items():
            if name not in known:
                wrong.add((service, cmdlet, name))
            elif not _fits(known[name], value):
                problems.append(f"{service} {cmdlet} -{name} ({known[name]}) gets {value!r}")
    assert not problems, problems
    assert wrong <= KNOWN_SENT, f"parameters the cmdlets do not have: {sorted(wrong - KNOWN_SENT)}"
    assert wrong == KNOWN_SENT, f"no longer sent, drop from KNOWN_SENT: {sorted(KNOWN_SENT - wrong)}"

    # a cmdlet named anywhere in the client code must have been reached by the walk
    named = _cmdlets_named_in_source()
    assert named, "the scan found no cmdlet names"
    missed = {name for name in named if name not in {c for _, c in sent}}
    assert not missed, f"cmdlets named in the code but not walked here (add their path): {sorted(missed)}"


def _cmdlets_named_in_source() -> dict[str, list[str]]:
    """Cmdlet names written as string literals in the modules that talk to the tenant (lab excluded)."""
    found: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        if "lab" in path.relative_to(SRC).parts:
            continue
        text = path.read_text(encoding="utf-8")
        if "TenantClient" not in text:
            continue
        for node in ast.walk(ast.parse(text)):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and CMDLET.match(node.value)
                and node.value not in NOT_CMDLETS
            ):
                found.setdefault(node.value, []).append(f"{path.relative_to(SRC)}:{node.lineno}")
    return found


def test_cmdlet_calls_written_out_in_the_source_use_real_parameters() -> None:
    """A second, static look: ``x.exo("Cmdlet", {...})`` / ``x.run(...)`` / ``_cmdlet(...)`` with literal
    parameter names, and per-mailbox tables of (stem, cmdlet, parameter, extras); the service is the
    literal ``service=`` or, when not literal, every service the cmdlet exists in."""
    problems: list[str] = []
    checked = 0

    def check(where: str, cmdlet: str, names: list[str], services: tuple[str, ...]) -> None:
        nonlocal checked
        for service in services:
            known = ref.parameters(service, cmdlet)
            if known is None:
                problems.append(f"{where}: {cmdlet} does not exist in {service}")
                continue
            checked += 1
            problems.extend(f"{where}: {service} {cmdlet} has no -{n}" for n in names if n not in known)

    for path in sorted(SRC.rglob("*.py")):
        if "lab" in path.relative_to(SRC).parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            where = f"{path.relative_to(SRC)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call):
                args = node.args
                first = next(
                    (i for i, a in enumerate(args) if isinstance(a, ast.Constant) and isinstance(a.value, str)
                     and CMDLET.match(a.value) and a.value not in NOT_CMDLETS),
                    None,
                )  # fmt: skip
                if first is None:
                    continue
                cmdlet = str(args[first].value)  # type: ignore[attr-defined]
                names: list[str] = []
                for a in args[first + 1 :]:
                    if isinstance(a, ast.Dict):
                        names += [
                            k.value
                            for k in a.keys
                            if isinstance(k, ast.Constant) and isinstance(k.value, str)
                        ]
                    elif (
                        isinstance(a, ast.Constant)
                        and isinstance(a.value, str)
                        and re.fullmatch(r"[A-Z]\w+", a.value)
                    ):
                        names.append(a.value)  # _cmdlet("Get-X", "Identity", ...)
                names += [k.arg for k in node.keywords if k.arg and k.arg[:1].isupper()]
                service = next((k.value for k in node.keywords if k.arg == "service"), None)
                if isinstance(service, ast.Constant) and isinstance(service.value, str):
                    services: tuple[str, ...] = (service.value,)
                elif service is None:
                    services = ("exchange",)
                else:
                    services = tuple(s for s in ref.SERVICES if ref.parameters(s, cmdlet) is not None)
                if names:
                    check(where, cmdlet, names, services)
            elif isinstance(node, ast.Tuple) and len(node.elts) == 4:  # (stem, cmdlet, parameter, extras)
                _, cmd, param, extra = node.elts
                if (
                    isinstance(cmd, ast.Constant) and isinstance(cmd.value, str) and CMDLET.match(cmd.value)
                    and isinstance(param, ast.Constant) and isinstance(param.value, str)
                    and isinstance(extra, ast.Dict)
                ):  # fmt: skip
                    extras = [
                        k.value
                        for k in extra.keys
                        if isinstance(k, ast.Constant) and isinstance(k.value, str)
                    ]
                    check(where, cmd.value, [param.value, *extras], ("exchange",))
    assert checked >= 10, f"the scan recognised only {checked} calls"
    assert not problems, problems


def test_the_static_scan_sees_the_known_call_sites() -> None:
    named = _cmdlets_named_in_source()
    for cmdlet in ("Get-InboxRule", "Get-MessageTraceV2", "Set-CASMailbox", "Remove-RoleGroupMember"):
        assert cmdlet in named, cmdlet
    assert sweep.PER_MAILBOX and directory.TRACE_RESULT_SIZE
