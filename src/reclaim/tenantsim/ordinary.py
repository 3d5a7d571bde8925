"""Ordinary days: people at work and at home, and what they write.

Each working day a user signs in (now and then after a mistyped password or an MFA prompt), reads
and sends mail from the laptop and the phone, files and deletes mail, opens documents; evenings and
weekends bring a look at the phone. Password changes, a forgotten password, a new inbox rule and the
admins' helpdesk chores come on the days ``SimTenant`` planned for them.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from reclaim.tenantsim.org import HOUR, ORG_PATH
from reclaim.tenantsim.people import DEPARTMENTS, Day, User
from reclaim.tenantsim.records import exchange
from reclaim.tenantsim.records.entra import (
    AZURE_PORTAL,
    MY_SIGNINS,
    OFFICE,
    OFFICE_HOME,
    OUTLOOK_MOBILE,
    OWA,
    TEAMS,
    App,
)
from reclaim.tenantsim.texts import DELETED_SUBJECTS, FILES, fill

if TYPE_CHECKING:
    from reclaim.tenantsim.writer import Writer

_FILE_OPS = ["FileAccessed", "FileModified", "FileUploaded", "FileDownloaded", "FilePreviewed"]
_FILE_OP_WEIGHTS = [50, 25, 8, 12, 5]


def user_day(w: Writer, u: User, d: int) -> None:
    """Day ``d`` of ``u``, from the writer's activity generator (every user's days, in order)."""
    rng = w.rng
    t = w.t
    day = t.day_of(u, d, rng)
    if day.workday:
        begin = day.start + (u.start_min + rng.randrange(-20, 21)) * 60
        end = begin + u.work_min * 60
        _work(w, u, day, begin, end, rng)
        if rng.random() < 0.35:
            _free(w, u, day, day.start + 19 * HOUR, day.start + 22 * HOUR + 1800, rng, laptop=0.3)
    elif rng.random() < 0.65:
        _free(w, u, day, day.start + 9 * HOUR, day.start + 22 * HOUR, rng, laptop=0.1)
    if u.password_day == d:
        _password_change(w, u, day, rng)
    if u.forgot_day == d:
        _forgot_password(w, u, day, rng)
    if u.new_rule_day == d and day.workday:
        _new_rule(w, u, day, rng)
    if u.admin and day.workday and rng.random() < 0.5:
        _admin_work(w, u, day, rng)


def _work(w: Writer, u: User, day: Day, begin: float, end: float, rng: random.Random) -> None:
    def at(device: str) -> tuple[float, str] | None:
        ts = rng.uniform(begin, end)
        ip = w.t.ip_at(u, day, ts, device, True)
        return None if ip is None else (ts, ip)

    first = w.t.ip_at(u, day, begin, "laptop", True)
    if first is not None:
        _interactive(w, u, begin, first, OFFICE_HOME, rng)
    for _ in range(rng.random() < 0.5):
        hit = at("laptop")
        if hit:
            _interactive(w, u, hit[0], hit[1], OWA if not u.desktop_outlook else OFFICE_HOME, rng)
    for _ in range(2 if u.desktop_outlook else 0):
        hit = at("laptop")
        if hit:
            error = 700082 if rng.random() < 0.01 else 0
            w.signin(u, hit[0], hit[1], OFFICE, "laptop", False, error)
    hit = at("laptop")
    if hit:
        w.signin(u, hit[0], hit[1], TEAMS, "laptop", False)
    for _ in range(1 + (rng.random() < 0.5)):
        hit = at("mobile")
        if hit:
            w.signin(u, hit[0], hit[1], OUTLOOK_MOBILE, "mobile", False)
    for _ in range(rng.choice([1, 2, 2, 3])):
        hit = at("laptop")
        if hit:
            w.read(u, hit[0], hit[1], "laptop", day.session, rng)
    hit = at("mobile")
    if hit:
        w.read(u, hit[0], hit[1], "mobile", day.session, rng)
    for _ in range(rng.choice([0, 1, 2, 3, 3, 4, 5, 6])):
        device = "mobile" if rng.random() < 0.15 else "laptop"
        hit = at(device)
        if hit:
            w.send(u, hit[0], hit[1], device, day.session, rng)
    # most days a few mails go to Deleted Items; now and then some are deleted from there
    for chance, most, operation, folder in (
        (0.6, 5, "MoveToDeletedItems", "Inbox"),
        (0.12, 9, "SoftDelete", "Deleted Items"),
    ):
        if rng.random() < chance:
            hit = at("laptop")
            if hit:
                count = rng.randrange(1, most)
                subjects = [fill(rng.choice(DELETED_SUBJECTS), rng, hit[0]) for _ in range(count)]
                w.delete(u, hit[0], hit[1], "laptop", day.session, rng, operation, subjects, folder)
    for _ in range(rng.choice([0, 1, 2, 3, 4, 5])):
        hit = at("laptop")
        if hit:
            op = rng.choices(_FILE_OPS, _FILE_OP_WEIGHTS)[0]
            w.file_op(u, hit[0], hit[1], op, fill(rng.choice(FILES), rng, hit[0]), rng)


def _free(w: Writer, u: User, day: Day, begin: float, end: float, rng: random.Random, laptop: float) -> None:
    for _ in range(rng.choice([1, 1, 2])):
        ts = rng.uniform(begin, end)
        ip = w.t.ip_at(u, day, ts, "mobile", False)
        if ip is None:
            continue
        w.signin(u, ts, ip, OUTLOOK_MOBILE, "mobile", False)
        w.read(u, ts + rng.randrange(5, 120), ip, "mobile", day.session, rng)
        if rng.random() < 0.15:
            w.send(u, ts + rng.randrange(60, 600), ip, "mobile", day.session, rng)
    if rng.random() < laptop:
        ts = rng.uniform(begin, end)
        ip = w.t.ip_at(u, day, ts, "laptop", False)
        if ip is not None:
            w.signin(u, ts, ip, OFFICE if u.desktop_outlook else OWA, "laptop", not u.desktop_outlook)
            w.read(u, ts + 30, ip, "laptop", day.session, rng)


def _interactive(w: Writer, u: User, ts: float, ip: str, app: App, rng: random.Random) -> None:
    """A browser sign-in, sometimes after a mistyped password or an interrupt."""
    roll = rng.random()
    if roll < 0.025:
        for k in range(rng.choice([1, 1, 2])):
            w.signin(u, ts - rng.randrange(20, 50) * (k + 1), ip, app, "laptop", True, 50126)
    elif roll < 0.065 and u.mfa:
        w.signin(u, ts - rng.randrange(15, 40), ip, app, "laptop", True, 50074)
    elif roll < 0.095:
        w.signin(u, ts - rng.randrange(5, 15), ip, app, "laptop", True, 50140)
    w.signin(u, ts, ip, app, "laptop", True)


def _password_change(w: Writer, u: User, day: Day, rng: random.Random) -> None:
    ts = day.start + (u.start_min + rng.randrange(30, 300)) * 60
    ip = w.t.ip_at(u, day, ts, "laptop", True)
    if ip is None:
        return
    w.signin(u, ts - 40, ip, MY_SIGNINS, "laptop", True)
    w.directory(ts, "Change password (self-service)", "Self-service Password Management", u, u, ip, rng)
    w.directory(ts + 1, "Change user password", "Core Directory", u, u, ip, rng)
    later = ts + rng.randrange(30, 180) * 60  # the phone's session ends with the old password
    mobile = w.t.ip_at(u, day, later, "mobile", True)
    if mobile is not None:
        w.signin(u, later, mobile, OUTLOOK_MOBILE, "mobile", False, 50133)
        w.signin(u, later + rng.randrange(60, 900), mobile, OUTLOOK_MOBILE, "mobile", True)


def _forgot_password(w: Writer, u: User, day: Day, rng: random.Random) -> None:
    """Back from a holiday, the password is gone: failures, a helpdesk reset, a new one."""
    ts = day.start + (u.start_min + 5) * 60
    ip = w.t.ip_at(u, day, ts, "laptop", True)
    admin = w.t.admins[0] if w.t.admins and w.t.admins[0] is not u else None
    if ip is None or admin is None:
        return
    for k in range(rng.randrange(3, 6)):
        w.signin(u, ts + k * rng.randrange(40, 150), ip, OFFICE_HOME, "laptop", True, 50126)
    reset = ts + rng.randrange(20, 50) * 60
    admin_ip = w.t.offices.get(admin.office.city if admin.office else "", admin.home_ip)
    w.signin(admin, reset - 120, admin_ip, AZURE_PORTAL, "laptop", True)
    w.directory(reset, "Reset user password", "Core Directory", u, admin, admin_ip, rng)
    w.directory(reset + 1, "Set force change user password", "Core Directory", u, admin, admin_ip, rng)
    back = reset + rng.randrange(3, 15) * 60
    w.signin(u, back, ip, OFFICE_HOME, "laptop", True)
    w.directory(back + 30, "Change user password", "Core Directory", u, u, ip, rng)


def _new_rule(w: Writer, u: User, day: Day, rng: random.Random) -> None:
    """One of the user's rules was made in Outlook on the web during the month."""
    rule = rng.choice(u.rules)
    ts = day.start + (u.start_min + rng.randrange(30, 400)) * 60
    ip = w.t.ip_at(u, day, ts, "laptop", True)
    if ip is None:
        return
    w.cmdlet(
        u,
        ts,
        "New-InboxRule",
        ip,
        f"{ORG_PATH}/{u.alias}\\{rule['Name']}",
        exchange.rule_parameters(rule),
        rng,
    )


def _admin_work(w: Writer, admin: User, day: Day, rng: random.Random) -> None:
    """Helpdesk chores: profile updates, group changes, a new phone's MFA registration."""
    ts = day.start + (admin.start_min + rng.randrange(20, 420)) * 60
    ip = w.t.ip_at(admin, day, ts, "laptop", True)
    if ip is None:
        return
    w.signin(admin, ts - 90, ip, AZURE_PORTAL, "laptop", True)
    target = rng.choice(w.t.users)
    roll = rng.random()
    if roll < 0.45:
        depts = [d for d, _ in DEPARTMENTS if d != target.dept]
        w.directory(
            ts,
            "Update user",
            "Core Directory",
            target,
            admin,
            ip,
            rng,
            [
                ("Department", f'["{target.dept}"]', f'["{rng.choice(depts)}"]'),
                ("Included Updated Properties", "", '"Department"'),
            ],
        )
    elif roll < 0.8:
        w.directory(
            ts,
            "Add member to group",
            "Core Directory",
            target,
            admin,
            ip,
            rng,
            [("Group.DisplayName", "", f'"{rng.choice(["Alla", "Projekt Atlas", "VPN users"])}"')],
            operation="Assign",
        )
    elif roll < 0.93:
        number = f"+46 7{rng.randrange(10)} {rng.randrange(100, 999)} {rng.randrange(1000, 9999)}"
        w.directory(
            ts,
            "Update user",
            "Core Directory",
            target,
            admin,
            ip,
            rng,
            [
                ("TelephoneNumber", "[]", f'["{number}"]'),
                ("Included Updated Properties", "", '"TelephoneNumber"'),
            ],
        )
    else:  # the user's new phone: old authenticator removed, new one registered, from the office
        later = ts + rng.randrange(5, 60) * 60
        uday = w.t.day_of(target, day.index, rng)
        tip = w.t.ip_at(target, uday, later, "laptop", True)
        if tip is None or not uday.workday:
            return
        w.signin(target, later - 60, tip, MY_SIGNINS, "laptop", True)
        w.directory(later, "User deleted security info", "Authentication Methods", target, target, tip, rng)
        w.directory(
            later + 120,
            "User registered security info",
            "Authentication Methods",
            target,
            target,
            tip,
            rng,
        )
