"""Webhooks: events told to other systems (a CRM, Zapier, n8n), signed per Standard
Webhooks and delivered at least once from an outbox written with the event."""
