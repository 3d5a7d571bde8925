"""The local web UI (``reclaim serve``): cases, users, reports, and the remediation plan with apply,
verify and rollback, through the same library calls as the CLI."""
