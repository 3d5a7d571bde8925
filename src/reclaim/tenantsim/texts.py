"""What the simulated people write: mail subjects in Swedish and English, finance mail, files.

Kept apart from the days that use them (``ordinary``) so that the writer and the scenarios can draw
on them without importing the day generator.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

from reclaim.tenantsim.people import User

# -- what people write -----------------------------------------------------------------------------
SUBJECTS = {
    "SE": [
        "Re: Möte torsdag",
        "Veckorapport v.{w}",
        "Re: Offert {n}",
        "Projektplan uppdaterad",
        "Lunch?",
        "Re: Budget 2027",
        "Protokoll från styrgruppen",
        "Re: Leveransdatum",
        "Kundmöte nästa vecka",
        "Re: Frågor om avtalet",
        "Semesterplanering",
        "Re: Presentation till fredag",
        "Fw: Kallelse",
    ],
    "EN": [
        "Re: Meeting on Thursday",
        "Weekly report w{w}",
        "Re: Quote {n}",
        "Updated project plan",
        "Lunch?",
        "Re: Budget 2027",
        "Minutes from the steering group",
        "Re: Delivery date",
        "Customer meeting next week",
        "Re: Contract questions",
        "Re: Slides for Friday",
        "Fw: Invitation",
    ],
}
FINANCE_SUBJECTS = ["Re: Faktura {n}", "Re: Invoice {n}", "Betalningspåminnelse {n}", "Re: Payment run"]
DELETED_SUBJECTS = [
    "Nyhetsbrev vecka {w}",
    "Your weekly digest",
    "Automatic reply: Re: Budget 2027",
    "Accepted: Avstämning",
    "Webinar invitation: Cloud cost control",
    "Undeliverable: Re: Offert {n}",
    "LinkedIn: 6 new jobs for you",
    "Black week deals!",
    "Reminder: complete your phishing awareness training",
    "Canceled: Lunchmöte",
]
FILES = [
    "Budget 2027.xlsx",
    "Projektplan.docx",
    "Offert_{n}.pdf",
    "Veckorapport v{w}.docx",
    "Presentation Q4.pptx",
    "Kundlista.xlsx",
    "Avtal_{n}.docx",
    "Mötesanteckningar.docx",
    "Roadmap.pptx",
    "Prislista 2027.xlsx",
]


def fill(text: str, rng: random.Random, ts: float) -> str:
    """``text`` with its week number ({w}) and a reference number ({n}) filled in."""
    if "{" not in text:
        return text
    week = datetime.fromtimestamp(ts, UTC).isocalendar().week
    return text.replace("{w}", str(week)).replace("{n}", str(rng.randrange(1000, 99999)))


def subject(u: User, rng: random.Random, ts: float) -> str:
    """What ``u`` writes about: in Swedish or English, now and then an invoice in Finance."""
    pool = SUBJECTS["SE" if u.home.country == "SE" else "EN"]
    if u.dept == "Finance" and rng.random() < 0.3:
        pool = FINANCE_SUBJECTS
    return fill(rng.choice(pool), rng, ts)
