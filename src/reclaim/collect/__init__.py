"""Evidence from a live tenant: each collector writes an export file that the parsers ingest."""
