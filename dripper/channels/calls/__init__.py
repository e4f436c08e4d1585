"""Call tasks for the sales team."""
