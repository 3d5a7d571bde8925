"""The lab's Exchange Online writes and Security & Compliance role groups, through the real client:
every write shows in the matching Get- cmdlet, errors are the service's, and ``lab serve``'s flags."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from click.testing import CliRunner

from reclaim.cli.lab import FaultOption, apply_faults, parse_fault
from reclaim.errors import NotFound, PermissionMissing, RequestRejected, TenantError, UnknownParameter
from reclaim.lab import WRITE_PERMISSIONS, Lab, LabTenant, serve
from tests.lablib import lab_client

Record = dict[str, Any]


@pytest.fixture
def tenant() -> LabTenant:
    """A fresh tenant per test: the tests change it."""
    return LabTenant.simulated(users=20, days=3, seed=1, compromised=1)


@pytest.fixture
def lab(tenant: LabTenant) -> Iterator[Lab]:
    with serve(tenant) as running:
        yield running


def run(lab: Lab, cmdlet: str, service: str = "exchange", **parameters: Any) -> list[Record]:
    async def go() -> list[Record]:
        async with lab_client(lab) as client:
            return await client.run(cmdlet, parameters, idempotent=True, service=service)

    return asyncio.run(go())


def _victim(tenant: LabTenant) -> str:
    return min(tenant.ground_truth)


def _user_id(tenant: LabTenant, upn: str) -> str:
    user = tenant.user(upn)
    assert user is not None
    return str(user["id"])


def _name(tenant: LabTenant, upn: str) -> str:
    """The name Exchange shows a mailbox by (role group Members, GrantSendOnBehalfTo)."""
    box = tenant.mailbox(upn)
    assert box is not None
    return str(box["Name"])


def _other(tenant: LabTenant, *not_these: str) -> Record:
    return next(
        b
        for b in tenant.mailboxes
        if b["RecipientTypeDetails"] == "UserMailbox" and b["UserPrincipalName"] not in not_these
    )


# -- Set-Mailbox -------------------------------------------------------------------------------------
def test_set_mailbox_forwarding_and_its_undo(lab: Lab, tenant: LabTenant) -> None:
    victim = _victim(tenant)
    colleague = _other(tenant, victim)
    before = run(lab, "Get-Mailbox", Identity=victim)[0]
    assert before["ForwardingSmtpAddress"]  # the takeover forwards outside

    assert run(lab, "Set-Mailbox", Identity=victim, ForwardingSmtpAddress=None, ForwardingAddress=None,
               DeliverToMailboxAndForward=False, Confirm=False) == []  # fmt: skip
    cleared = run(lab, "Get-Mailbox", Identity=victim)[0]
    assert cleared["ForwardingSmtpAddress"] is None and cleared["ForwardingAddress"] is None
    assert cleared["DeliverToMailboxAndForward"] is False
    assert cleared["WhenChanged"] != before["WhenChanged"]

    run(lab, "Set-Mailbox", Identity=victim, ForwardingSmtpAddress=before["ForwardingSmtpAddress"],
        DeliverToMailboxAndForward=True, ForwardingAddress=colleague["UserPrincipalName"],
        HiddenFromAddressListsEnabled=True)  # fmt: skip
    again = run(lab, "Get-Mailbox", Identity=victim)[0]
    assert again["ForwardingSmtpAddress"] == before["ForwardingSmtpAddress"]  # "smtp:..." kept as is
    assert again["ForwardingAddress"] == colleague["Name"]  # a recipient shows by name
    assert again["DeliverToMailboxAndForward"] is True and again["HiddenFromAddressListsEnabled"] is True
    run(lab, "Set-Mailbox", Identity=victim, ForwardingSmtpAddress="boss@partner.example")
    assert run(lab, "Get-Mailbox", Identity=victim)[0]["ForwardingSmtpAddress"] == "smtp:boss@partner.example"

    with pytest.raises(RequestRejected, match="ForwardingSmtpAddress"):
        run(lab, "Set-Mailbox", Identity=victim, ForwardingSmtpAddress="not an address")
    with pytest.raises(RequestRejected, match="DeliverToMailboxAndForward"):
        run(lab, "Set-Mailbox", Identity=victim, DeliverToMailboxAndForward=None)
    with pytest.raises(NotFound):
        run(lab, "Set-Mailbox", Identity="nobody@contoso.example", ForwardingSmtpAddress=None)


def test_grant_send_on_behalf_whole_list_and_hashtable_form(lab: Lab, tenant: LabTenant) -> None:
    victim = _victim(tenant)
    a = _other(tenant, victim)
    b = _other(tenant, victim, a["UserPrincipalName"])

    def delegates() -> list[str]:
        return list(run(lab, "Get-Mailbox", Identity=victim)[0]["GrantSendOnBehalfTo"])

    run(lab, "Set-Mailbox", Identity=victim, GrantSendOnBehalfTo=[a["UserPrincipalName"]])
    assert delegates() == [a["Name"]]
    run(lab, "Set-Mailbox", Identity=victim, GrantSendOnBehalfTo={"add": [b["Alias"]]})
    assert delegates() == [a["Name"], b["Name"]]
    run(lab, "Set-Mailbox", Identity=victim, GrantSendOnBehalfTo={"Add": [b["UserPrincipalName"]]})
    assert delegates() == [a["Name"], b["Name"]]  # already there: nothing changes
    run(lab, "Set-Mailbox", Identity=victim, GrantSendOnBehalfTo={"remove": [a["UserPrincipalName"]]})
    assert delegates() == [b["Name"]]
    run(lab, "Set-Mailbox", Identity=victim, GrantSendOnBehalfTo=None)
    assert delegates() == []
    with pytest.raises(NotFound):
        run(lab, "Set-Mailbox", Identity=victim, GrantSendOnBehalfTo={"add": ["ghost@contoso.example"]})
    with pytest.raises(RequestRejected, match="GrantSendOnBehalfTo"):
        run(lab, "Set-Mailbox", Identity=victim, GrantSendOnBehalfTo={"replace": []})


# -- inbox rules ---------------------------------------------------------------------------------------
def test_disable_enable_and_remove_inbox_rules_hidden_ones_too(lab: Lab, tenant: LabTenant) -> None:
    victim = _victim(tenant)
    hidden = run(lab, "Get-InboxRule", Mailbox=victim)[0]  # the attacker's
    alias = hidden["Identity"].split("\\")[0]
    tenant.inbox_rules.append({**hidden, "Name": "Newsletters", "Identity": f"{alias}\\1234", "RuleIdentity": "1234",
                               "Priority": int(hidden["Priority"]) + 1})  # fmt: skip
    rules = run(lab, "Get-InboxRule", Mailbox=victim)
    shown = rules[-1]
    tenant.hidden_rules.add(hidden["Identity"])

    # the playbook's form: -Mailbox and the RuleIdentity; the "mailbox\RuleIdentity" form needs no -Mailbox
    run(lab, "Disable-InboxRule", Mailbox=victim, Identity=hidden["RuleIdentity"], Force=True)
    run(
        lab, "Disable-InboxRule", Identity=shown["Identity"], AlwaysDeleteOutlookRulesBlob=True, Confirm=False
    )
    after = {r["Identity"]: r for r in run(lab, "Get-InboxRule", Mailbox=victim, IncludeHidden=True)}
    assert after[hidden["Identity"]]["Enabled"] is False and after[shown["Identity"]]["Enabled"] is False
    assert hidden["Identity"] not in {r["Identity"] for r in run(lab, "Get-InboxRule", Mailbox=victim)}

    run(lab, "Enable-InboxRule", Mailbox=victim, Identity=shown["Name"])
    assert run(lab, "Get-InboxRule", Mailbox=victim, Identity=shown["RuleIdentity"])[0]["Enabled"] is True

    run(lab, "Remove-InboxRule", Mailbox=victim, Identity=hidden["RuleIdentity"], Confirm=False)
    left = run(lab, "Get-InboxRule", Mailbox=victim, IncludeHidden=True)
    assert hidden["Identity"] not in {r["Identity"] for r in left} and len(left) == len(rules) - 1
    assert hidden["Identity"] not in tenant.hidden_rules
    with pytest.raises(NotFound):
        run(lab, "Disable-InboxRule", Mailbox=victim, Identity=hidden["RuleIdentity"])


# -- Set-CASMailbox ---------------------------------------------------------------------------------------
def test_set_cas_mailbox_protocols(lab: Lab, tenant: LabTenant) -> None:
    victim = _victim(tenant)
    off: dict[str, Any] = {"MAPIEnabled": False, "EwsEnabled": False, "ActiveSyncEnabled": False, "ImapEnabled": False,
           "PopEnabled": False, "OWAEnabled": False, "OWAforDevicesEnabled": False,
           "UniversalOutlookEnabled": False, "OutlookMobileEnabled": False, "MacOutlookEnabled": False,
           "SmtpClientAuthenticationDisabled": True}  # fmt: skip
    run(lab, "Set-CASMailbox", Identity=victim, **off)
    cas = run(lab, "Get-CASMailbox", Identity=victim)[0]
    assert {k: cas[k] for k in off} == off
    run(lab, "Set-CASMailbox", Identity=victim, PopEnabled=True, SmtpClientAuthenticationDisabled=None)
    cas = run(lab, "Get-CASMailbox", Identity=victim)[0]
    assert cas["PopEnabled"] is True and cas["SmtpClientAuthenticationDisabled"] is None
    assert cas["ImapEnabled"] is False
    with pytest.raises(RequestRejected, match="ImapEnabled"):
        run(lab, "Set-CASMailbox", Identity=victim, ImapEnabled=None)


# -- Restricted entities -------------------------------------------------------------------------------------
def test_remove_blocked_sender_then_not_found(lab: Lab, tenant: LabTenant) -> None:
    victim = _victim(tenant)
    tenant.blocked_senders.append(
        {"SenderAddress": victim, "Reason": "OutboundSpamLast24Hours=501", "CreatedDatetime": "2026-10-10T08:00:00Z",
         "ChangedDatetime": None, "TemporaryBlock": False, "InternalCount": 0, "ExternalCount": 501}
    )  # fmt: skip
    assert len(run(lab, "Get-BlockedSenderAddress", SenderAddress=victim)) == 1
    assert run(lab, "Remove-BlockedSenderAddress", SenderAddress=victim.upper()) == []
    assert run(lab, "Get-BlockedSenderAddress", SenderAddress=victim) == []
    with pytest.raises(NotFound):  # not on the list (any more): 404 ManagementObjectNotFoundException
        run(lab, "Remove-BlockedSenderAddress", SenderAddress=victim)


# -- delegates: FullAccess and SendAs ---------------------------------------------------------------------------
def test_mailbox_permissions_add_and_remove(lab: Lab, tenant: LabTenant) -> None:
    victim = _victim(tenant)
    intruder = _other(tenant, victim)
    upn = intruder["UserPrincipalName"]
    added = run(lab, "Add-MailboxPermission", Identity=victim, User=intruder["Alias"], AccessRights=["FullAccess"],
                InheritanceType="All", AutoMapping=False)  # fmt: skip
    assert added[0]["User"] == upn and added[0]["AccessRights"] == ["FullAccess"]
    run(lab, "Add-MailboxPermission", Identity=victim, User=upn, AccessRights="ReadPermission")
    entries = run(lab, "Get-MailboxPermission", Identity=victim, User=upn)
    assert [e["AccessRights"] for e in entries] == [["FullAccess, ReadPermission"]]  # one merged entry

    with pytest.raises(UnknownParameter, match="BypassMailboxAnchoring"):  # Connect-ExchangeOnline's, not this cmdlet's
        run(lab, "Remove-MailboxPermission", Identity=victim, User=upn, AccessRights=["FullAccess"],
            BypassMailboxAnchoring=True)  # fmt: skip
    run(lab, "Remove-MailboxPermission", Identity=victim, User=upn, AccessRights=["FullAccess"],
        InheritanceType="All", Confirm=False)  # fmt: skip
    assert [e["AccessRights"] for e in run(lab, "Get-MailboxPermission", Identity=victim, User=upn)] == [
        ["ReadPermission"]
    ]
    run(lab, "Remove-MailboxPermission", Identity=victim, User=upn, AccessRights=["ReadPermission"])
    assert run(lab, "Get-MailboxPermission", Identity=victim, User=upn) == []
    assert any(e["User"] == "NT AUTHORITY\\SELF" for e in run(lab, "Get-MailboxPermission", Identity=victim))
    run(lab, "Remove-MailboxPermission", Identity=victim, User=upn, AccessRights=["FullAccess"])  # only warns
    with pytest.raises(NotFound):
        run(
            lab,
            "Remove-MailboxPermission",
            Identity=victim,
            User="ghost@contoso.example",
            AccessRights="FullAccess",
        )
    with pytest.raises(RequestRejected, match="AccessRights"):
        run(lab, "Add-MailboxPermission", Identity=victim, User=upn, AccessRights=["Everything"])


def test_recipient_permissions_send_as(lab: Lab, tenant: LabTenant) -> None:
    victim = _victim(tenant)
    intruder = _other(tenant, victim)
    upn = intruder["UserPrincipalName"]
    self_entry = run(lab, "Get-RecipientPermission", Identity=victim)
    assert [(e["Trustee"], e["AccessRights"], e["AccessControlType"]) for e in self_entry] == [
        ("NT AUTHORITY\\SELF", ["SendAs"], "Allow")
    ]
    assert set(self_entry[0]) >= {"Identity", "Trustee", "AccessControlType", "AccessRights", "IsInherited",
                                  "InheritanceType"}  # fmt: skip

    added = run(
        lab, "Add-RecipientPermission", Identity=victim, Trustee=intruder["Alias"], AccessRights=["SendAs"]
    )
    assert added[0]["Trustee"] == upn
    assert [e["Trustee"] for e in run(lab, "Get-RecipientPermission", Trustee=upn)] == [upn]
    assert len(run(lab, "Get-RecipientPermission", Identity=victim, AccessRights="SendAs")) == 2

    run(
        lab,
        "Remove-RecipientPermission",
        Identity=victim,
        Trustee=upn,
        AccessRights=["SendAs"],
        Confirm=False,
    )
    assert run(lab, "Get-RecipientPermission", Identity=victim, Trustee=upn) == []
    with pytest.raises(RequestRejected, match="AccessRights"):
        run(lab, "Add-RecipientPermission", Identity=victim, Trustee=upn, AccessRights=["FullAccess"])


def test_recipient_permissions_load_from_an_export(tmp_path: Any) -> None:
    import orjson

    from reclaim import tenantsim

    tenantsim.write_tenant(tmp_path, 6, 2, 1)
    entry = {"Identity": "info", "Trustee": "someone@contoso.example", "AccessControlType": "Allow",
             "AccessRights": ["SendAs"], "IsInherited": False, "InheritanceType": "None"}  # fmt: skip
    (tmp_path / "recipient-permissions.json").write_bytes(orjson.dumps([entry]))
    assert LabTenant.from_folder(tmp_path).recipient_permissions == [entry]


# -- role groups ---------------------------------------------------------------------------------------------
def test_exchange_role_groups_seeded_with_it_admins(lab: Lab, tenant: LabTenant) -> None:
    admins = {u["userPrincipalName"] for u in tenant.users if u.get("jobTitle") == "IT administrator"}
    assert admins
    groups = {g["Name"]: g for g in run(lab, "Get-RoleGroup", ResultSize="Unlimited")}
    assert {"Organization Management", "Recipient Management", "View-Only Organization Management",
            "Compliance Management", "Discovery Management", "Help Desk", "Hygiene Management",
            "Records Management", "Security Administrator", "Security Reader"} <= set(groups)  # fmt: skip
    org = groups["Organization Management"]
    assert set(org) >= {"Name", "DisplayName", "Identity", "Guid", "ExchangeObjectId", "Members", "Roles",
                        "RoleGroupType", "Description", "ManagedBy", "WhenChanged"}  # fmt: skip
    assert org["RoleGroupType"] == "Standard" and "Role Management" in org["Roles"]
    members = run(lab, "Get-RoleGroupMember", Identity="Organization Management")
    assert {m["PrimarySmtpAddress"] for m in members} == admins
    assert {m["Name"] for m in members} == set(org["Members"])
    by_upn = {m["PrimarySmtpAddress"]: m for m in members}
    for upn in admins:
        assert by_upn[upn]["ExternalDirectoryObjectId"] == _user_id(tenant, upn)
        assert by_upn[upn]["RecipientType"] == "UserMailbox"
    assert run(lab, "Get-RoleGroupMember", Identity="Help Desk") == []
    with pytest.raises(NotFound):
        run(lab, "Get-RoleGroup", Identity="No Such Group")


def test_role_group_members_added_and_removed_by_any_name(lab: Lab, tenant: LabTenant) -> None:
    victim = _victim(tenant)
    user_id = _user_id(tenant, victim)
    run(
        lab,
        "Add-RoleGroupMember",
        Identity="Recipient Management",
        Member=user_id,
        BypassSecurityGroupManagerCheck=True,
    )
    members = run(lab, "Get-RoleGroupMember", Identity="Recipient Management")
    assert [m["ExternalDirectoryObjectId"] for m in members] == [user_id]
    assert run(lab, "Get-RoleGroup", Identity="recipient management")[0]["Members"] == [members[0]["Name"]]
    with pytest.raises(RequestRejected, match="already a member"):
        run(lab, "Add-RoleGroupMember", Identity="Recipient Management", Member=victim)
    run(
        lab,
        "Remove-RoleGroupMember",
        Identity="Recipient Management",
        Member=members[0]["Alias"],
        Confirm=False,
    )
    assert run(lab, "Get-RoleGroupMember", Identity="Recipient Management") == []
    with pytest.raises(NotFound, match="isn't a member"):
        run(lab, "Remove-RoleGroupMember", Identity="Recipient Management", Member=victim)
    with pytest.raises(NotFound):
        run(lab, "Add-RoleGroupMember", Identity="Recipient Management", Member="ghost@contoso.example")


def test_tenant_method_puts_a_user_in_a_role_group(tenant: LabTenant) -> None:
    victim = _victim(tenant)
    assert tenant.add_role_group_member("exchange", "Organization Management", victim) is True
    assert tenant.add_role_group_member("exchange", "Organization Management", victim) is False
    assert tenant.add_role_group_member("compliance", "eDiscovery Manager", victim) is True
    with serve(tenant) as lab:
        upns = {
            m["PrimarySmtpAddress"]
            for m in run(lab, "Get-RoleGroupMember", Identity="Organization Management")
        }
        assert victim in upns
        found = run(lab, "Get-RoleGroupMember", "compliance", Identity="eDiscoveryManager")
        assert [m["PrimarySmtpAddress"] for m in found] == [victim]
    with pytest.raises(KeyError):
        tenant.add_role_group_member("compliance", "Organization Management (Exchange)", victim)


def test_the_audit_log_decides_role_group_membership(tmp_path: Any) -> None:
    """The bec scenario's UAL has no Add-RoleGroupMember today: its victim is in no role group; a record
    the log holds is replayed onto the groups."""
    tenant = LabTenant.simulated(users=20, days=3, seed=1, compromised=1)
    victim = _victim(tenant)
    assert not any(r.get("Operation") == "Add-RoleGroupMember" for r in tenant.audit_records)
    assert all(_name(tenant, victim) not in g["Members"] for gs in tenant.role_groups.values() for g in gs)
    record = {"CreationTime": "2026-10-06T10:00:00", "Operation": "Add-RoleGroupMember", "Workload": "Exchange",
              "ResultStatus": "True", "UserId": victim,
              "Parameters": [{"Name": "Identity", "Value": "Organization Management"},
                             {"Name": "Member", "Value": victim}]}  # fmt: skip
    replayed = LabTenant(users=tenant.users, mailboxes=tenant.mailboxes, audit_records=[record])
    group = replayed.role_group("exchange", "Organization Management")
    assert group is not None and _name(tenant, victim) in group["Members"]


def test_security_and_compliance_role_groups(lab: Lab, tenant: LabTenant) -> None:
    victim = _victim(tenant)
    groups = {g["DisplayName"]: g for g in run(lab, "Get-RoleGroup", "compliance")}
    assert {"Organization Management", "Compliance Administrator", "eDiscovery Manager", "Security Administrator",
            "Security Reader", "Compliance Data Administrator", "Reviewer"} <= set(groups)  # fmt: skip
    admins = {u["userPrincipalName"] for u in tenant.users if u.get("jobTitle") == "IT administrator"}
    org = run(lab, "Get-RoleGroupMember", "compliance", Identity="Organization Management")
    assert {m["PrimarySmtpAddress"] for m in org} == admins
    # the two services keep their own groups
    run(lab, "Add-RoleGroupMember", "compliance", Identity="ComplianceAdministrator", Member=victim)
    found = run(lab, "Get-RoleGroup", "compliance", Identity="Compliance Administrator")[0]
    assert found["Members"] == [_name(tenant, victim)]
    with pytest.raises(NotFound):
        run(lab, "Get-RoleGroup", Identity="Compliance Administrator")  # not an Exchange Online group
    run(lab, "Remove-RoleGroupMember", "compliance", Identity="ComplianceAdministrator", Member=victim)
    assert run(lab, "Get-RoleGroupMember", "compliance", Identity="ComplianceAdministrator") == []
    with pytest.raises(RequestRejected, match="not recognized"):
        run(lab, "Get-Mailbox", "compliance", Identity=victim)
    assert any(path.startswith("/scc/adminapi/beta/") for _, path, _ in lab.requests)


def test_compliance_role_and_exchange_permission_are_required(lab: Lab) -> None:
    lab.compliance_role = False
    with pytest.raises(PermissionMissing, match="Compliance Administrator"):
        run(lab, "Get-RoleGroup", "compliance")
    assert run(lab, "Get-RoleGroup")  # Exchange Online does not need that role
    lab.compliance_role = True
    lab.granted.discard("Exchange.ManageAsApp")
    with pytest.raises(PermissionMissing, match=r"Exchange\.ManageAsApp"):
        run(lab, "Get-RoleGroup", "compliance")


# -- the protocol --------------------------------------------------------------------------------------------
def test_unknown_parameters_and_cmdlets_are_still_refused(lab: Lab, tenant: LabTenant) -> None:
    victim = _victim(tenant)
    with pytest.raises(RequestRejected, match="ForwardingEverything"):
        run(lab, "Set-Mailbox", Identity=victim, ForwardingEverything=True)
    with pytest.raises(RequestRejected, match="Filter"):
        run(lab, "Get-RoleGroup", "compliance", Filter="Name -like '*'")
    with pytest.raises(RequestRejected, match="not recognized"):
        run(lab, "New-InboxRule", Mailbox=victim, Name="x")
    with pytest.raises(RequestRejected, match="Identity"):
        run(lab, "Set-CASMailbox", PopEnabled=False)
    assert run(lab, "Get-Mailbox", Identity=victim)[0]["ForwardingSmtpAddress"]  # nothing changed


def test_paging_after_a_write_shows_the_new_state(lab: Lab, tenant: LabTenant) -> None:
    lab.page_size = 5  # Get-Mailbox takes several pages
    first = run(lab, "Get-Mailbox", ResultSize="Unlimited")
    victim = _victim(tenant)
    run(lab, "Set-Mailbox", Identity=victim, HiddenFromAddressListsEnabled=True)
    second = run(lab, "Get-Mailbox", ResultSize="Unlimited")
    assert len(first) == len(second) == len(tenant.mailboxes)
    hidden = {b["UserPrincipalName"] for b in second if b["HiddenFromAddressListsEnabled"]}
    assert hidden == {victim}
    assert not any(b["HiddenFromAddressListsEnabled"] for b in first)  # answers are copies


def test_concurrent_writes_to_one_role_group_all_land(lab: Lab, tenant: LabTenant) -> None:
    people = [b["UserPrincipalName"] for b in tenant.mailboxes if b["RecipientTypeDetails"] == "UserMailbox"][
        :12
    ]

    def add(upn: str) -> None:
        run(lab, "Add-RoleGroupMember", Identity="Help Desk", Member=upn)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(add, people))
    members = run(lab, "Get-RoleGroupMember", Identity="Help Desk", ResultSize="Unlimited")
    assert sorted(m["PrimarySmtpAddress"] for m in members) == sorted(people)


def test_errors_are_tenant_errors_with_the_service_codes(lab: Lab, tenant: LabTenant) -> None:
    with pytest.raises(TenantError, match="ManagementObjectNotFound"):
        run(lab, "Get-RoleGroupMember", Identity="Nobody's Group")


# -- reclaim lab serve --------------------------------------------------------------------------------------
def test_fault_flags_parse() -> None:
    assert parse_fault("throttle", "/exo:3") == FaultOption("throttle", "/exo", 3, 1)
    assert parse_fault("throttle", "/graph/v1.0/users:2:7") == FaultOption(
        "throttle", "/graph/v1.0/users", 2, 7
    )
    assert parse_fault("fail", "/scc:1") == FaultOption("fail", "/scc", 1, 503)
    assert parse_fault("fail", "/graph:4:500") == FaultOption("fail", "/graph", 4, 500)
    assert parse_fault("drop", "/exo:1") == FaultOption("drop", "/exo", 1)
    for kind, bad, why in [
        ("throttle", "/exo", "PATH_PREFIX:COUNT"),
        ("throttle", "exo:3", "must start with /"),
        ("throttle", "/exo:x", "COUNT"),
        ("throttle", "/exo:0", "COUNT"),
        ("throttle", "/exo:1:-1", "RETRY_AFTER"),
        ("fail", "/exo:1:200", "STATUS"),
        ("fail", "/exo:1:503:9", "PATH_PREFIX:COUNT"),
        ("drop", "/exo:1:5", "PATH_PREFIX:COUNT"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_fault(kind, bad)


def test_lab_serve_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    from reclaim.cli.main import cli

    served: list[Lab] = []

    def stop(self: Lab) -> None:
        served.append(self)
        self.stop()
        raise KeyboardInterrupt

    monkeypatch.setattr(Lab, "serve_forever", stop)
    result = CliRunner().invoke(cli, ["lab", "serve", "--users", "6", "--days", "2", "--latency", "250",
                                      "--page-size", "7", "--throttle", "/exo:2:3", "--fail", "/graph:1",
                                      "--drop", "/scc:1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    lab = served[0]
    assert "--scc-url " + lab.scc_url in " ".join(result.output.split())  # the console wraps lines
    assert lab.page_size == 7 and lab.faults.delay == 0.25
    assert lab.granted >= WRITE_PERMISSIONS  # a live demo can remediate
    assert [lab.faults.take("/exo/x") for _ in range(3)][2] is None
    fault = lab.faults.take("/graph/v1.0/users")
    assert fault is not None and fault.status == 503 and fault.retry_after is None
    dropped = lab.faults.take("/scc/adminapi")
    assert dropped is not None and dropped.drop

    for flag, value in [("--fail", "/graph:1:200"), ("--throttle", "exo:1"), ("--drop", "/x:1:2"),
                        ("--page-size", "0"), ("--latency", "-1")]:  # fmt: skip
        bad = CliRunner().invoke(cli, ["lab", "serve", flag, value])
        assert bad.exit_code == 2 and flag in bad.output, bad.output
    assert not served[1:]  # a bad value stops before the lab starts


def test_apply_faults_orders_and_configures(tenant: LabTenant) -> None:
    lab = Lab(tenant)
    try:
        apply_faults(lab, 0, [parse_fault("fail", "/exo:1:502"), parse_fault("throttle", "/exo:1")])
        first, second = lab.faults.take("/exo/a"), lab.faults.take("/exo/a")
        assert first is not None and first.status == 502
        assert second is not None and second.status == 429 and second.retry_after == 1
    finally:
        lab.stop()
