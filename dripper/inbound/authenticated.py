"""Whether the receiving server vouches for a message's From address.

A From header is whatever its writer typed, so a message matched to a lead by its From
alone proves nothing. The receiving mail server, though, checks SPF, DKIM and DMARC and
writes what it found into an `Authentication-Results` header (RFC 8601), naming itself
(the authserv-id). dripper reads only the topmost such header whose authserv-id the
operator listed in `inbound.trusted_authserv_ids`: a header lower down, or naming another
server, may have been written by the sender. It counts as proof when it shows one of:

- `dmarc=pass` for `header.from` = the From domain (DMARC checked the alignment);
- `dkim=pass` with `header.d` (or the domain of `header.i`) equal to the From domain;
- `spf=pass` with the domain of `smtp.mailfrom` equal to the From domain.

DKIM and SPF alignment here is strict (the same domain), as no public suffix list is at
hand to tell an organization's domain; DMARC's own relaxed alignment counts through
`dmarc=pass`. Parsing is authres's (Apache-2.0, the parser Mailman uses).
"""

from __future__ import annotations

from collections.abc import Sequence
from email.message import Message
from email.utils import parseaddr

import authres  # untyped: see the mypy overrides in pyproject.toml


def _domain(value: str) -> str:
    return value.rpartition("@")[2].strip().strip(".").lower()


def _results(message: Message, trusted: Sequence[str]) -> list[authres.core.AuthenticationResult]:
    """The results of the topmost Authentication-Results header of a trusted server."""
    wanted = {server.strip().lower() for server in trusted if server.strip()}
    for value in message.get_all("Authentication-Results") or []:
        try:
            header = authres.AuthenticationResultsHeader.parse_value(" ".join(str(value).split()))
        except Exception:
            continue
        if str(header.authserv_id or "").lower() in wanted:
            return list(header.results)
    return []


def _property(result: authres.core.AuthenticationResult, kind: str, name: str) -> str:
    for prop in result.properties:
        if prop.type == kind and prop.name == name:
            return str(prop.value or "")
    return ""


def _aligned(result: authres.core.AuthenticationResult, domain: str) -> bool:
    if str(result.result).lower() != "pass":
        return False
    method = str(result.method).lower()
    if method == "dmarc":
        return _domain(_property(result, "header", "from")) == domain
    if method == "dkim":
        signer = _property(result, "header", "d") or _property(result, "header", "i")
        return _domain(signer) == domain
    if method == "spf":
        return _domain(_property(result, "smtp", "mailfrom")) == domain
    return False


def authenticated_sender(message: Message, trusted: Sequence[str]) -> str | None:
    """The From address, if a trusted server authenticated it; else None."""
    if not trusted:
        return None
    addresses = [parseaddr(str(value))[1] for value in message.get_all("From") or []]
    if len(addresses) != 1 or "@" not in addresses[0]:  # no From, or several: nothing to vouch for
        return None
    domain = _domain(addresses[0])
    if any(_aligned(result, domain) for result in _results(message, trusted)):
        return addresses[0].lower()
    return None


__all__ = ["authenticated_sender"]
