"""Attacker links across users (issue 18, point 4): what a takeover leaves behind becomes indicators,
every other user who shows one gets a finding naming the compromised account, and the indicators go
out as STIX 2.1 and CSV and come back in with ``investigate --indicators``.

A simulated tenant with one business-email compromise, to which the test adds, in the exports' own
shapes (an Entra sign-in page, Unified Audit Log records), other users who meet the attacker.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import stix2
from click.testing import CliRunner

from reclaim import indicators as files
from reclaim import investigation, tenantsim
from reclaim.case.store import Case
from reclaim.cli.main import cli
from reclaim.detect import context, engine, geo, links, rules, verdict
from reclaim.detect.links import Indicator
from reclaim.errors import UsageError
from reclaim.ingest.pipeline import ingest_paths
from reclaim.tenantsim.networks import POOLS

USERS, DAYS, SEED = 8, 8, 2
UPNS = tenantsim.SimTenant(USERS, DAYS, SEED).upns
VICTIM = UPNS[1]
SECOND = UPNS[3]  # signs in from the address that took over the victim
QUIET = UPNS[4]  # only reads mail from that address: nothing else flags it
SAME_NET = UPNS[5]  # signs in from another address of the attacker's hosting network
NEIGHBOUR = UPNS[6]  # the same hosting provider, another of its networks
HOME_ISP = UPNS[7]  # another address of the victim's own ISP network
ACTOR = UPNS[2]  # reads mail from the attacker's address, then hides mail with an inbox rule
HOSTILE_RULE = '=HYPERLINK("http://evil.example/x","invoice")'


@dataclass
class Attack:
    case_dir: Path
    ip: str  # the address that took over the victim
    network: str  # its hosting network (CIDR)
    forward: str  # the outside address the victim's mail went to
    first: investigation.Investigation  # before the other users met the attacker
    found: investigation.Investigation  # after


def _signin(upn: str, ip: str, when: datetime, agent: str) -> dict[str, object]:
    """A Graph signIn as the Entra sign-in logs download gives it."""
    info = geo.lookup(ip)
    return {
        "id": str(uuid.uuid4()), "createdDateTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "userDisplayName": upn.split("@")[0], "userPrincipalName": upn, "userId": str(uuid.uuid4()),
        "appId": "00000002-0000-0ff1-ce00-000000000000", "appDisplayName": "Office 365 Exchange Online",
        "ipAddress": ip, "clientAppUsed": "Browser", "userAgent": agent, "correlationId": str(uuid.uuid4()),
        "conditionalAccessStatus": "notApplied", "isInteractive": True, "signInEventTypes": ["interactiveUser"],
        "authenticationRequirement": "singleFactorAuthentication", "riskDetail": "none",
        "riskLevelAggregated": "none", "riskLevelDuringSignIn": "none", "riskState": "none", "riskEventTypes_v2": [],
        "resourceDisplayName": "Office 365 Exchange Online", "resourceId": "00000002-0000-0ff1-ce00-000000000000",
        "status": {"errorCode": 0, "failureReason": None, "additionalDetails": None},
        "deviceDetail": {"deviceId": "", "displayName": "", "operatingSystem": "Windows10", "browser": "Edge 130.0.0",
                         "isCompliant": False, "isManaged": False, "trustType": ""},
        "location": {"city": "", "state": "", "countryOrRegion": info.country or "",
                     "geoCoordinates": {"altitude": None, "latitude": None, "longitude": None}},
        "appliedConditionalAccessPolicies": [],
    }  # fmt: skip


def _ual(upn: str, operation: str, ip: str, when: datetime, **extra: object) -> str:
    """A Unified Audit Log record (AuditData) as the Management Activity API gives it."""
    record = {
        "CreationTime": when.strftime("%Y-%m-%dT%H:%M:%S"), "Id": str(uuid.uuid4()), "Operation": operation,
        "OrganizationId": "6f1c2b1e-7d3a-4c55-9a51-2d1e8f0b4a10", "RecordType": 50 if operation ==
        "MailItemsAccessed" else 1, "ResultStatus": "Succeeded", "UserKey": "10038FA9AF925385", "UserType": 0,
        "Version": 1, "Workload": "Exchange", "UserId": upn, "ClientIPAddress": ip,
        "MailboxOwnerUPN": upn, "OrganizationName": "contoso.onmicrosoft.com", **extra,
    }  # fmt: skip
    return json.dumps(record)


def _another(network: str, *taken: str) -> str:
    """An address of ``network`` (CIDR) that none of ``taken`` is, in the same network by the database."""
    net = ipaddress.ip_network(network)
    for k in range(1, 200):
        ip = str(net[(net.num_addresses // 200) * k + 7])
        if ip not in taken and geo.lookup(ip).cidr == network:
            return ip
    raise AssertionError(f"no other address in {network}")


def _same_provider_elsewhere(ip: str) -> str:
    """An address of the same hosting provider (AS name) as ``ip``, in another of its networks."""
    mine = geo.lookup(ip)
    for pools in POOLS.values():
        for _name, prefixes in pools.get("hosting", []):
            for prefix in prefixes:
                net = ipaddress.ip_network(prefix)
                candidate = str(net[net.num_addresses // 3])
                found = geo.lookup(candidate)
                if found.network == mine.network and found.cidr != mine.cidr:
                    return candidate
    raise AssertionError(f"the simulator has one network of {mine.network} only")


def _investigate(case_dir: Path) -> investigation.Investigation:
    with Case.open(case_dir, create=False) as case:
        return investigation.run(case.con)


@pytest.fixture(scope="module")
def attack(tmp_path_factory: pytest.TempPathFactory) -> Attack:
    root = tmp_path_factory.mktemp("links")
    tenantsim.write_tenant(root / "exports", USERS, DAYS, SEED, scenarios={"bec": [VICTIM]})
    case_dir = root / "case"
    with Case.open(case_dir) as case:
        assert ingest_paths(case, [root / "exports"]).complete
        first = investigation.run(case.con)
        usual = "SELECT ip FROM logons WHERE upn = ? AND success GROUP BY ip ORDER BY count(*) DESC, ip LIMIT 1"
        home = case.con.execute(usual, [VICTIM]).fetchone()[0]
        actor_ip = case.con.execute(usual, [ACTOR]).fetchone()[0]
    took_over = [i for i in first.indicators if i.kind == "ip" and i.rule == "signin-password-spray"]
    assert took_over, [(i.kind, i.value, i.rule) for i in first.indicators]
    ip = took_over[0].value
    network = next(i.value for i in first.indicators if i.kind == "network" and ipaddress.ip_address(ip) in
                   ipaddress.ip_network(i.value))  # fmt: skip
    forward = next(i.value for i in first.indicators if i.kind == "forward-address")
    when = (took_over[0].first_seen or datetime(2026, 10, 1)) + timedelta(hours=2)
    others = [i.value for i in first.indicators if i.kind == "ip"]
    agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Edge/130.0.0.0"
    page = {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns",
        "value": [
            _signin(SECOND, ip, when, agent),
            _signin(SAME_NET, _another(network, *others), when + timedelta(minutes=5), agent),
            _signin(NEIGHBOUR, _same_provider_elsewhere(ip), when + timedelta(minutes=7), agent),
            _signin(HOME_ISP, _another(str(geo.lookup(home).cidr), home), when + timedelta(minutes=9), agent),
        ],
    }
    extra = root / "extra"
    extra.mkdir()
    (extra / "signIns.json").write_text(json.dumps(page), encoding="utf-8")
    rule = [{"Name": "Name", "Value": HOSTILE_RULE}, {"Name": "MoveToFolder", "Value": "RSS Feeds"},
            {"Name": "SubjectOrBodyContainsWords", "Value": "invoice;payment"}]  # fmt: skip
    hiding = [{"Name": "Name", "Value": "Receipts"}, {"Name": "MoveToFolder", "Value": "RSS Feeds"}]
    records = [
        _ual(QUIET, "MailItemsAccessed", ip, when + timedelta(minutes=3)),
        _ual(ACTOR, "MailItemsAccessed", ip, when + timedelta(minutes=4)),
        _ual(ACTOR, "New-InboxRule", actor_ip, when + timedelta(minutes=30), Parameters=hiding,
             ObjectId=f"contoso.onmicrosoft.com/{ACTOR.split('@')[0]}\\Receipts"),
        _ual(VICTIM, "New-InboxRule", ip, when + timedelta(minutes=1), Parameters=rule,
             ObjectId=f"contoso.onmicrosoft.com/{VICTIM.split('@')[0]}\\{HOSTILE_RULE}"),
    ]  # fmt: skip
    (extra / "ual.ndjson").write_text("\n".join(records) + "\n", encoding="utf-8")
    with Case.open(case_dir) as case:
        report = ingest_paths(case, [extra])
        assert report.complete and report.rejected == 0, [f.message for f in report.files]
    return Attack(case_dir, ip, network, forward, first, _investigate(case_dir))


def _links(found: investigation.Investigation, upn: str) -> list[engine.Finding]:
    v = found.verdict_of(upn)
    assert v is not None, upn
    return [f for f in v.findings if f.rule in links.RULES]


def test_the_attack_leaves_indicators_and_the_victims_own_addresses_are_none(attack: Attack) -> None:
    found = {(i.kind, i.value): i for i in attack.found.indicators}
    ip = found[("ip", attack.ip)]
    assert ip.sources == [VICTIM] and ip.evidence and ip.first_seen is not None
    assert ip.reason.startswith(f"the address that took over {VICTIM} (")
    assert found[("network", attack.network)].network == geo.lookup(attack.ip).network
    assert ("forward-address", attack.forward) in found and ("inbox-rule", HOSTILE_RULE) in found
    with Case.open(attack.case_dir, create=False) as case:
        context.prepare(case.con)
        usual = {r[0] for r in case.con.execute(
            "SELECT DISTINCT ip FROM logons WHERE upn = ? AND success AND time < ?", [VICTIM, ip.first_seen - timedelta(
                days=1)]).fetchall()}  # fmt: skip
    assert usual and not usual & {v for k, v in found if k == "ip"}
    for kind, value in found:
        if kind == "ip":
            assert links.usable_ip(value) and not geo.lookup(value).private


def test_a_second_user_who_signs_in_from_that_address_is_linked(attack: Attack) -> None:
    (finding,) = _links(attack.found, SECOND)
    assert finding.rule.id == "attacker-link-signin" and finding.severity == "high"
    assert finding.summary.startswith(f"signed in from {attack.ip} on ")
    assert f"the address that took over {VICTIM}" in finding.summary
    assert attack.found.verdict_of(SECOND).verdict in ("suspicious", "compromised")  # type: ignore[union-attr]
    assert SECOND in next(i for i in attack.found.indicators if i.value == attack.ip).linked


def test_a_user_clean_without_the_link_is_suspicious_with_it(attack: Attack) -> None:
    """Reading mail from the attacker's address flags nothing by itself: only the link does."""
    with Case.open(attack.case_dir, create=False) as case:
        alone = verdict.verdicts(engine.run(case.con, rules.load()))
    assert next(v for v in alone if v.upn == QUIET).verdict == "clean"
    judged = attack.found.verdict_of(QUIET)
    assert judged is not None and judged.verdict == "suspicious"
    assert any(f"MailItemsAccessed from {attack.ip}" in r and VICTIM in r for r in judged.reasons)


def test_a_link_then_a_mailbox_action_is_a_takeover(attack: Attack) -> None:
    """The link is a sign-in anomaly: the hidden-mail rule made half an hour after it completes the
    sequence of a takeover, which the rule alone is not."""
    with Case.open(attack.case_dir, create=False) as case:
        alone = verdict.verdicts(engine.run(case.con, rules.load()))
    assert next(v for v in alone if v.upn == ACTOR).verdict == "suspicious"
    judged = attack.found.verdict_of(ACTOR)
    assert judged is not None and judged.verdict == "compromised"
    assert any("after MailItemsAccessed from " + attack.ip in r for r in judged.reasons), judged.reasons


def test_the_hosting_network_links_but_not_the_provider_or_the_victims_isp(attack: Attack) -> None:
    (same_net,) = _links(attack.found, SAME_NET)
    assert same_net.severity == "medium" and f"in {attack.network}: the hosting network" in same_net.summary
    assert _links(attack.found, NEIGHBOUR) == []  # same provider, another network
    assert _links(attack.found, HOME_ISP) == []  # the victim's ISP is no indicator
    assert not [f for u in UPNS if u not in (SECOND, QUIET, SAME_NET, ACTOR) for f in _links(attack.found, u)]


def test_one_user_investigation_says_what_the_whole_case_says(attack: Attack) -> None:
    with Case.open(attack.case_dir, create=False) as case:
        mine = investigation.run(case.con, context.Options(user=SECOND))
    assert [v.upn for v in mine.verdicts] == [SECOND]
    assert mine.verdicts[0].as_dict() == attack.found.verdict_of(SECOND).as_dict()  # type: ignore[union-attr]
    assert {i.value for i in mine.indicators} >= {attack.ip}


def test_the_findings_document_and_the_report_list_them(attack: Attack, tmp_path: Path) -> None:
    out = tmp_path / "findings.json"
    result = CliRunner().invoke(cli, ["investigate", "--case", str(attack.case_dir), "--json", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["schema"] == "reclaim.findings/1"
    listed = {(i["kind"], i["value"]): i for i in document["indicators"]}
    assert listed[("ip", attack.ip)]["sources"] == [VICTIM] and SECOND in listed[("ip", attack.ip)]["linked"]
    html = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", str(attack.case_dir), "--html", str(html)])
    assert result.exit_code == 0, result.output
    page = html.read_text(encoding="utf-8")
    assert 'id="indicators"' in page and attack.ip in page
    assert HOSTILE_RULE not in page and '<td class="text">=HYPERLINK(&quot;http://evil.example/x&quot;' in page


@pytest.fixture(scope="module")
def exported(attack: Attack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("exported")
    result = CliRunner().invoke(
        cli,
        ["indicators", str(attack.case_dir), "--stix", str(folder / "case.stix.json"),
         "--csv", str(folder / "case.csv"), "--json", str(folder / "case.json")],
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert attack.ip in result.output and VICTIM in result.output and SECOND in result.output
    return folder


def test_the_stix_bundle_parses_with_the_expected_patterns(attack: Attack, exported: Path) -> None:
    bundle = stix2.parse((exported / "case.stix.json").read_text(encoding="utf-8"), allow_custom=True)
    objects = bundle.objects
    identity = next(o for o in objects if o["type"] == "identity")
    found = [o for o in objects if o["type"] == "indicator"]
    patterns = {o["pattern"] for o in found}
    assert f"[ipv4-addr:value = '{attack.ip}']" in patterns
    assert f"[ipv4-addr:value ISSUBSET '{attack.network}']" in patterns
    assert f"[email-addr:value = '{attack.forward}']" in patterns
    assert any(p.startswith("[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = ")
               for p in patterns)  # fmt: skip
    for o in found:
        assert o["created_by_ref"] == identity["id"] and o["pattern_type"] == "stix" and o["valid_from"]
        assert VICTIM in o["description"]
        assert "malicious-activity" in o["indicator_types"]
    rules_seen = {o["name"] for o in objects if o["type"] == files.INBOX_RULE_TYPE}
    assert HOSTILE_RULE in rules_seen
    observed = [o for o in objects if o["type"] == "observed-data"]
    assert observed and all(r.startswith(files.INBOX_RULE_TYPE) for o in observed for r in o["object_refs"])


def test_the_csv_neutralises_formulas_and_reads_back(exported: Path) -> None:
    data = (exported / "case.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == list(files.CSV_COLUMNS)
    cells = [c for row in rows[1:] for c in row]
    assert "'" + HOSTILE_RULE in cells and HOSTILE_RULE not in cells
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    back = files.read(exported / "case.csv").indicators
    assert ("inbox-rule", HOSTILE_RULE) in {(i.kind, i.value) for i in back}


def test_a_hostile_value_in_a_csv_cell() -> None:
    hostile = [Indicator("user-agent", "@SUM(1+1)*cmd|' /C calc'!A0", "-2+3", sources=["=a@b.example"])]
    rows = list(csv.reader(io.StringIO(files.csv_bytes(hostile).decode("utf-8-sig"))))
    assert rows[1] == ["user-agent", "'@SUM(1+1)*cmd|' /C calc'!A0", "", "", "'=a@b.example", "'-2+3"]


@pytest.fixture(scope="module")
def second_case(attack: Attack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Another tenant, with no compromise of its own, where one user signs in from the attacker's address."""
    root = tmp_path_factory.mktemp("second")
    tenantsim.write_tenant(root / "exports", 6, 6, 9)
    user = tenantsim.SimTenant(6, 6, 9).upns[2]
    when = datetime(2026, 10, 1) + timedelta(days=3, hours=10)
    agent = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari/605.1.15"
    page = {"value": [_signin(user, attack.ip, when, agent)]}
    (root / "exports" / "extra-signIns.json").write_text(json.dumps(page), encoding="utf-8")
    with Case.open(root / "case") as case:
        assert ingest_paths(case, [root / "exports"]).complete
    yield root / "case"


@pytest.mark.parametrize("form", ["stix", "csv", "list"])
def test_indicators_from_elsewhere_link_a_user_of_another_case(
    attack: Attack, exported: Path, second_case: Path, form: str, tmp_path: Path
) -> None:
    source = {"stix": exported / "case.stix.json", "csv": exported / "case.csv", "list": tmp_path / "ips.txt"}[form]
    (tmp_path / "ips.txt").write_text(f"# from {VICTIM}'s case\n{attack.ip}\n{attack.forward}\n", encoding="utf-8")
    user = tenantsim.SimTenant(6, 6, 9).upns[2]
    result = CliRunner().invoke(
        cli, ["investigate", "--case", str(second_case), "--indicators", str(source), "--json", "-"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    (judged,) = [u for u in document["users"] if u["upn"] == user]
    linked = [f for f in judged["findings"] if f["rule"] == "attacker-link-signin"]
    assert linked and linked[0]["severity"] == "high"
    assert f"signed in from {attack.ip}" in linked[0]["summary"]
    assert f"an indicator from {source.name}" in linked[0]["summary"]
    if form == "stix":
        assert VICTIM in linked[0]["summary"]  # the description that came with it
    assert judged["verdict"] in ("suspicious", "compromised")
    assert {i["origin"] for i in document["indicators"]} == {str(source)}
    others = [u for u in document["users"] if u["upn"] != user]
    assert not [f for u in others for f in u["findings"] if f["rule"].startswith("attacker-link")]


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("bad.txt", "203.0.113.7\nnot an address\n", "bad.txt:2: 'not an address' is no IP address"),
        ("bad.json", '{"type": "bundle",\n "objects": [}', "bad.json:2: not valid JSON"),
        ("other.json", '{"type": "report"}', "other.json:1: JSON, but no STIX bundle"),
        ("bad.csv", "kind,value\nip,1.2.3.4\nhash,abc\n", "bad.csv:3: unknown kind 'hash'"),
        ("badip.csv", "kind,value\nip,1.2.3.999\n", "badip.csv:2: '1.2.3.999' is no IP address"),
    ],
)
def test_a_bad_indicators_file_names_its_line(tmp_path: Path, name: str, text: str, where: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        files.read(path)
    assert caught.value.message.startswith(f"{tmp_path}/{where}")
    result = CliRunner().invoke(
        cli, ["investigate", "--case", str(tmp_path / "none"), "--indicators", str(path)],
        env={**os.environ, "COLUMNS": "400"},
    )  # fmt: skip
    assert result.exit_code == 2 and f"{name}:{where.split(':')[1]}:" in result.output


def test_a_bundle_from_elsewhere_gives_what_reclaim_can_look_for(tmp_path: Path) -> None:
    made = [Indicator("ip", "2001:db8::7", "r"), Indicator("network", "198.51.100.0/24", "r"),
            Indicator("user-agent", "it's \\ odd", "r"), Indicator("forward-address", "x@evil.example", "r"),
            Indicator("inbox-rule", "..", "r")]  # fmt: skip
    text = json.loads(files.stix_bundle(made, "elsewhere"))
    text["objects"].append({"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}",
                            "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z",
                            "pattern": "[file:hashes.'SHA-256' = 'aa']", "pattern_type": "stix",
                            "valid_from": "2026-01-01T00:00:00Z"})  # fmt: skip
    path = tmp_path / "b.json"
    path.write_text(json.dumps(text), encoding="utf-8")
    brought = files.read(path)
    assert {(i.kind, i.value) for i in brought.indicators} == {(i.kind, i.value) for i in made}
    assert brought.unused == {"indicator with another pattern": 1}


def test_the_link_rules_are_listed_with_their_description() -> None:
    result = CliRunner().invoke(cli, ["rules", "list", "--json"])
    listed = {r["id"]: r for r in json.loads(result.output)}
    for rule in links.RULES:
        assert listed[rule.id]["description"] == rule.description and "Python" in rule.description
    shown = CliRunner().invoke(cli, ["rules", "show", "attacker-link-signin"])
    assert shown.exit_code == 0 and "made in Python" in shown.output
