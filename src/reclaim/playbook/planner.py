"""From the live state and the case's findings to a plan: per step, what is there now, what it should
be, and why. Nothing here writes to the tenant."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from reclaim.playbook.actions import (
    ACTIVATED,
    FORWARDING,
    METHOD_SEGMENTS,
    PERMANENT,
    PROTOCOLS,
    SMTP_AUTH_OFF,
    TIME_BOUND,
    assignment_kind,
    delegate_entries,
)
from reclaim.playbook.facts import CaseFacts, Flag
from reclaim.playbook.model import ALREADY, CHANGE, INFO, RETRY, SKIP, Action, Plan
from reclaim.playbook.state import PARTS, UserState

REASONS_SHOWN = 3
# how an active role is held, as R6's titles say it
_HELD_AS = {
    PERMANENT: "",
    TIME_BOUND: " (time-bound, until {end})",
    ACTIVATED: " (activated in PIM, until {end})",
}


def _why(flags: list[Flag]) -> list[str]:
    return list(dict.fromkeys(f"{f.reason} [{f.rule}]" for f in flags))


def _verdict_why(facts: CaseFacts) -> list[str]:
    head = f"verdict {facts.verdict} (score {facts.score})"
    return [head, *facts.reasons[:REASONS_SHOWN]]


def _time(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=None) if parsed.tzinfo else parsed  # case times are naive UTC


class _Planner:
    def __init__(self, state: UserState, facts: CaseFacts, case_root: Path) -> None:
        self.s, self.f, self.case_root = state, facts, case_root
        self.actions: list[Action] = []
        self.notes: list[str] = []

    def add(
        self,
        key: str,
        step: str,
        kind: str,
        title: str,
        *,
        status: str = CHANGE,
        lane: str = "identity",
        target: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
        desired: dict[str, Any] | None = None,
        why: list[str] | None = None,
        reason: str = "",
    ) -> None:
        self.actions.append(
            Action(
                f"{step}:{key}",
                step,
                kind,
                title,
                target or {},
                before or {},
                desired or {},
                status,
                why or [],
                reason,
                lane,
            )
        )

    def missing(self, step: str) -> str | None:
        """Why ``step`` cannot be planned: a part it needs could not be read."""
        gaps = [f"{p}: {self.s.unavailable[p]}" for p in PARTS.get(step, ()) if p in self.s.unavailable]
        return "; ".join(gaps) or None

    # -- the steps ------------------------------------------------------------------------------
    def r1(self) -> None:
        user = self.s.user
        domain = self.s.get("domain") or {}
        federated = str(domain.get("authenticationType") or "").lower() == "federated"
        synced = bool(user.get("onPremisesSyncEnabled"))
        before = {k: user.get(k) for k in ("lastPasswordChangeDateTime", "onPremisesSyncEnabled")}
        if "domain" in self.s.unavailable:
            self.notes.append(
                f"could not tell whether the domain is federated: {self.s.unavailable['domain']}"
            )
        if federated or synced:
            where = "the federation service (on-premises)" if federated else "on-premises Active Directory"
            self.add(
                "password",
                "R1",
                "reset-password",
                "Reset the password",
                status=SKIP,
                before=before,
                reason=f"the account is {'federated' if federated else 'synced from on-premises'}: "
                f"change the password in {where}; Reclaim writes nothing in the cloud",
            )
        else:
            self.add(
                "password",
                "R1",
                "reset-password",
                "Reset the password; change required at next sign-in",
                before=before,
                desired={"credential": "new, random, never mailed or stored; change at next sign-in"},
                why=_verdict_why(self.f),
            )
        app_passwords = [f.summary for f in self.f.about("app-password-created")]
        if app_passwords:
            self.add(
                "app-passwords",
                "R1",
                "report",
                "App passwords were created",
                status=INFO,
                before={"found": app_passwords},
                reason="a password reset does not revoke app passwords: the user must delete them "
                "(My Sign-Ins > Security info) and create new ones if still needed",
            )
        methods = self.s.get("methods")
        if methods is None and "methods" in self.s.unavailable:
            self.notes.append(f"MFA registration not read: {self.s.unavailable['methods']}")
        elif methods is not None:
            others = [m for m in methods if m.get("@odata.type") in METHOD_SEGMENTS]
            recent = [m for m in others if self._in_window(m)]
            listed = [self._method_line(m) for m in others]
            reason = (
                "no MFA method registered: have the user register one from a trusted device"
                if not others
                else f"{len(recent)} registered during the compromise: remove with --steps methods"
                if recent
                else "none registered during the compromise window"
            )
            self.add(
                "mfa",
                "R1",
                "report",
                "MFA registration",
                status=INFO,
                before={"methods": listed},
                reason=reason,
            )

    def _in_window(self, method: dict[str, Any]) -> bool:
        created = _time(method.get("createdDateTime"))
        start = self.f.window_start
        return created is not None and start is not None and created >= start

    @staticmethod
    def _method_line(m: dict[str, Any]) -> str:
        kind = str(m.get("@odata.type", "")).rsplit(".", 1)[-1].replace("AuthenticationMethod", "")
        what = m.get("phoneNumber") or m.get("displayName") or m.get("emailAddress") or m.get("model") or ""
        return f"{kind} {what} (registered {m.get('createdDateTime') or 'at an unknown time'})".replace(
            "  ", " "
        )

    def sessions(self) -> None:
        self.add(
            "revoke",
            "sessions",
            "revoke-sessions",
            "Revoke all sign-in sessions and refresh tokens",
            before={"signInSessionsValidFromDateTime": self.s.user.get("signInSessionsValidFromDateTime")},
            desired={"signInSessionsValidFromDateTime": "now"},
            why=["tokens the attacker holds stay valid after a password reset until revoked"],
        )

    def methods(self) -> None:
        if self.f.window_start is None:
            self.notes.append(
                "methods: the findings date no compromise window, so no method is removed (give --since)"
            )
            return
        why = [
            f"{f.summary} [{f.rule.id}]" for f in self.f.about("auth-method-recent", "mfa-method-registered")
        ]
        for m in self.s.get("methods") or []:
            segment = METHOD_SEGMENTS.get(str(m.get("@odata.type")))
            if segment is None or not self._in_window(m):
                continue
            self.add(
                f"method:{m['id']}",
                "methods",
                "remove-method",
                f"Remove {self._method_line(m)}",
                target={"id": m["id"], "segment": segment},
                before=m,
                desired={"present": False},
                why=[
                    f"registered after the compromise began ({self.f.window_start:%Y-%m-%d %H:%M} UTC)",
                    *why,
                ],
            )

    def r2(self) -> None:
        box = self.s.get("mailbox")
        if box is None:
            self.notes.append("R2: the user has no mailbox")
            return
        before = {k: box.get(k) for k in FORWARDING}
        target = str(box.get("ForwardingSmtpAddress") or box.get("ForwardingAddress") or "")
        if not target:
            self.add(
                "forwarding",
                "R2",
                "remove-forwarding",
                "Mailbox forwarding",
                status=ALREADY,
                lane="mailbox",
                before=before,
                reason="no forwarding set",
            )
            return
        address = target.split(":", 1)[-1]
        external = "@" in address and not self.f.is_internal(address)
        # a finding counts when it names this address: one about forwarding set earlier elsewhere does not
        why = _why([f for f in self.f.forwarding if address.casefold() in f.reason.casefold()])
        if external:
            why.append(f"{address} is outside the tenant's domains")
        status, reason = (
            (CHANGE, "")
            if why
            else (SKIP, f"forwarding to {address} (internal) is not flagged by any finding: left as it is")
        )
        self.add(
            "forwarding",
            "R2",
            "remove-forwarding",
            f"Remove mailbox forwarding to {address}",
            status=status,
            lane="mailbox",
            before=before,
            why=why,
            reason=reason,
            desired={
                "ForwardingSmtpAddress": None,
                "ForwardingAddress": None,
                "DeliverToMailboxAndForward": False,
            },
        )

    def r3(self) -> None:
        rules = self.s.get("rules") or []
        untouched = 0
        for rule in rules:
            keys = {str(rule.get(k) or "").casefold() for k in ("RuleIdentity", "Identity", "Name")} - {""}
            flags = [flag for k in keys for flag in self.f.rules.get(k, [])]
            if not flags:
                untouched += 1
                continue
            enabled = rule.get("Enabled") is not False
            self.add(
                f"rule:{rule.get('RuleIdentity')}",
                "R3",
                "disable-rule",
                f"Disable inbox rule '{rule.get('Name')}'",
                status=CHANGE if enabled else ALREADY,
                lane="mailbox",
                target={"rule_identity": str(rule.get("RuleIdentity")), "name": rule.get("Name")},
                before=rule,
                desired={"Enabled": False},
                why=_why(flags),
                reason="" if enabled else "already disabled",
            )
        if untouched:
            self.notes.append(
                f"R3: {untouched} other inbox rule(s) not flagged by any finding: left untouched"
            )
        if not self.f.findings:
            self.notes.append(
                "R3: the case holds no findings for this user, so no rule is known to be "
                "suspicious: run reclaim investigate --tenant ... --user first"
            )

    def r4(self) -> None:
        entries = self.s.get("blocked") or []
        why = [f"{f.summary} [{f.rule.id}]" for f in self.f.about("restricted-from-sending")]
        self.add(
            "unblock",
            "R4",
            "unblock-sender",
            "Remove the mailbox from the restricted senders",
            status=CHANGE if entries else ALREADY,
            lane="mailbox",
            before={"entries": entries},
            desired={"entries": []},
            why=why or (["the mailbox is on the Restricted entities list"] if entries else []),
            reason="" if entries else "not restricted",
        )

    def r5(self) -> None:
        enabled = self.s.user.get("accountEnabled")
        self.add(
            "block-signin",
            "R5",
            "block-signin",
            "Block sign-in",
            status=ALREADY if enabled is False else CHANGE,
            before={"accountEnabled": enabled},
            desired={"accountEnabled": False},
            why=["optional step R5, chosen with --steps"],
            reason="already blocked" if enabled is False else "",
        )
        cas = self.s.get("cas")
        if cas is None:
            self.notes.append("R5: the user has no mailbox: no protocol to disable")
            return
        desired: dict[str, Any] = {p: False for p in PROTOCOLS} | {SMTP_AUTH_OFF: True}
        before = {k: cas.get(k) for k in desired}
        done = all(before[k] == v for k, v in desired.items())
        self.add(
            "protocols",
            "R5",
            "disable-protocols",
            "Disable MAPI, EWS, ActiveSync, IMAP, POP, Outlook on the web and SMTP AUTH",
            status=ALREADY if done else CHANGE,
            lane="mailbox",
            before=before,
            desired=desired,
            why=["optional step R5: no client can reach the mailbox until it is safe"],
            reason="already disabled" if done else "",
        )

    def r6(self) -> None:
        flagged = [f"{f.summary} [{f.rule.id}]" for f in self.f.about("admin-role-added")]
        why = ["recorded in the journal, restored by reclaim rollback", *flagged]

        def remove(
            r: dict[str, Any], key: str, kind: str, title: str, held: dict[str, Any], times: dict[str, Any]
        ) -> None:
            name = (r.get("roleDefinition") or {}).get("displayName") or r.get("roleDefinitionId")
            self.add(
                f"{key}:{r['id']}",
                "R6",
                kind,
                title.format(name=name),
                lane="roles",
                target={
                    "id": r["id"],
                    "role_id": r.get("roleDefinitionId"),
                    "scope": r.get("directoryScopeId") or "/",
                    "role_name": name,
                    **held,
                },
                before={**r, **times},  # with the schedule that rollback makes again
                desired={"assigned": False} if key == "role" else {"eligible": False},
                why=why,
            )

        # how each active assignment is held, from its schedule instance (none read: permanent)
        instances = {str(i.get("roleAssignmentOriginId")): i for i in self.s.get("role_instances") or []}
        for r in self.s.get("roles") or []:
            instance = instances.get(str(r["id"])) or {}
            held = assignment_kind(instance)
            title = "Remove Entra role {name}" + _HELD_AS[held].format(end=instance.get("endDateTime"))
            times = {k: instance.get(k) for k in ("assignmentType", "startDateTime", "endDateTime")}
            remove(r, "role", "remove-role", title, {"assignment": held}, times)
        for r in self.s.get("eligible") or []:
            end = ((r.get("scheduleInfo") or {}).get("expiration") or {}).get("endDateTime")
            remove(
                r,
                "eligible",
                "remove-eligibility",
                "Remove PIM eligibility for {name}",
                {},
                {"endDateTime": end},
            )
        for service, part, label in (
            ("exchange", "exchange_groups", "Exchange"),
            ("compliance", "compliance_groups", "Security & Compliance"),
        ):
            for g in self.s.get(part) or []:
                gid = str(g.get("ExchangeObjectId") or g.get("Guid") or g.get("Name"))
                self.add(
                    f"{service}-group:{gid}",
                    "R6",
                    "leave-role-group",
                    f"Remove from the {label} role group {g.get('Name')}",
                    lane="roles",
                    target={"service": service, "group": g.get("Name"), "group_id": gid},
                    before={k: g.get(k) for k in ("Name", "Guid", "ExchangeObjectId", "Description")},
                    desired={"member": False},
                    why=why,
                )

    def persistence(self) -> None:
        for g in self.s.get("grants") or []:
            flags = self.f.grants.get(str(g.get("id")).casefold(), [])
            if flags:
                self.add(
                    f"grant:{g['id']}",
                    "persistence",
                    "remove-grant",
                    f"Remove the OAuth grant of {g.get('clientId')} ({g.get('scope')})",
                    lane="grants",
                    target={"id": g["id"]},
                    before=g,
                    desired={"present": False},
                    why=_why(flags),
                )
        for d in delegate_entries(self.s):
            flags = self.f.delegates.get(d["delegate"].casefold(), [])
            if flags:
                self.add(
                    f"delegate:{d['right']}:{d['delegate']}",
                    "persistence",
                    "remove-delegate",
                    f"Remove {d['right']} of {d['delegate']}",
                    lane="mailbox",
                    target=d,
                    before=d,
                    desired={"present": False},
                    why=_why(flags),
                )

    def r7(self) -> None:
        data = {
            "window_start": f"{self.f.window_start:%Y-%m-%d %H:%M}" if self.f.window_start else None,
            "recipients": [vars(r) for r in self.f.recipients],
            "contact_changes": [
                f.summary for f in self.f.about("profile-contact-changed", "display-name-changed")
            ],
            "app_passwords": [f.summary for f in self.f.about("app-password-created")],
            "persistence": [
                f"{f.summary} [{f.rule.id}]"
                for f in self.f.about("oauth-grant-mail-scopes", "mailbox-delegate-added", "app-reads-mail")
            ],
        }
        external = sum(1 for r in self.f.recipients if r.external)
        self.add(
            "follow-up",
            "R7",
            "write-followup",
            f"Write the follow-up: {len(self.f.recipients)} recipient{'s' * (len(self.f.recipients) != 1)} "
            f"({external} external), a notice "
            "draft (never sent), contact changes and persistence to review",
            lane="case",
            target={"case_root": str(self.case_root)},
            before=data,
            why=["mail sent during the compromise may have reached contacts"],
        )


def build(state: UserState, facts: CaseFacts, steps: tuple[str, ...], case_root: Path) -> Plan:
    p = _Planner(state, facts, case_root)
    for step in steps:
        gap = p.missing(step)
        needed = PARTS.get(step, ())
        # a step goes on with what it could read when it reads several parts (R1 without the MFA list,
        # R6 without Security & Compliance); with nothing it needs, it is skipped with the reason
        if gap and (len(needed) < 2 or all(part in state.unavailable for part in needed)):
            # throttled or down: not a step to leave out, but one not done yet
            passing = all(part in state.passing for part in needed if part in state.unavailable)
            title = f"Step {step} could not be planned"
            p.add("unreadable", step, "report", title, status=RETRY if passing else SKIP, reason=gap)
            continue
        if gap and step != "R1":  # R1 says itself what it could not tell
            p.notes.append(f"{step}: planned without what could not be read: {gap}")
        getattr(p, step.lower())()
    return Plan(
        state.tenant_id,
        state.tenant_name,
        state.upn,
        state.user_id,
        steps,
        p.actions,
        p.notes,
        f"{facts.window_start:%Y-%m-%dT%H:%M:%SZ}" if facts.window_start else None,
    )
