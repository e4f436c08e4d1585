"""A lead as dripper sees it, and reading leads from CSV.

Bad rows are reported with the physical line they start on and skipped; the rest
import. Nothing here touches the database.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterator

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


def _clean(name: str, value: str | None) -> str:
    text = (value or "").strip()
    if "\r" in text or "\n" in text:
        raise LeadError(f"{name} contains a line break")
    return text


def build_lead(raw: dict[str, str | None], config: CampaignFile) -> Lead:
    """Validate one lead's fields against the campaigns file."""
    values = {name: _clean(name, raw.get(name)) for name in raw}
    email = normalize_email(values.get("email", ""))
    campaign = values.get("campaign") or config.default_campaign
    if campaign not in config.campaigns:
        raise LeadError(f"unknown campaign {campaign!r}{did_you_mean(campaign, set(config.campaigns))}")
    stage = values.get("stage") or config.default_stage(campaign)
    if stage not in config.stages:
        raise LeadError(f"unknown stage {stage!r}{did_you_mean(stage, config.stages)}")
    tz = values.get("timezone") or None
    if tz:
        timing.zone(tz)  # raises ValueError with a helpful message
    # An empty cell is no value: `| default(...)` in a template then applies.
    attrs = {k: v for k, v in values.items() if k not in CORE_COLUMNS + POSTAL_COLUMNS and k and v}
    for key in attrs:
        if not _ATTR_NAME.match(key):
            raise LeadError(f"column {key!r} cannot be a template attribute: use letters, digits and _")
    postal = {k: values.get(k, "") for k in POSTAL_COLUMNS}
    if postal["country"]:
        postal["country"] = postal["country"].upper() if len(postal["country"]) == 2 else postal["country"]
    return Lead(
        email=email, stage=stage, campaign=campaign, timezone=tz,
        first_name=values.get("first_name", ""), last_name=values.get("last_name", ""),
        company=values.get("company", ""), attrs=attrs, **postal,
    )


@dataclass(frozen=True)
class BadRow:
    line: int
    message: str


def read_csv(path: Path | str, config: CampaignFile, text: str | None = None) -> Iterator[tuple[int, Lead | BadRow]]:
    """Yield (physical line, Lead or BadRow) for each record; the header is line 1."""
    if text is None:
        text = Path(path).read_text(encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
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
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            yield start, BadRow(start, f"expected {len(header)} fields, found {len(record)}")
            continue
        try:
            lead = build_lead(dict(zip(header, record)), config)
        except ValueError as exc:
            yield start, BadRow(start, str(exc))
            continue
        if lead.email in seen:
            yield start, BadRow(start, f"duplicate of line {seen[lead.email]} ({lead.email})")
            continue
        seen[lead.email] = start
        yield start, lead


__all__ = ["full_name", "Lead", "LeadError", "BadRow", "build_lead", "read_csv", "normalize_email"]
