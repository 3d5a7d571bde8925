"""The organisation (``SimTenant``): who works there, what each one's month holds (trips, leave, a
VPN, a password change, inbox rules) and where each one is at any time. Decided up front, so that a
scenario can change a user's plans before the days are written."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from reclaim.tenantsim.networks import POOLS, Addresses, Pool
from reclaim.tenantsim.org import DAY, DOMAIN, HOUR, START
from reclaim.tenantsim.people import DEPARTMENTS, HOMES, NAMES, TRIP_DESTINATIONS, Day, Trip, User, ascii_name
from reclaim.tenantsim.places import PLACES, Place, km_between, utc_offset
from reclaim.tenantsim.records import exchange, guid


class SimTenant:
    """The organisation: its users and what they did, ``days`` days from ``start``."""

    def __init__(self, users: int = 500, days: int = 30, seed: int = 1, start: datetime = START) -> None:
        if users < 1 or days < 1:
            raise ValueError("a tenant needs at least one user and one day")
        self.days = days
        self.seed = seed
        self.start = start.timestamp()
        self.end = self.start + days * DAY
        self.rng = random.Random(seed)  # noqa: S311 - simulation, not secrets
        self.net = Addresses(self.rng)
        self.microsoft_ips = [self.net.microsoft() for _ in range(12)]
        self.offices: dict[str, str] = {}
        self.mobile_pools: dict[tuple[str, str], list[str]] = {}
        self.users = self._people(users)
        self.by_upn = {u.upn: u for u in self.users}
        self.upns = [u.upn for u in self.users]
        self.admins = [u for u in self.users if u.admin]
        for u in self.users:
            self._plan(u)
        self.shared = self._shared_mailboxes()

    # -- setup -------------------------------------------------------------------------
    def uuid(self, rng: random.Random | None = None) -> str:
        return guid(rng or self.rng)

    def _people(self, count: int) -> list[User]:
        rng = self.rng
        homes = [(c, PLACES[p], office) for c, p, _, office in HOMES]
        weights = [w for _, _, w, _ in HOMES]
        depts = [d for d, _ in DEPARTMENTS]
        dept_weights = [w for _, w in DEPARTMENTS]
        taken: set[str] = set()
        users: list[User] = []
        for i in range(count):
            country, home, has_office = rng.choices(homes, weights)[0]
            firsts, lasts = NAMES[country]
            first, last = rng.choice(firsts), rng.choice(lasts)
            base = ascii_name(f"{first}.{last}").lower()
            alias, n = base, 1
            while alias in taken:
                n += 1
                alias = f"{base}{n}"
            taken.add(alias)
            dept = "Management" if i == 0 else ("IT" if i in (1, 2) else rng.choices(depts, dept_weights)[0])
            office = home if has_office and rng.random() < 0.9 else None
            if office is not None and office.city not in self.offices:
                self.offices[office.city] = self.net.draw(country, "office", office)
            carrier = rng.choice(POOLS[country]["mobile"])
            laptop = rng.choices(["win-edge", "win-chrome", "mac"], [60, 25, 15])[0]
            start_min = rng.randrange(7 * 60, 9 * 60 + 31, 5)
            weekdays = [0, 1, 2, 3, 4]
            office_days = (
                frozenset(rng.sample(weekdays, rng.choice([2, 3, 3, 4, 5]))) if office else frozenset()
            )
            user = User(
                index=i,
                first=first,
                last=last,
                upn=f"{alias}@{DOMAIN}",
                alias=alias,
                display=f"{first} {last}",
                user_id=self.uuid(),
                puid=f"1003{rng.getrandbits(48):012X}",
                sid=f"S-1-5-21-3486752145-1939372154-2876349018-{rng.randrange(10**7, 10**8)}",
                mailbox_guid=self.uuid(),
                dept=dept,
                home=home,
                office=office,
                home_ip=self.net.draw(country, "home", home),
                carrier=carrier,
                mobile_ips=self._mobile_pool(country, carrier),
                laptop=laptop,
                phone=rng.choice(["Ios", "Ios", "Android"]),
                desktop_outlook=rng.random() < 0.8,
                start_min=start_min,
                work_min=rng.randrange(8 * 60, 9 * 60 + 31, 5),
                office_days=office_days,
                device_id=self.uuid(),
                mfa=rng.random() < 0.85,
                admin=i in (1, 2),
            )
            users.append(user)
        managers: dict[str, User] = {}
        for u in users:  # the first of each department leads it
            managers.setdefault(u.dept, u)
        for u in users:
            boss = managers[u.dept]
            u.manager = boss if boss is not u else (users[0] if u is not users[0] else None)
        return users

    def _mobile_pool(self, country: str, carrier: Pool) -> list[str]:
        """Carrier-grade NAT: a phone gets one of the carrier's addresses each day."""
        key = (country, carrier[0])
        if key not in self.mobile_pools:
            self.mobile_pools[key] = [self.net.draw(country, "mobile", pools=[carrier]) for _ in range(48)]
        return self.mobile_pools[key]

    def _plan(self, u: User) -> None:
        """Trips, leave, VPN habits, password changes and inbox rules: decided up front."""
        rng = random.Random(f"{self.seed}-plan-{u.index}")  # noqa: S311 - simulation, not secrets
        country = u.home.country
        if rng.random() < 0.025:  # a commercial VPN on some days
            u.vpn_ip = self.net.draw(rng.choice([country, country, "NL"]), "hosting")
            u.vpn_days = frozenset(d for d in range(self.days) if rng.random() < 0.4)
        if rng.random() < 0.06 and self.days >= 10:  # a week off
            first = rng.randrange(0, self.days - 5)
            u.leave = frozenset(range(first, first + rng.choice([5, 7, 9])))
        trips = 2 if rng.random() < 0.02 else (1 if rng.random() < 0.10 else 0)
        for _ in range(trips):
            self._add_trip(u, rng)
        # passwords expire every 90 days: a third change theirs within a month
        day = rng.randrange(-60, 30) * self.days // 30
        if 0 <= day < self.days and self._workday(u, day):
            u.password_day = day
        if rng.random() < 0.004 or (u.index == 7 and len(self.users) > 100):
            u.forgot_day = rng.randrange(self.days)
        u.rules = self._inbox_rules(u, rng)
        if u.rules and rng.random() < 0.12:
            u.new_rule_day = rng.randrange(self.days)
        u.mailbox = exchange.mailbox(u, self.start)

    def _workday(self, u: User, day: int) -> bool:
        weekday = datetime.fromtimestamp(self.start + day * DAY + 12 * HOUR, UTC).weekday()
        return weekday < 5 and day not in u.leave

    def _add_trip(self, u: User, rng: random.Random) -> None:
        if self.days < 8:
            return
        choices = [p for p in TRIP_DESTINATIONS if PLACES[p].country != u.home.country]
        dest = PLACES[rng.choice(choices)]
        first = rng.randrange(1, self.days - 6)
        nights = rng.randrange(2, 6)
        if any(first - 2 <= d <= first + nights + 2 for d in u.leave) or any(
            t.out_dep - 3 * DAY < self.start + first * DAY < t.back_arr + 3 * DAY for t in u.trips
        ):
            return
        u.trips.append(self.trip(u, dest, first, nights, (6 * 60 + 30, 10 * 60), (11 * 60, 18 * 60), rng))

    def trip(
        self,
        u: User,
        dest: Place,
        first: int,
        nights: int,
        leave: tuple[int, int],
        back: tuple[int, int],
        rng: random.Random,
        net_rng: random.Random | None = None,
    ) -> Trip:
        """A flight to ``dest`` on day ``first`` and home ``nights`` later, each leaving at a local
        time drawn from ``leave`` and ``back`` (minutes after midnight); a hotel's and a venue's
        addresses drawn with ``net_rng`` (the tenant's own by default)."""
        flight = (0.75 + km_between(u.home, dest) / 800) * HOUR
        out_local = self.start + first * DAY + rng.randrange(*leave, 5) * 60
        out_dep = out_local - utc_offset(u.home.zone, out_local) * HOUR
        back_local = self.start + (first + nights) * DAY + rng.randrange(*back, 5) * 60
        back_dep = back_local - utc_offset(dest.zone, back_local) * HOUR
        hotel = self.net.draw(dest.country, "home", dest, rng=net_rng)
        venue = self.net.draw(dest.country, "home", dest, rng=net_rng)
        return Trip(dest, out_dep, out_dep + flight, back_dep, back_dep + flight, hotel, venue)

    def _inbox_rules(self, u: User, rng: random.Random) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = []
        sv = u.home.country == "SE"

        def rule(name: str, **props: Any) -> None:
            rules.append(exchange.inbox_rule(u, name, len(rules) + 1, rng, **props))

        if rng.random() < 0.30:
            folder = "Nyhetsbrev" if sv and rng.random() < 0.6 else "Newsletters"
            rule(
                folder,
                FromAddressContainsWords=["newsletter", "nyhetsbrev", "news@"],
                MoveToFolder=folder,
                StopProcessingRules=True,
                MarkAsRead=rng.random() < 0.25,
            )
        if u.manager is not None and rng.random() < 0.15:
            boss = u.manager
            rule(f"From {boss.first}", From=[f'"{boss.display}" [SMTP:{boss.upn}]'], MarkImportance="High")
        if u.dept in ("Engineering", "IT") and rng.random() < 0.35:
            rule("Jira", From=["jira@contoso.atlassian.net"], MoveToFolder="Jira", StopProcessingRules=True)
        if rng.random() < 0.08:
            project = rng.choice(["Atlas", "Nova", "Polaris", "Vega"])
            rule(
                f"Projekt {project}", SubjectContainsWords=[f"[{project}]"], MoveToFolder=f"Projekt {project}"
            )
        if u.dept == "Finance" and rng.random() < 0.4:
            folder = "Leverantörsfakturor" if sv else "Supplier invoices"
            rule(
                folder,
                SubjectOrBodyContainsWords=["faktura", "invoice"],
                MoveToFolder=folder,
                StopProcessingRules=True,
            )
        if rng.random() < 0.01:
            rule("Meeting responses", SubjectContainsWords=["Accepted:", "Accepterat:"], DeleteMessage=True)
        return rules

    def _shared_mailboxes(self) -> list[dict[str, Any]]:
        """Shared mailboxes, and a leaver's mailbox an admin forwards to the manager (internal)."""
        out = []
        for alias, name in (("info", "Info"), ("support", "Support"), ("ekonomi", "Ekonomi")):
            box = exchange.mailbox(self.users[0], self.start)
            box.update(
                Name=alias,
                Alias=alias,
                DisplayName=name,
                Identity=alias,
                UserPrincipalName=f"{alias}@{DOMAIN}",
                PrimarySmtpAddress=f"{alias}@{DOMAIN}",
                EmailAddresses=[f"SMTP:{alias}@{DOMAIN}"],
                RecipientTypeDetails="SharedMailbox",
                ExchangeGuid=self.uuid(),
            )
            out.append(box)
        if len(self.users) >= 20:
            boss = self.users[0]
            box = exchange.mailbox(self.users[-1], self.start)
            box.update(
                Name="karl.leaver",
                Alias="karl.leaver",
                DisplayName="Karl Lindahl (slutat)",
                Identity="karl.leaver",
                UserPrincipalName=f"karl.lindahl@{DOMAIN}",
                PrimarySmtpAddress=f"karl.lindahl@{DOMAIN}",
                EmailAddresses=[f"SMTP:karl.lindahl@{DOMAIN}"],
                RecipientTypeDetails="SharedMailbox",
                ExchangeGuid=self.uuid(),
                ForwardingSmtpAddress=f"smtp:{boss.upn}",
                DeliverToMailboxAndForward=True,
            )
            out.append(box)
        return out

    # -- one day ---------------------------------------------------------------------------
    def day_of(self, u: User, d: int, rng: random.Random) -> Day:
        noon = self.start + d * DAY + 12 * HOUR
        state, trip = u.trip_state(noon)
        place = trip.dest if trip is not None and state == "away" else u.home
        if trip is not None and state == "gone":  # travelling today: the day ends where the trip goes
            place = trip.dest if abs(noon - trip.out_arr) < abs(noon - trip.back_arr) else u.home
        start = self.start + d * DAY - utc_offset(place.zone, noon) * HOUR
        workday = self._workday(u, d)
        weekday = datetime.fromtimestamp(noon, UTC).weekday()
        at_office = workday and trip is None and weekday in u.office_days
        return Day(
            d,
            start,
            place,
            at_office,
            d in u.vpn_days and u.vpn_ip is not None,
            rng.choice(u.mobile_ips),
            self.uuid(rng),
            workday,
        )

    def ip_at(self, u: User, day: Day, ts: float, device: str, working: bool) -> str | None:
        """The address ``device`` ('laptop' or 'mobile') uses at ``ts``; None in transit."""
        state, trip = u.trip_state(ts)
        if state == "gone":
            return None
        if trip is not None and state == "away":
            return trip.venue_ip if working and device == "laptop" else trip.hotel_ip
        if device == "mobile":
            return day.mobile_ip
        if day.at_office and working and u.office is not None:
            return self.offices[u.office.city]
        if day.vpn and u.vpn_ip:
            return u.vpn_ip
        return u.home_ip
