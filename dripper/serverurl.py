"""A mail server's URL as the environment gives it (DRIPPER_SMTP_URL, DRIPPER_IMAP_URL):
a plain or an implicit-TLS scheme, optional credentials, options in the query string."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

_TRUE = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True)
class ServerUrl:
    host: str
    port: int
    implicit_tls: bool
    username: str  # "" when the URL names none
    password: str
    path: str  # unquoted, without its leading "/"
    options: Mapping[str, str]  # the query; an option given twice: its last value

    def option(self, name: str, default: str) -> str:
        return self.options.get(name, default)

    def flag(self, name: str, default: bool) -> bool:
        """A yes/no option: 1, true, yes or on (any case) is yes."""
        value = self.options.get(name)
        return default if value is None else value.lower() in _TRUE


def parse(url: str, variable: str, schemes: Mapping[str, tuple[bool, int]]) -> ServerUrl:
    """`schemes`: each accepted scheme -> (implicit TLS, default port), in the order the
    error message names them; `variable` is the setting the message blames."""
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        accepted = " or ".join(f"{scheme}://" for scheme in schemes)
        raise ValueError(f"{variable} must start with {accepted} (got {parts.scheme or 'nothing'}://)")
    implicit_tls, default_port = schemes[parts.scheme]
    return ServerUrl(
        host=parts.hostname or "localhost",
        port=parts.port or default_port,
        implicit_tls=implicit_tls,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        path=unquote(parts.path.lstrip("/")),
        options={name: values[-1] for name, values in parse_qs(parts.query).items()},
    )


def tls_context(verify: bool) -> ssl.SSLContext:
    """The system's CA store; `verify=False` (`?verify=false`) takes any certificate, for
    test servers with self-signed ones."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
