"""Microsoft Graph as the lab serves it: one module per resource, its reads and writes together; the
routes to them are in ``reclaim.lab.server``."""
