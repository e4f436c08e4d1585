"""The return date an out-of-office names: "back on 3 December", "until Dec 3rd",
"zurück am 03.12.", "bis zum 3. Dezember", "de retour le 3 décembre", "hasta el 3 de
diciembre". A date without a year is the next such day on or after the message."""

from __future__ import annotations

import re
from datetime import date

_MONTHS = {
    # English, German, French, Spanish, Italian, Dutch: enough letters to be unambiguous
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "may": 5,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
    "januar": 1,
    "jänner": 1,
    "februar": 2,
    "märz": 3,
    "maerz": 3,
    "mai": 5,
    "juni": 6,
    "juli": 7,
    "okt": 10,
    "dez": 12,
    "janv": 1,
    "févr": 2,
    "fevr": 2,
    "mars": 3,
    "avr": 4,
    "juin": 6,
    "juil": 7,
    "août": 8,
    "aout": 8,
    "déc": 12,
    "ene": 1,
    "abr": 4,
    "ago": 8,
    "dic": 12,
    "gen": 1,
    "mag": 5,
    "giu": 6,
    "lug": 7,
    "set": 9,
    "ott": 10,
    "mrt": 3,
    "mei": 5,
    "okt.": 10,
    "enero": 1,
    "febrero": 2,
    "marzo": 3,
    "abril": 4,
    "mayo": 5,
    "junio": 6,
    "julio": 7,
    "agosto": 8,
    "septiembre": 9,
    "octubre": 10,
    "noviembre": 11,
    "diciembre": 12,
}
_CUE = (
    r"(?:back|return(?:ing)?|returns|until|till|through|from|zurück|wieder|bis(?: zum| einschließlich)?|ab(?: dem)?|"
    r"retour|jusqu'?au|à partir du|de vuelta|regreso|hasta(?: el)?|a partir del|rientro|rientrer[òo]|di ritorno|"
    r"fino al|terug|tot en met)"
)
_MONTH_WORD = r"([a-zäéèûáíóú]{3,10}\.?)"
_NUMERIC = re.compile(_CUE + r"\D{0,20}?(\d{1,2})[./](\d{1,2})[./]?(\d{2,4})?", re.IGNORECASE)
_DAY_MONTH = re.compile(
    _CUE + r"\D{0,20}?(\d{1,2})(?:st|nd|rd|th|\.|er)?\s+(?:de\s+)?" + _MONTH_WORD + r"(?:\s+(\d{4}))?", re.IGNORECASE
)
_MONTH_DAY = re.compile(
    _CUE + r"\s+(?:on\s+)?(?:\w+day,?\s+)?" + _MONTH_WORD + r"\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?",
    re.IGNORECASE,
)


def _month(word: str) -> int | None:
    word = word.lower().rstrip(".")
    for length in (len(word), 4, 3):
        if word[:length] in _MONTHS:
            return _MONTHS[word[:length]]
    return None


def _resolve(day: int, month: int, year: str | None, today: date) -> date | None:
    try:
        if year:
            full = int(year) + (2000 if len(year) == 2 else 0)
            return date(full, month, day)
        candidate = date(today.year, month, day)
        return candidate if candidate >= today else date(today.year + 1, month, day)
    except ValueError:
        return None


def return_date(text: str, today: date) -> date | None:
    """The first return date named in `text`, if any (within a year of `today`)."""
    found: list[tuple[int, date]] = []
    for match in _NUMERIC.finditer(text):
        when = _resolve(int(match.group(1)), int(match.group(2)), match.group(3), today)
        if when:
            found.append((match.start(), when))
    for match in _DAY_MONTH.finditer(text):
        month = _month(match.group(2))
        when = _resolve(int(match.group(1)), month, match.group(3), today) if month else None
        if when:
            found.append((match.start(), when))
    for match in _MONTH_DAY.finditer(text):
        month = _month(match.group(1))
        when = _resolve(int(match.group(2)), month, match.group(3), today) if month else None
        if when:
            found.append((match.start(), when))
    plausible = [(pos, when) for pos, when in found if today <= when <= date(today.year + 1, today.month, 28)]
    return min(plausible)[1] if plausible else None
