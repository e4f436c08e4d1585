"""Pieces of campaigns.yaml that many tests write the same way."""

from __future__ import annotations

# The sender and defaults every small test campaign uses; a `campaigns:` section follows.
ACME_SENDER = """sender:
  from: "Acme Sales <sales@acme.example>"
  postal_address: "Acme Inc., 1 Main St, Springfield, IL 62701, USA"
defaults:
  timezone: America/Chicago
"""
