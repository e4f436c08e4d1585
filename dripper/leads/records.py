"""A lead as dripper sees it, and the checks its fields pass (reading a lead file is
`csvfile`'s, importing it `importer`'s). Nothing here touches the database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from dripper.campaign import languages, timing
from dripper.campaign.fields import checked_attrs
from dripper.campaign.model import CampaignFile, did_you_mean

CORE_COLUMNS = ("email", "first_name", "last_name", "company", "stage", "timezone", "campaign")
# Columns of their own since migration 0013 (issue 19): the lead's language (BCP 47), its
# sales owner, and where and when its consent was given.
PROFILE_COLUMNS = ("language", "owner", "consent_source", "consent_at")
POSTAL_COLUMNS = ("address_line1", "address_line2", "city", "region", "postal_code", "country")
# RFC 5321: the local part a dot-atom of ASCII atext (quoted local parts are not taken),
# the domain a host name of letters, digits and hyphens.
_LOCAL_PART = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_HOST_NAME = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9][a-z0-9-]{0,61}[a-z0-9]")
MAX_LOCAL_PART = 64  # octets (RFC 5321 4.5.3.1.1)
MAX_DOMAIN = 253  # octets of a host name written with dots, no trailing dot
MAX_ADDRESS = 254  # octets: the 256 of a path less its angle brackets
_ATTR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


_LINE_BREAKS = re.compile(r"[^\S ]+|[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# A stored lead's own columns, in the order `dripper plan --json` shows them.
LEAD_COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "company",
    "stage",
    "campaign",
    "timezone",
    *POSTAL_COLUMNS,
    *PROFILE_COLUMNS,
)
# Its text columns, each kept on one line for templates (`Lead.for_templates`).
_TEXT_COLUMNS = tuple(name for name in LEAD_COLUMNS if name not in ("timezone", "consent_at"))


def one_line(text: str) -> str:
    """Header-safe: no CR/LF can reach a header through any value."""
    if text.isprintable():  # the common case, checked in C: no control or separator characters
        return text.strip()
    return _LINE_BREAKS.sub(" ", text).strip()


def full_name(first: str, last: str) -> str:
    """ "Ada Lovelace", "Ada", or "" (stored rows and leads alike)."""
    return " ".join(p for p in (first, last) if p)


class LeadError(ValueError):
    """One lead's data is unusable; the message says which field and why."""


# Why a lead stopped receiving touches, most telling first (each a `<kind>_at` column).
STOP_KINDS = ("complained", "unsubscribed", "bounced", "converted", "replied")


@dataclass(frozen=True)
class Lead:
    """One lead: as imported (no id yet), or as stored (`Lead.stored`, every column the code
    reads). Templates see the copy `for_templates` gives."""

    email: str
    stage: str
    campaign: str
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    timezone: str | None = None  # None = defaults.timezone
    address_line1: str = ""
    address_line2: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""
    language: str = ""  # BCP 47 (`de`, `fr-CA`), as `normalize_language` writes it; "" = the default
    owner: str = ""  # the lead's sales owner: its calls, its sender identity (campaign/senders.py)
    consent_source: str = ""  # where the lead gave its consent (a form, a fair, …)
    consent_at: datetime | None = None  # when, aware
    attrs: dict[str, str] = field(default_factory=dict)
    id: int = 0  # 0 until stored
    # The store's columns (None on a lead not stored yet).
    stage_entered_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    converted_at: datetime | None = None
    replied_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    bounced_at: datetime | None = None
    complained_at: datetime | None = None
    opted_out: tuple[str, ...] = ()  # campaigns left from the preference page
    paused_until: datetime | None = None

    @classmethod
    def stored(cls, row: Mapping[Any, Any]) -> Lead:
        """A lead as the store holds it, from its row (every column, values as stored)."""
        values = {name: row[name] for name in _STORED if name in row}
        values["attrs"] = dict(row.get("attrs") or {})
        values["opted_out"] = tuple(row.get("opted_out") or ())
        return cls(**values)

    def for_templates(self, default_tz: str) -> Lead:
        """The lead as templates, letters and calls see it: every value on one line
        (nothing can reach a header), its time zone resolved (`default_tz` when it has none)."""
        text: dict[str, Any] = {k: one_line(str(getattr(self, k) or "")) for k in _TEXT_COLUMNS}
        attrs = {k: (one_line(v) if isinstance(v, str) else v) for k, v in self.attrs.items()}
        return replace(self, timezone=self.timezone or default_tz, attrs=attrs, **text)

    @property
    def entered_at(self) -> datetime:
        """When the stored lead entered its stage (where its track is timed from)."""
        if self.stage_entered_at is None:
            raise LeadError(f"lead {self.email} is not stored: it has entered no stage yet")
        return self.stage_entered_at

    @property
    def full_name(self) -> str:
        return full_name(self.first_name, self.last_name)

    @property
    def status(self) -> str:
        """Why the lead gets no more touches (`complained`, …), or `active`."""
        return next((kind for kind in STOP_KINDS if self.stopped_at(kind)), "active")

    def stopped_at(self, kind: str) -> datetime | None:
        """When the `kind` event (one of STOP_KINDS) stopped the lead, if it did."""
        value: datetime | None = getattr(self, f"{kind}_at")
        return value


# The columns an import writes (the id is the store's, the attributes go into `attrs`).
LEAD_FIELDS = (
    "email",
    "stage",
    "campaign",
    "first_name",
    "last_name",
    "company",
    "timezone",
    *POSTAL_COLUMNS,
    *PROFILE_COLUMNS,
)
# The fields a stored row fills (all of them).
_STORED = tuple(f.name for f in fields(Lead))
# What a template may use of `lead`: its own values, not the store's bookkeeping.
TEMPLATE_FIELDS = frozenset({*LEAD_COLUMNS, "attrs", "id", "full_name"})


def normalize_email(value: str) -> str:
    """The address as dripper keeps it (lower case, the domain in its ASCII form), or a
    LeadError saying why it cannot be sent to: every address kept is one an SMTP server
    without SMTPUTF8 takes and a file name can be made of."""
    text = value.strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise LeadError(f"invalid e-mail address {value!r}: expected local-part@domain")
    if not local.isascii():  # checked before lower(): "\u212a".lower() is an ASCII "k"
        raise LeadError(
            f"invalid e-mail address {value!r}: the part before @ is not ASCII "
            "(such addresses need SMTPUTF8, which dripper does not use)"
        )
    local = local.lower()
    if len(local) > MAX_LOCAL_PART:
        raise LeadError(
            f"invalid e-mail address {value!r}: the part before @ is {len(local)} characters long; "
            f"at most {MAX_LOCAL_PART} are allowed"
        )
    if not _LOCAL_PART.fullmatch(local):
        raise LeadError(
            f"invalid e-mail address {value!r}: the part before @ may hold letters, digits, "
            "!#$%&'*+/=?^_`{|}~- and single dots between them"
        )
    email = f"{local}@{_host_name(domain, value)}"
    if len(email) > MAX_ADDRESS:
        raise LeadError(f"invalid e-mail address {value!r}: longer than {MAX_ADDRESS} characters")
    return email


def lookup_form(value: str) -> str:
    """An address typed to find a lead (`dripper event`, `plan`): as dripper keeps it when it
    is valid (`Jane@Müller.de` finds `jane@xn--mller-kva.de`), else as typed, lower-cased
    (a lead kept before addresses were checked this strictly can still be found)."""
    try:
        return normalize_email(value)
    except LeadError:
        return value.strip().lower()


def _host_name(domain: str, value: str) -> str:
    """The domain as an ASCII host name; an internationalized one (`müller.de`) in its
    IDNA 2008 form (`xn--mller-kva.de`), which every mail server takes."""
    if domain.isascii():
        host = domain.lower()
    else:
        import idna  # IDNA 2008 with UTS 46 mapping: the stdlib codec (IDNA 2003) turns ß into ss

        try:
            host = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise LeadError(
                f"invalid e-mail address {value!r}: the domain is not a valid internationalized host name ({exc})"
            ) from None
    if len(host) > MAX_DOMAIN:
        raise LeadError(f"invalid e-mail address {value!r}: the domain is longer than {MAX_DOMAIN} characters")
    if not _HOST_NAME.fullmatch(host) or host.rpartition(".")[2].isdigit():
        raise LeadError(f"invalid e-mail address {value!r}: the domain {domain!r} is not a valid host name")
    return host


_NOT_ATTRS = frozenset(CORE_COLUMNS + POSTAL_COLUMNS + PROFILE_COLUMNS)


def normalize_language(value: str) -> str:
    """A language tag as dripper keeps it: BCP 47 with a hyphen (`de`, `fr-CA`,
    `zh-Hant-TW`), from `de_DE`, `DE-de` or `fr-ca` alike; a LeadError when Babel (CLDR)
    knows no such locale, so every stored language has its dates, numbers and names."""
    try:
        return languages.normalize(value)
    except ValueError as exc:
        raise LeadError(str(exc)) from None


def parse_consent_at(value: str) -> datetime:
    """An ISO-8601 date or date and time (`2026-03-01`, `2026-03-01T09:30:00+01:00`); one
    without an offset is taken as UTC. A LeadError says why another is refused."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise LeadError(
            f"consent_at {value!r} is not an ISO-8601 date or date and time (e.g. 2026-03-01T09:30:00+01:00)"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@lru_cache(maxsize=256)
def _attr_name_ok(key: str) -> bool:
    return bool(_ATTR_NAME.match(key))


def _cleaned(raw: dict[str, str | None]) -> dict[str, str]:
    values = {name: (value or "").strip() for name, value in raw.items()}
    joined = "".join(values.values())  # one test for all the cells: this runs for every lead imported
    if "\r" in joined or "\n" in joined:
        name = next(n for n, v in values.items() if "\r" in v or "\n" in v)
        raise LeadError(f"{name} contains a line break")
    return values


def build_lead(raw: dict[str, str | None], config: CampaignFile) -> Lead:
    """Validate one lead's fields against the campaigns file."""
    values = _cleaned(raw)
    email = normalize_email(values.get("email", ""))
    campaign = values.get("campaign") or config.default_campaign
    if campaign not in config.campaigns:
        raise LeadError(f"unknown campaign {campaign!r}{did_you_mean(campaign, set(config.campaigns))}")
    stage = values.get("stage") or config.default_stage(campaign)
    if stage not in config.stages:
        raise LeadError(f"unknown stage {stage!r}{did_you_mean(stage, config.stages)}")
    tz = values.get("timezone") or None
    if tz:
        _known_zone(tz)  # raises ValueError with a helpful message
    # An empty cell is no value: `| default(...)` in a template then applies.
    attrs = {k: v for k, v in values.items() if v and k and k not in _NOT_ATTRS}
    for key in attrs:
        if not _attr_name_ok(key):
            raise LeadError(f"column {key!r} cannot be a template attribute: use letters, digits and _")
    attrs = checked_attrs(attrs, config.fields)  # declared fields: required, typed (campaign/fields.py)
    country = values.get("country", "")
    language = values.get("language", "")
    consent_at = values.get("consent_at", "")
    return Lead(
        email=email,
        stage=stage,
        campaign=campaign,
        timezone=tz,
        first_name=values.get("first_name", ""),
        last_name=values.get("last_name", ""),
        company=values.get("company", ""),
        attrs=attrs,
        address_line1=values.get("address_line1", ""),
        address_line2=values.get("address_line2", ""),
        city=values.get("city", ""),
        region=values.get("region", ""),
        postal_code=values.get("postal_code", ""),
        country=country.upper() if len(country) == 2 else country,
        language=normalize_language(language) if language else "",
        owner=values.get("owner", ""),
        consent_source=values.get("consent_source", ""),
        consent_at=parse_consent_at(consent_at) if consent_at else None,
    )


@lru_cache(maxsize=1024)
def _known_zone(name: str) -> None:
    timing.zone(name)  # an unknown one raises, and is not cached


@dataclass(frozen=True)
class BadRow:
    line: int
    message: str


def duplicate_message(first_line: int, email: str) -> str:
    return f"duplicate of line {first_line} ({email})"


__all__ = [
    "STOP_KINDS",
    "TEMPLATE_FIELDS",
    "BadRow",
    "Lead",
    "LeadError",
    "build_lead",
    "duplicate_message",
    "full_name",
    "lookup_form",
    "normalize_email",
    "normalize_language",
    "parse_consent_at",
]
