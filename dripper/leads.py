"""A lead as dripper sees it, and reading leads from CSV.

Bad rows are reported with the physical line they start on and skipped; the rest
import. Nothing here touches the database.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from dripper import timing
from dripper.campaigns import CampaignFile, did_you_mean

CORE_COLUMNS = ("email", "first_name", "last_name", "company", "stage", "timezone", "campaign")
POSTAL_COLUMNS = ("address_line1", "address_line2", "city", "region", "postal_code", "country")
_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?\.[A-Za-z0-9\-]{2,}$")
_ATTR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def full_name(first: str, last: str) -> str:
    """"Ada Lovelace", "Ada", or "" (stored rows and leads alike)."""
    return " ".join(p for p in (first, last) if p)


class LeadError(ValueError):
    """One lead's data is unusable; the message says which field and why."""


@dataclass(frozen=True)
class Lead:
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
    attrs: dict[str, str] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return full_name(self.first_name, self.last_name)


LEAD_FIELDS = tuple(f.name for f in fields(Lead) if f.name != "attrs")


def normalize_email(value: str) -> str:
    email = value.strip().lower()
    if not _EMAIL.match(email):
        raise LeadError(f"invalid e-mail address {value!r}")
    return email


_NOT_ATTRS = frozenset(CORE_COLUMNS + POSTAL_COLUMNS)


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
    country = values.get("country", "")
    return Lead(
        email=email, stage=stage, campaign=campaign, timezone=tz,
        first_name=values.get("first_name", ""), last_name=values.get("last_name", ""),
        company=values.get("company", ""), attrs=attrs,
        address_line1=values.get("address_line1", ""), address_line2=values.get("address_line2", ""),
        city=values.get("city", ""), region=values.get("region", ""), postal_code=values.get("postal_code", ""),
        country=country.upper() if len(country) == 2 else country,
    )


@lru_cache(maxsize=1024)
def _known_zone(name: str) -> None:
    timing.zone(name)  # an unknown one raises, and is not cached


@dataclass(frozen=True)
class BadRow:
    line: int
    message: str


def read_csv(path: Path | str, config: CampaignFile, *, dedupe: bool = True) -> Iterator[tuple[int, Lead | BadRow]]:
    """Yield (physical line, Lead or BadRow) for each record; the header is line 1.

    The file is streamed, never read whole. With `dedupe=False` a repeated e-mail is the
    caller's to find (`leads import` finds it in the database, so that memory stays flat
    however long the file is)."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        yield from _records(csv.reader(handle), config, dedupe)


def _records(reader: Any, config: CampaignFile, dedupe: bool) -> Iterator[tuple[int, Lead | BadRow]]:
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise LeadError("the file is empty: expected a header line with at least 'email'") from None
    if "email" not in header:
        raise LeadError(f"no 'email' column in the header (found: {', '.join(header)})")
    seen: dict[str, int] = {}
    line = reader.line_num + 1
    for record in reader:
        start, line = line, reader.line_num + 1
        if not "".join(record).strip():
            continue
        if len(record) != len(header):
            yield start, BadRow(start, f"expected {len(header)} fields, found {len(record)}")
            continue
        try:
            lead = build_lead(dict(zip(header, record)), config)
        except ValueError as exc:
            yield start, BadRow(start, str(exc))
            continue
        if dedupe:
            if lead.email in seen:
                yield start, BadRow(start, duplicate_message(seen[lead.email], lead.email))
                continue
            seen[lead.email] = start
        yield start, lead


def duplicate_message(first_line: int, email: str) -> str:
    return f"duplicate of line {first_line} ({email})"


__all__ = ["full_name", "Lead", "LeadError", "BadRow", "build_lead", "read_csv", "normalize_email", "duplicate_message"]
