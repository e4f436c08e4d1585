"""E-mail: MIME assembly, the text part, transports (SMTP or the file outbox)."""
