"""The lab: a simulated Microsoft 365 tenant served over HTTP on loopback.

``with serve(LabTenant.simulated(users=20, days=14, seed=1, compromised=1)) as lab:`` gives a
Microsoft Graph stand-in at ``lab.graph_url``, Exchange Online's InvokeCommand at ``lab.exo_url``
and a client-credentials token endpoint under ``lab.token_url``, all accepting ``lab.token``.
``serve(tenant, tls=True)`` serves HTTPS (trust ``lab.ca_file``) and signs in azure-identity's
credentials: secret, certificate, device code, managed identity (``reclaim.lab.signin``).
"""

from reclaim.lab.data import LabTenant
from reclaim.lab.server import (
    KNOWN_PERMISSIONS,
    REQUIRED_PERMISSIONS,
    WRITE_PERMISSIONS,
    Faults,
    Lab,
    RequestRecord,
    serve,
)

__all__ = [
    "KNOWN_PERMISSIONS",
    "REQUIRED_PERMISSIONS",
    "WRITE_PERMISSIONS",
    "Faults",
    "Lab",
    "LabTenant",
    "RequestRecord",
    "serve",
]
