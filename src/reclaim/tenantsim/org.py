"""The simulated organisation's identity and its window of time: what every export names."""

from __future__ import annotations

from datetime import UTC, datetime

TENANT_ID = "6f1c2b1e-7d3a-4c55-9a51-2d1e8f0b4a10"
DOMAIN = "contoso.example"
ONMICROSOFT = "contoso.onmicrosoft.com"
START = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday
DAY = 86400
HOUR = 3600
# where Exchange Online says the organisation's mailboxes and cmdlets run
ORG_PATH = f"EURPR05A003.prod.outlook.com/Microsoft Exchange Hosted Organizations/{ONMICROSOFT}"
SERVER = "AM9PR05MB8541 (15.20.8158.019)"
