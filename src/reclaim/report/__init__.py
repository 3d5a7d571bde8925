"""Turning a case's analysis into documents: the findings JSON, the HTML report and the Markdown summary."""
