"""The remediation playbook (R1-R7): plan from live state and the case's findings, apply with a
journal, verify, roll back. ``session.py`` ties the parts together for the CLI and the web UI."""
