"""`dripper serve`: unsubscribe and preference pages, inbound webhooks, metrics, the dashboard."""
