"""Signed unsubscribe/preference tokens (itsdangerous): they carry the lead and the
campaign, and cannot be forged or moved to another lead without the secret."""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer


@dataclass(frozen=True)
class TokenData:
    lead_id: int
    campaign: str


class Tokens:
    def __init__(self, secret: str):
        self._serializer = URLSafeSerializer(secret, salt="dripper.unsubscribe")

    def make(self, lead_id: int, campaign: str) -> str:
        return self._serializer.dumps([lead_id, campaign])

    def read(self, token: str) -> TokenData | None:
        try:
            lead_id, campaign = self._serializer.loads(token)
        except (BadSignature, ValueError, TypeError):
            return None
        if not isinstance(lead_id, int) or not isinstance(campaign, str):
            return None
        return TokenData(lead_id, campaign)
