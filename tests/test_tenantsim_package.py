"""The simulator writes the same bytes as before it became a package.

The sha256 of every file were recorded from the single-module ``tenantsim.py`` and ``synth.py``
(commit 8409044): the shipped example (through ``python -m reclaim.tenantsim``), a small tenant
with every scenario and several Graph pages per stream, and synth's NDJSON and Purview CSV.
A change of output fails here; when one is meant, record the new list.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from reclaim import tenantsim
from reclaim.tenantsim import synth
from reclaim.tenantsim.__main__ import main

GOLDEN = {
    "example/entra/directory-audits.json": "acb89ca54ae5125aa467bd47529132198953baf2df0490b23af598a2c6ea6b96",
    "example/entra/signins-interactive-0001.json": "e7b85648840775217fe549cfe306c729abfdcf2cf2266f10440823d1fc4bd16c",
    "example/entra/signins-noninteractive-0001.json": "504d1f1e687b9033d7cb6099a7b29cd4d602153f317de01c3cdc838997c7c0f3",
    "example/exchange/InboxRules.json": "70b743255f16cca7820969c72837fd82f2815ca5aeab87676dbd1d00053a786c",
    "example/exchange/Mailboxes.json": "8f7d3d09d1e9268e1e7f2328c52819286d5df3170f797066bcf89138e85d5c81",
    "example/ual/Audit.AzureActiveDirectory.ndjson": "0ef4c5d6bc9de1aa3ff1d6425cfdd2bb2f4ab8b49b09b89c8db9d87af32462ad",
    "example/ual/Audit.Exchange.ndjson": "c76724a757297db6155e2674a1ae50cf9e6cad1f7a42ad6ee03b267076bc7df0",
    "example/ual/Audit.SharePoint.ndjson": "12fb13ce540c0c0c42c40b6c45a67fc05bbcbc778a5dcf7553f802bd93410b5b",
    "scenarios/entra/directory-audits.json": "863b094db33385df3f27fe49d0ea8066d6e320501f83120ed716eb4ac068584b",
    "scenarios/entra/signins-interactive-0001.json": "317a0860af5abd8ae2a96f363ab2b0b453c6410f385b1dde15064f479e656cb8",
    "scenarios/entra/signins-interactive-0002.json": "ec041a427463a7e3f20d61c33b8e3ed87f1838141707bb8de14685126bb8a993",
    "scenarios/entra/signins-interactive-0003.json": "fc86474593302177b9d6e36d562dcbbeceb59325e0785b035e256e782f8c8108",
    "scenarios/entra/signins-noninteractive-0001.json": "d338c17aed1f0ca320dff8a194297d838fa42015b41d3c80a2262c87dc466815",
    "scenarios/entra/signins-noninteractive-0002.json": "b9391b8892b30575a84e4342f01521bf9983bf8dc5a9b9b53fb8f14d59a4c3e1",
    "scenarios/entra/signins-noninteractive-0003.json": "5552b26db8fd00379af8797fa2cca1f4149552eba19886900779b7dbb65493b6",
    "scenarios/entra/signins-noninteractive-0004.json": "15692a0a8add3e3866a6173dab6334cab326f43efd2a5cc1e7319331a1af176c",
    "scenarios/entra/signins-noninteractive-0005.json": "d2310f1cbcd160f1cf4898270e8023361cc4a168204ba18b4c0098d9b0adab6e",
    "scenarios/entra/signins-noninteractive-0006.json": "c0c4f8c3c8eae579424cfbbf6b3aae3512bd9acf3437e900950ff0bbd3cc0020",
    "scenarios/entra/signins-noninteractive-0007.json": "d61efb175c59eba68377368b12190e71ee692b9755b5b7c41c2f1d2c92e9766d",
    "scenarios/entra/signins-noninteractive-0008.json": "98a59520f2ff5881ad0e8ed98d006c9fbe75a2010409ba00d00f9c51a1ab6d3a",
    "scenarios/exchange/BlockedSenders.json": "abfc3a615b094f3831501f46e7227d653afefb0627013dd2fe4ea5f5356f39ba",
    "scenarios/exchange/InboxRules.json": "a0d6e9b8c7c21423049eaab20e7223edd367ebebfff7481d47a7bb1cda520eec",
    "scenarios/exchange/Mailboxes.json": "f04cbdf839ecc6d9ebe760154981613d4d9b36010bf588a772358475fca336e2",
    "scenarios/ual/Audit.AzureActiveDirectory.ndjson": "0356b4bfe347185f910657b6163cc8ba30625a367ecb77eff8babf24b199ec78",
    "scenarios/ual/Audit.Exchange.ndjson": "c502014044f60fb93973b2b105699984b6ba80c1b1ee38be51ed0770a19c73cd",
    "scenarios/ual/Audit.General.ndjson": "9e95bab13879753272fc3c7951db130507b71beb246042e06f0f85a16a996b58",
    "scenarios/ual/Audit.SharePoint.ndjson": "74c6aebde556acd5629c494b7d9fb5fea3fd63c32d10fd7cbd8ef204b59190cd",
    "synth/purview.csv": "f41291cf588a787f7e7ee9890c38b456b156589b06afbebcf837691430230077",
    "synth/ual.ndjson": "da3472120456ecf7608b1cf0d3411edd33db709a9da63d82b195a4fae855c158",
}


def _hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_output_is_byte_identical(tmp_path: Path) -> None:
    main(["--example", str(tmp_path / "example")])
    upns = tenantsim.SimTenant(12, 14, 3).upns
    scenarios = {"bec": [upns[0]], "consent-phishing": [upns[1]], "outbound-spam": [upns[2]],
                 "traveller": [upns[3], upns[1]]}  # fmt: skip
    tenantsim.write_tenant(tmp_path / "scenarios", 12, 14, 3, page_size=100, scenarios=scenarios)
    (tmp_path / "synth").mkdir()
    synth.write_ndjson(
        tmp_path / "synth" / "ual.ndjson", synth.ual_records(500, synth.Tenant(users=20, seed=4))
    )
    records = synth.ual_records(200, synth.Tenant(users=15, seed=11))
    synth.write_purview_csv(tmp_path / "synth" / "purview.csv", records)
    written = _hashes(tmp_path)
    changed = sorted(name for name in GOLDEN.keys() | written.keys() if GOLDEN.get(name) != written.get(name))
    assert not changed, f"output changed: {changed}"


def test_scenarios_are_registered_with_their_markers() -> None:
    assert list(tenantsim.SCENARIOS) == ["bec", "consent-phishing", "traveller", "outbound-spam", "dormant"]
    assert tenantsim.COMPROMISING == ("bec", "consent-phishing", "outbound-spam", "dormant")
    assert tenantsim.ATTACKER_UA == tenantsim.scenarios.attacker.USER_AGENT
    assert tenantsim.SPAM_SUBJECTS == tenantsim.scenarios.outbound_spam.SUBJECTS
