"""Real servers and a real browser for the tests and the benchmarks: an SMTP sink
(in this process or its own), a private Dovecot (IMAP), Debian's chromium and one-statement
SQL against a database.

Importable as `tests.support` from the repository root: pytest puts the root on the path
(pyproject.toml), and `python -m bench.NAME` runs from there.
"""
