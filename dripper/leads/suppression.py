"""The do-not-contact list: addresses (kept only as a keyed hash) and whole domains.

An address is hashed with HMAC-SHA-256 under a key derived from the project secret
(`DRIPPER_SECRET`, or the one kept in the database), so the list does not hold the
address of a lead who asked to be forgotten, and nobody without the secret can test an
address against it. Rotation: entries are written under the current secret and matched
under it and every retired one (`DRIPPER_SECRET_OLD`); an entry made under a secret that
is no longer listed stops matching, so keep retired secrets listed (or re-import the
lists) for as long as their entries must hold.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection

from dripper.leads.records import LeadError, normalize_email
from dripper.store.queries import suppressionrows


class EntryKind(StrEnum):
    ADDRESS = "address"
    DOMAIN = "domain"


FORGOTTEN = "forgotten"  # the reason of an entry `dripper leads forget` made


def _key(secret: str) -> bytes:
    # Its own key: a suppression hash is never a token or a Message-ID of the same secret.
    return hashlib.sha256(b"dripper.suppression\0" + secret.encode()).digest()


def address_hash(secret: str, email: str) -> str:
    """The entry of a normalised address under `secret`."""
    return hmac.new(_key(secret), email.encode(), hashlib.sha256).hexdigest()


def normalize_domain(value: str) -> str:
    """A domain as addresses are kept (lower case, ASCII form); LeadError when it is not one."""
    text = value.strip().lstrip("@").rstrip(".")
    return normalize_email(f"x@{text}").rpartition("@")[2]


@dataclass(frozen=True)
class Entry:
    kind: EntryKind
    value: str  # a normalised address (before hashing) or domain


def parse_entry(text: str) -> Entry:
    """`someone@example.com` is an address, `example.com` or `@example.com` a whole domain.
    LeadError says why the text is neither."""
    value = text.strip()
    if "@" in value.lstrip("@"):
        return Entry(EntryKind.ADDRESS, normalize_email(value))
    return Entry(EntryKind.DOMAIN, normalize_domain(value))


@dataclass(frozen=True)
class Suppressions:
    """The list as one import checks it: loaded once, before the import's reader forks,
    so the reader judges each row with no database at hand."""

    secrets: tuple[str, ...]  # the current secret first, then retired ones
    hashes: frozenset[str]
    domains: frozenset[str]

    def why(self, email: str) -> str | None:
        """Why `email` (normalised) must not be enrolled, or None."""
        domain = email.rpartition("@")[2]
        if domain in self.domains:
            return f"suppressed (the domain {domain} is on the do-not-contact list)"
        if any(address_hash(secret, email) in self.hashes for secret in self.secrets):
            return "suppressed (the address is on the do-not-contact list)"
        return None


NOTHING = Suppressions((), frozenset(), frozenset())


def load(conn: Connection, secrets: tuple[str, ...]) -> Suppressions:
    return Suppressions(
        secrets,
        suppressionrows.values_of(conn, EntryKind.ADDRESS),
        suppressionrows.values_of(conn, EntryKind.DOMAIN),
    )


def check(conn: Connection, secrets: tuple[str, ...], email: str) -> str | None:
    """Why `email` is suppressed, asking the database for it alone (one lead added by hand)."""
    domain = email.rpartition("@")[2]
    if suppressionrows.listed(conn, EntryKind.DOMAIN, [domain]):
        return f"suppressed (the domain {domain} is on the do-not-contact list)"
    hashes = [address_hash(secret, email) for secret in secrets]
    if suppressionrows.listed(conn, EntryKind.ADDRESS, hashes):
        return "suppressed (the address is on the do-not-contact list)"
    return None


def stored(secret: str, entries: Iterable[Entry]) -> list[tuple[str, str]]:
    """(kind, value) as the table keeps them: addresses hashed under the current secret."""
    return [
        (entry.kind.value, address_hash(secret, entry.value) if entry.kind is EntryKind.ADDRESS else entry.value)
        for entry in entries
    ]


def add(conn: Connection, secret: str, entries: Iterable[Entry], reason: str, at: datetime) -> int:
    return suppressionrows.add(conn, stored(secret, entries), reason, at)


def remove(conn: Connection, secrets: tuple[str, ...], entry: Entry) -> int:
    """Take an address (under every secret) or a domain off the list."""
    if entry.kind is EntryKind.DOMAIN:
        return suppressionrows.remove(conn, [(EntryKind.DOMAIN.value, entry.value)])
    return suppressionrows.remove(conn, [(EntryKind.ADDRESS.value, address_hash(s, entry.value)) for s in secrets])


@dataclass(frozen=True)
class ListImport:
    added: int
    already: int
    problems: tuple[tuple[int, str], ...]  # (line, message)


def read_list(text: str) -> tuple[list[Entry], list[tuple[int, str]]]:
    """One address or domain a line (a CSV's first cell; blank lines, `#` comments and a
    header cell `email`/`domain` are passed over): the entries, and the lines that are neither."""
    entries: list[Entry] = []
    problems: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        cell = line.split(",", 1)[0].split(";", 1)[0].strip().strip('"').strip()
        if not cell or cell.startswith("#") or (number == 1 and cell.lower() in ("email", "domain", "address")):
            continue
        try:
            entries.append(parse_entry(cell))
        except LeadError as exc:
            problems.append((number, str(exc)))
    return entries, problems


__all__ = [
    "FORGOTTEN",
    "NOTHING",
    "Entry",
    "EntryKind",
    "ListImport",
    "Suppressions",
    "add",
    "address_hash",
    "check",
    "load",
    "parse_entry",
    "read_list",
    "remove",
]
