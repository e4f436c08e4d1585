"""Real servers and a real browser for the tests and the benchmarks: an SMTP sink
(in this process or its own), a private Dovecot (IMAP) and Debian's chromium.

Importable as `tests.support` from the repository root: pytest puts the root on the path
(pyproject.toml), and `python -m bench.NAME` runs from there.
"""
