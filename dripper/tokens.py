"""Signed unsubscribe/preference tokens (itsdangerous): they carry the lead and the
campaign, and cannot be forged or moved to another lead without the secret.

Rotation: everything new is signed with the current secret; links, test tokens and VERP
bounce addresses signed with a retired secret (DRIPPER_SECRET_OLD) still verify, so the
links in mail already sent keep working for as long as the old secret is listed. Tokens
carry no expiry: an unsubscribe link works as long as its secret is current or listed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature, URLSafeSerializer

if TYPE_CHECKING:
    from dripper.settings import Settings
    from dripper.store import Store

log = logging.getLogger("dripper.tokens")
_VERP = re.compile(r"\+t(\d{1,18})-([0-9a-f]{10})$")


@dataclass(frozen=True)
class TokenData:
    lead_id: int
    campaign: str


@dataclass(frozen=True)
class ClickData:
    """What a click token says: the touch whose message held the link, and where it goes."""

    touch_id: int
    url: str


class Tokens:
    """Signs with `secret`; verifies with it and with each of the `old` (retired) secrets."""

    def __init__(self, secret: str, old: Iterable[str] = ()):
        if isinstance(old, str):  # one string would be taken as its characters, each a "secret"
            raise TypeError("Tokens(old=...) wants a sequence of secrets, not one string")
        keys = (secret, *dict.fromkeys(k for k in old if k and k != secret))
        # itsdangerous signs with the last key of a list and tries them all, the last first.
        verifying = list(reversed(keys))
        self._serializer = URLSafeSerializer(verifying, salt="dripper.unsubscribe")
        # Test sends and previews (`preview --to/--open`) get tokens of their own kind: signed
        # with another salt, a test token can never be read as a lead's token (not by this
        # code, nor by a version that does not know test tokens: it gets a 404 there).
        self._test_serializer = URLSafeSerializer(verifying, salt="dripper.test-send")
        # Click tokens: a salt of their own, so that no other token of ours can be read as one.
        self._click_serializer = URLSafeSerializer(verifying, salt="dripper.click")
        self._test_click_serializer = URLSafeSerializer(verifying, salt="dripper.test-click")
        self._open_serializer = URLSafeSerializer(verifying, salt="dripper.open")
        self._verp_keys = tuple(hashlib.sha256(b"dripper.verp\0" + k.encode()).digest() for k in keys)
        # Message-IDs are made, never verified (inbound looks them up among the sent touches).
        self._message_id_key = hashlib.sha256(b"dripper.message-id\0" + secret.encode()).digest()

    def message_id(self, lead_email: str, campaign: str, step_id: str, domain: str) -> str:
        """The Message-ID of a touch: derived from (lead, campaign, step) and the secret, so a
        resend after a crash carries the same one, and nobody without the secret can compute
        it (a reply or report naming it proves its writer had our message)."""
        key = f"{lead_email}\0{campaign}\0{step_id}".encode()
        digest = hmac.new(self._message_id_key, key, hashlib.sha256).hexdigest()[:32]
        return f"<{digest}.drip@{domain}>"

    # VERP: the envelope sender of each message names its touch, so a bounce maps to its
    # lead and touch without guessing. Lower-case hex: some MTAs fold local-part case.
    @staticmethod
    def _verp_mac(key: bytes, touch_id: int) -> str:
        return hmac.new(key, str(touch_id).encode(), hashlib.sha256).hexdigest()[:10]

    def bounce_address(self, touch_id: int, mailbox: str) -> str:
        local, _, domain = mailbox.rpartition("@")
        return f"{local}+t{touch_id}-{self._verp_mac(self._verp_keys[0], touch_id)}@{domain}"

    def read_bounce_address(self, address: str) -> int | None:
        """The touch id a VERP address names, or None if it is not ours or was tampered with."""
        local = address.strip().strip("<>").rpartition("@")[0]
        match = _VERP.search(local.lower())
        if not match:
            return None
        touch_id = int(match.group(1))
        signed = any(hmac.compare_digest(match.group(2), self._verp_mac(key, touch_id)) for key in self._verp_keys)
        return touch_id if signed else None

    def make(self, lead_id: int, campaign: str) -> str:
        return self._serializer.dumps([lead_id, campaign])

    def read(self, token: str) -> TokenData | None:
        return _read(self._serializer, token)

    def make_test(self, lead_id: int, campaign: str) -> str:
        """The token in a test send's or a preview's links: `serve` answers it, changes nothing."""
        return self._test_serializer.dumps([lead_id, campaign])

    def read_test(self, token: str) -> TokenData | None:
        """The lead and campaign a test token was made for, or None if it is not a valid one."""
        return _read(self._test_serializer, token)

    def make_click(self, touch_id: int, url: str) -> str:
        """The token of a tracked link: the touch it was sent in and its target, signed."""
        return self._click_serializer.dumps([touch_id, url])

    def read_click(self, token: str) -> ClickData | None:
        """The touch and target a click token names, or None if it is not a valid one."""
        return _read_click(self._click_serializer, token)

    def make_test_click(self, touch_id: int, url: str) -> str:
        """A tracked link of a test send or preview: it redirects and records nothing."""
        return self._test_click_serializer.dumps([touch_id, url])

    def read_test_click(self, token: str) -> ClickData | None:
        return _read_click(self._test_click_serializer, token)

    def make_open(self, touch_id: int) -> str:
        """The token of a message's open pixel (`tracking: {opens: true}`)."""
        return self._open_serializer.dumps(touch_id)

    def read_open(self, token: str) -> int | None:
        """The touch an open token names, or None if it is not a valid one."""
        try:
            touch_id = self._open_serializer.loads(token)
        except (BadSignature, ValueError, TypeError):
            return None
        return touch_id if isinstance(touch_id, int) and not isinstance(touch_id, bool) else None


def _read_click(serializer: URLSafeSerializer, token: str) -> ClickData | None:
    try:
        touch_id, url = serializer.loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(touch_id, int) or isinstance(touch_id, bool) or not isinstance(url, str):
        return None
    return ClickData(touch_id, url)


def _read(serializer: URLSafeSerializer, token: str) -> TokenData | None:
    try:
        lead_id, campaign = serializer.loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(lead_id, int) or not isinstance(campaign, str):
        return None
    return TokenData(lead_id, campaign)


@dataclass(frozen=True)
class SigningKeys:
    """The secret that signs, the retired ones that still verify, and where they came from."""

    current: str
    old: tuple[str, ...] = ()
    from_env: bool = False  # current is DRIPPER_SECRET (else: the one kept in the database)
    kept_verifies: bool = False  # DRIPPER_SECRET is set, and the database-kept secret is one of `old`

    def tokens(self) -> Tokens:
        return Tokens(self.current, old=self.old)


def signing_keys(settings: Settings, store: Store) -> SigningKeys:
    """DRIPPER_SECRET signs when it is set; else the secret kept in the database (generated on
    first use). Verifying also accepts DRIPPER_SECRET_OLD and, while DRIPPER_SECRET is set,
    the secret kept in the database: a project that ran on the generated secret and then
    sets DRIPPER_SECRET keeps the links it already sent working (`dripper secret retire-kept`
    ends that)."""
    if not settings.secret:
        current = store.secret()
        return SigningKeys(current, _others(settings.secret_old, current))
    if re.search(r"[\s,]", settings.secret):
        log.warning(
            "DRIPPER_SECRET contains a comma or whitespace: once rotated out it cannot be listed in "
            "DRIPPER_SECRET_OLD (which those separate); prefer a secret without them"
        )
    kept = store.kept_secret()
    old = _others((*settings.secret_old, *((kept,) if kept else ())), settings.secret)
    return SigningKeys(settings.secret, old, from_env=True, kept_verifies=kept is not None and kept in old)


def tokens_for(settings: Settings, store: Store) -> Tokens:
    """The Tokens of this project: what every command that verifies links or bounces uses."""
    return signing_keys(settings, store).tokens()


def _others(secrets: Iterable[str], current: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s for s in secrets if s and s != current))


@dataclass(frozen=True)
class SecretStatus:
    """Where the signing secret comes from and who can read the SQLite file: no secret itself."""

    from_env: bool  # DRIPPER_SECRET signs (else the secret kept in the database)
    verifying_old: int  # retired secrets that still verify
    kept_verifies: bool  # the secret kept in the database is one of them
    database_file: Path | None  # the SQLite file, None on PostgreSQL
    open_mode: int | None  # the file's mode when its group or others may read or write it

    def as_json(self) -> dict[str, Any]:
        path, mode = self.database_file, self.open_mode
        return {
            "signing": "DRIPPER_SECRET" if self.from_env else "database",
            "verifying_old": self.verifying_old,
            "database_secret_verifies": self.kept_verifies,
            "database_file": None
            if path is None
            else {"path": str(path), "private": mode is None, **({"mode": f"{mode:04o}"} if mode is not None else {})},
        }


def secret_status(settings: Settings, store: Store) -> SecretStatus:
    from dripper.store.db import open_to_others, sqlite_path

    keys = signing_keys(settings, store)
    path = sqlite_path(store)
    return SecretStatus(
        from_env=keys.from_env,
        verifying_old=len(keys.old),
        kept_verifies=keys.kept_verifies,
        database_file=path,
        open_mode=open_to_others(path) if path is not None else None,
    )
