"""Turning a case's analysis into documents: the findings JSON (and, later, HTML and Markdown)."""
