"""Several sender identities (`senders:` in campaigns.yaml), chosen per lead by its owner.

    sender:                       # the file's default identity (and the single-sender case)
      from: "Acme Sales <sales@acme.example>"
      postal_address: "Acme Inc., 1 Main St, Springfield, IL 62701, USA"
    senders:
      alice:
        from: "Alice Smith <alice@acme.example>"
        reply_to: alice@acme.example                  # optional
        postal_address: "..."                         # optional: default sender.postal_address
        signature: {name: Alice Smith, title: Account manager, phone: "+1 555 0100", photo_url: "https://…"}
        owners: [asmith]                              # optional: more owner values that choose alice
        notify: alice@acme.example                    # optional: where her leads' replies are told
    campaigns:
      literature-follow-up:
        sender: alice                                 # optional: this campaign's default identity

How a lead's `owner` chooses: compared without regard to case or surrounding spaces, it
matches a sender's NAME (`alice`), the address of its `from` (`alice@acme.example`), or one
of its `owners:` values; the address of the file's `sender:` chooses that one. A lead
whose owner matches none (or who has none) gets its campaign's `sender:`, else the file's
`sender:`. The choice is made at each touch, so a reassigned owner takes effect from the
next one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from email.utils import parseaddr
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from dripper.errors import Problem

if TYPE_CHECKING:
    from dripper.campaign import yamlpos
    from dripper.campaign.model import CampaignFile, Sender


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Signature(_Model):
    """What a template's signature block shows: `sender.signature.name`, …; empty by default."""

    name: str = ""
    title: str = ""
    phone: str = ""
    email: str = ""
    photo_url: str = ""


class Identity(_Model):
    """One entry of `senders:`: a Sender whose postal address may come from the default."""

    from_: str = Field(alias="from")
    reply_to: str | None = None
    postal_address: str | None = None
    bounce_address: str | None = None
    signature: Signature = Signature()
    owners: list[str] = Field(default_factory=list)  # owner values that choose it, beside its name and address
    notify: str | None = None  # where replies of its leads are told (default: its reply_to or from)


# Names limits.per_sender gives the file's `sender:` and every unnamed sender.
_RESERVED = frozenset({"sender", "default"})


def _key(value: str) -> str:
    return value.strip().casefold()


class Book:
    """Every identity of a file, resolved, and the owner value -> identity lookup."""

    def __init__(self, default: Sender, identities: Mapping[str, Identity], campaign_senders: Mapping[str, str | None]):
        from dripper.campaign.model import Sender

        self.default = default
        self.named: dict[str, Sender] = {}
        self._by_owner: dict[str, Sender] = {}
        for name, ident in identities.items():
            resolved = Sender(
                **{
                    "from": ident.from_,
                    "reply_to": ident.reply_to,
                    "postal_address": ident.postal_address or default.postal_address,
                    "bounce_address": ident.bounce_address,
                    "signature": ident.signature,
                    "notify": ident.notify,
                }
            )
            resolved._key = name
            self.named[name] = resolved
            for value in owner_values(name, ident):
                if _key(value):
                    self._by_owner.setdefault(_key(value), resolved)  # a clash is a `check` error
        # The file's sender is chosen by its address too (unless a named one claims it).
        self._by_owner.setdefault(_key(default.address), default)
        self._campaign_default = {
            campaign: self.named.get(name, default) if name else default for campaign, name in campaign_senders.items()
        }

    def for_campaign(self, campaign: str) -> Sender:
        """The campaign's default identity (its `sender:`, else the file's)."""
        return self._campaign_default.get(campaign, self.default)

    def choose(self, campaign: str, owner: str) -> Sender:
        """The identity a touch of `campaign` to a lead with this `owner` goes out from."""
        key = _key(owner)
        chosen = self._by_owner.get(key) if key else None
        return chosen or self.for_campaign(campaign)

    def knows(self, owner: str) -> bool:
        """Whether the owner value names an identity (else its leads get the campaign default)."""
        return bool(_key(owner)) and _key(owner) in self._by_owner

    @property
    def all(self) -> tuple[Sender, ...]:
        return (self.default, *self.named.values())


def owner_values(name: str, ident: Identity) -> Iterable[str]:
    return (name, parseaddr(ident.from_)[1], *ident.owners)


def problems(model: CampaignFile, pos: yamlpos.Positioned) -> list[Problem]:
    """What `check` refuses: a reserved or unknown sender name (a campaign's `sender:`,
    `limits.per_sender`), an address that is none, an owner value two identities claim."""
    from dripper.campaign.model import did_you_mean

    found: list[Problem] = []
    names = set(model.senders)
    for name in names & _RESERVED:
        found.append(
            Problem(pos.at(("senders", name), key=True), f"{name!r} is reserved (limits.per_sender uses it): rename it")
        )
    for name, campaign in model.campaigns.items():
        if campaign.sender is not None and campaign.sender not in names:
            hint = did_you_mean(campaign.sender, names) if names else " (declare it under senders:)"
            found.append(Problem(pos.at(("campaigns", name, "sender")), f"unknown sender {campaign.sender!r}{hint}"))
    for key in model.limits.per_sender:
        if key not in names and key not in ("sender", "default"):
            choices = names | {"sender", "default"}
            found.append(
                Problem(
                    pos.at(("limits", "per_sender", key), key=True),
                    f"unknown sender {key!r}{did_you_mean(key, choices)} (a name under senders:, sender or default)",
                )
            )
    claimed: dict[str, str] = {}
    for name, ident in model.senders.items():
        for field in ("from", "reply_to", "notify"):
            value = getattr(ident, "from_" if field == "from" else field)
            if value is not None and "@" not in parseaddr(value)[1]:
                found.append(Problem(pos.at(("senders", name, field)), f"{field}: no e-mail address in {value!r}"))
        for i, value in enumerate(ident.owners):
            if not value.strip():
                found.append(Problem(pos.at(("senders", name, "owners", i)), "an empty owner value chooses nothing"))
        for value in dict.fromkeys(_key(v) for v in owner_values(name, ident) if v.strip()):
            other = claimed.setdefault(value, name)
            if other != name:
                found.append(
                    Problem(
                        pos.at(("senders", name)),
                        f"owner {value!r} would choose both senders {other!r} and {name!r}",
                    )
                )
    return found


__all__ = ["Book", "Identity", "Signature", "problems"]
