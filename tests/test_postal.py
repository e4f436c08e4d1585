"""The fast path of the postal check (rules cached per place) never disagrees with the
address library's full check, which a large import could not afford for every lead."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from dripper.leads import postal
from dripper.leads.records import Lead

COUNTRIES = [
    "US",
    "DE",
    "GB",
    "FR",
    "CN",
    "JP",
    "BR",
    "CA",
    "IT",
    "ES",
    "KR",
    "IN",
    "AU",
    "NL",
    "CH",
    "IE",
    "Germany",
    "XX",
    "",
]
REGIONS = [
    "",
    "IL",
    "Illinois",
    "il",
    "TX",
    "Bayern",
    "CA",
    "Ontario",
    "ON",
    "北京市",
    "Beijing",
    "東京都",
    "SP",
    "São Paulo",
    "NSW",
    "Dublin",
    "zz",
]
CITIES = [
    "",
    "Chicago",
    "Dallas",
    "Stuttgart",
    "London",
    "Paris",
    "北京",
    "东城区",
    "Toronto",
    "Tokyo",
    "São Paulo",
    "Sydney",
    "Dublin",
]
CODES = [
    "",
    "60601",
    "75201",
    "70565",
    "W1U 4NR",
    "75001",
    "100000",
    "M5V 2T6",
    "100-0001",
    "01310-100",
    "2000",
    "D02 X285",
    "12345-6789",
    "ABC",
    "8001",
]


def _lead(**address: str) -> Lead:
    return Lead(email="a@b.example", stage="s", campaign="c", **address)


def _addresses(n: int) -> list[Lead]:
    rng = random.Random(7)
    choices = {
        "address_line1": ["", "1 Main St"],
        "city": CITIES,
        "region": REGIONS,
        "postal_code": CODES,
        "country": COUNTRIES,
    }
    return [_lead(**{field: rng.choice(values) for field, values in choices.items()}) for _ in range(n)]


def test_the_cached_check_agrees_with_the_full_check(monkeypatch: pytest.MonkeyPatch) -> None:
    leads = _addresses(1500)
    fast = [postal.check(lead) for lead in leads]
    monkeypatch.setattr(postal, "_plainly_complete", lambda lead, country: False)
    full = [postal.check(lead) for lead in leads]
    assert fast == full
    # and the sample exercises both verdicts
    kinds = {(c.complete, bool(c.invalid)) for c in full}
    assert {(True, False), (False, False), (True, True)} <= kinds, kinds


def test_a_typical_complete_address_takes_the_fast_path() -> None:
    lead = _lead(address_line1="1850 Commerce St", city="Dallas", region="TX", postal_code="75201", country="US")
    assert postal._plainly_complete(lead, "US")
    assert not postal._plainly_complete(replace(lead, postal_code="60601"), "US")  # an Illinois ZIP code in Texas
