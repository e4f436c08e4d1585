"""Signed unsubscribe/preference tokens (itsdangerous): they carry the lead and the
campaign, and cannot be forged or moved to another lead without the secret."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer


_VERP = re.compile(r"\+t(\d{1,18})-([0-9a-f]{10})$")


@dataclass(frozen=True)
class TokenData:
    lead_id: int
    campaign: str


class Tokens:
    def __init__(self, secret: str):
        self._serializer = URLSafeSerializer(secret, salt="dripper.unsubscribe")
        # Test sends and previews (`preview --to/--open`) get tokens of their own kind: signed
        # with another salt, a test token can never be read as a lead's token (not by this
        # code, nor by a version that does not know test tokens: it gets a 404 there).
        self._test_serializer = URLSafeSerializer(secret, salt="dripper.test-send")
        self._verp_key = hashlib.sha256(b"dripper.verp\0" + secret.encode()).digest()
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
    def _verp_mac(self, touch_id: int) -> str:
        return hmac.new(self._verp_key, str(touch_id).encode(), hashlib.sha256).hexdigest()[:10]

    def bounce_address(self, touch_id: int, mailbox: str) -> str:
        local, _, domain = mailbox.rpartition("@")
        return f"{local}+t{touch_id}-{self._verp_mac(touch_id)}@{domain}"

    def read_bounce_address(self, address: str) -> int | None:
        """The touch id a VERP address names, or None if it is not ours or was tampered with."""
        local = address.strip().strip("<>").rpartition("@")[0]
        match = _VERP.search(local.lower())
        if not match:
            return None
        touch_id = int(match.group(1))
        return touch_id if hmac.compare_digest(match.group(2), self._verp_mac(touch_id)) else None

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


def _read(serializer: URLSafeSerializer, token: str) -> TokenData | None:
    try:
        lead_id, campaign = serializer.loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(lead_id, int) or not isinstance(campaign, str):
        return None
    return TokenData(lead_id, campaign)
