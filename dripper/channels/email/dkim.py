"""DKIM keys, one per sending domain: each e-mail is signed with the key of its From domain.

Configured by `DRIPPER_DKIM_KEYS`, either
- a list `DOMAIN=SELECTOR:PATH, ...` (e.g. `acme.example=s2026:/etc/dripper/acme.pem`), or
- a directory holding one `DOMAIN.SELECTOR.pem` per domain (e.g. `acme.example.s2026.pem`;
  the selector is the last dot-separated part of the name before `.pem`);
and by the single key of `DRIPPER_DKIM_KEY` (+ `_SELECTOR`, `_DOMAIN`), which signs mail of
every domain that has no key of its own (as it did before several senders).

A key signs a message whose From domain is its domain or below it (relaxed DMARC
alignment: a key of `acme.example` aligns for `eu.acme.example`); the most specific wins.
Signing uses dkimpy (see docs/libraries.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# What the DKIM signature covers. RFC 8058 requires List-Unsubscribe and -Post; From is
# listed twice so that no second From can be added without breaking the signature.
DKIM_HEADERS = (
    b"From",
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"Reply-To",
    b"MIME-Version",
    b"Content-Type",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"Feedback-ID",
)


@dataclass(frozen=True)
class DkimKey:
    selector: str
    domain: str
    private_key: bytes

    @classmethod
    def load(cls, path: Path, selector: str, domain: str) -> DkimKey:
        return cls(selector, domain, path.read_bytes())

    def sign(self, data: bytes) -> bytes:
        import dkim  # dkimpy

        signature: bytes = dkim.sign(
            data,
            self.selector.encode(),
            self.domain.encode(),
            self.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(DKIM_HEADERS),
        )
        return signature + data


@dataclass(frozen=True)
class DkimKeys:
    """The keys by signing domain, and the fallback key for every other domain."""

    by_domain: Mapping[str, DkimKey] = field(default_factory=dict)
    fallback: DkimKey | None = None

    def for_domain(self, domain: str) -> DkimKey | None:
        """The key a message from `domain` is signed with: its own, a parent domain's, else the fallback."""
        return self.own(domain) or self.fallback

    def own(self, domain: str) -> DkimKey | None:
        """A key of `domain` or of a domain above it (which DMARC's relaxed alignment accepts)."""
        labels = domain.lower().rstrip(".").split(".")
        for i in range(len(labels) - 1):
            key = self.by_domain.get(".".join(labels[i:]))
            if key is not None:
                return key
        return None

    def __bool__(self) -> bool:
        return bool(self.by_domain) or self.fallback is not None

    def sign(self, data: bytes, domain: str) -> bytes:
        key = self.for_domain(domain)
        return key.sign(data) if key is not None else data


def parse_keys(text: str, *, variable: str = "DRIPPER_DKIM_KEYS") -> dict[str, DkimKey]:
    """`DRIPPER_DKIM_KEYS`: a directory of DOMAIN.SELECTOR.pem, or `DOMAIN=SELECTOR:PATH, ...`."""
    text = text.strip()
    if not text:
        return {}
    if "=" not in text:
        return _directory(Path(text), variable)
    keys: dict[str, DkimKey] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        domain, _, rest = item.partition("=")
        selector, colon, path = rest.partition(":")
        if not domain.strip() or not selector.strip() or not colon or not path.strip():
            raise _error(variable, f"{item!r}: write each key as DOMAIN=SELECTOR:PATH")
        keys[domain.strip().lower()] = _read(Path(path.strip()), selector.strip(), domain.strip().lower(), variable)
    return keys


def _directory(folder: Path, variable: str) -> dict[str, DkimKey]:
    if not folder.is_dir():
        raise _error(variable, f"{folder} is not a directory (or write DOMAIN=SELECTOR:PATH, ...)")
    keys: dict[str, DkimKey] = {}
    for path in sorted(folder.glob("*.pem")):
        domain, dot, selector = path.name[: -len(".pem")].rpartition(".")
        if not dot or "." not in domain:
            raise _error(variable, f"{path}: name the file DOMAIN.SELECTOR.pem (e.g. acme.example.s2026.pem)")
        keys[domain.lower()] = _read(path, selector, domain.lower(), variable)
    return keys


def _read(path: Path, selector: str, domain: str, variable: str) -> DkimKey:
    try:
        return DkimKey.load(path, selector, domain)
    except OSError as exc:
        raise _error(variable, f"cannot read the key of {domain}: {exc}") from exc


def _error(variable: str, message: str) -> ValueError:
    """A ValueError: the commands that send print it and exit 1, like a bad DRIPPER_SMTP_URL."""
    return ValueError(f"{variable}: {message}")


def unsigned_domains(keys: DkimKeys, domains: Iterable[str]) -> list[str]:
    """The sending domains whose mail would carry no DKIM signature aligned with From."""
    if not keys:
        return []  # DKIM is off: nothing to warn about
    return [d for d in domains if keys.own(d) is None and not _aligned(keys.fallback, d)]


def _aligned(key: DkimKey | None, domain: str) -> bool:
    if key is None:
        return False
    signing, domain = key.domain.lower(), domain.lower()
    return domain == signing or domain.endswith("." + signing)


__all__ = ["DKIM_HEADERS", "DkimKey", "DkimKeys", "parse_keys", "unsigned_domains"]
