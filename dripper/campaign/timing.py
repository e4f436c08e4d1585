"""Durations (`0d`, `36h`, `2w`, `3mo`) and send windows, in a lead's own time zone.

Calendar units (days, weeks, months) move the local wall-clock date, so a step
two weeks after 10:00 is at 10:00 again even across a DST change; hours,
minutes and seconds are elapsed time.
"""

from __future__ import annotations

import calendar
import difflib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

_UNITS = {"mo": "months", "w": "weeks", "d": "days", "h": "hours", "min": "minutes", "s": "seconds"}
_PART = re.compile(r"(\d+)\s*(mo|min|w|d|h|s)(?![a-z])", re.IGNORECASE)
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _day_index(name: str) -> int | None:
    for names in (DAY_NAMES, _FULL_DAY_NAMES):
        if name in names:
            return names.index(name)
    return None


@dataclass(frozen=True, order=True)
class Duration:
    months: int = 0
    days: int = 0
    seconds: int = 0

    @classmethod
    def parse(cls, text: object) -> Duration:
        if isinstance(text, int) and not isinstance(text, bool) and text == 0:
            return cls()
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"bad duration {text!r}: write it like 0d, 36h, 2w or 3mo")
        source = text.strip().lower()
        pos, months, days, seconds = 0, 0, 0, 0
        for match in _PART.finditer(source):
            if source[pos : match.start()].strip():
                break
            n, unit = int(match.group(1)), match.group(2).lower()
            if unit == "mo":
                months += n
            elif unit == "w":
                days += 7 * n
            elif unit == "d":
                days += n
            elif unit == "h":
                seconds += 3600 * n
            elif unit == "min":
                seconds += 60 * n
            else:
                seconds += n
            pos = match.end()
        if pos == 0 or source[pos:].strip():
            hint = (
                " ('m' is ambiguous: use 'mo' for months or 'min' for minutes)"
                if re.search(r"\d\s*m\b", source)
                else ""
            )
            raise ValueError(f"bad duration {text!r}: write it like 0d, 36h, 2w or 3mo{hint}")
        return cls(months, days, seconds)

    def add_to(self, start: datetime, zone: tzinfo) -> datetime:
        """`start` (aware) plus this duration, calendar parts on the local clock of `zone`."""
        if self.months or self.days:
            local = start.astimezone(zone)
            if self.months:
                month_index = local.month - 1 + self.months
                year, month = local.year + month_index // 12, month_index % 12 + 1
                day = min(local.day, calendar.monthrange(year, month)[1])
                local = local.replace(year=year, month=month, day=day)
            naive = local.replace(tzinfo=None) + timedelta(days=self.days)
            start = localize(naive, zone)
        # Elapsed time is added in UTC: adding to a zone-aware datetime would move the wall clock.
        return start.astimezone(UTC) + timedelta(seconds=self.seconds)

    def approx_days(self) -> float:
        return self.months * 30.44 + self.days + self.seconds / 86400

    def __str__(self) -> str:
        parts = []
        if self.months:
            parts.append(f"{self.months}mo")
        if self.days:
            parts.append(f"{self.days // 7}w" if self.days % 7 == 0 else f"{self.days}d")
        if self.seconds:
            parts.append(f"{self.seconds // 3600}h" if self.seconds % 3600 == 0 else f"{self.seconds}s")
        return "".join(parts) or "0d"


def localize(naive: datetime, zone: tzinfo) -> datetime:
    """Attach `zone` to a wall-clock time; a time skipped by DST moves forward."""
    aware = naive.replace(tzinfo=zone, fold=0)
    roundtrip = aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    if roundtrip != naive:  # in the spring-forward gap: take the instant after it
        aware = naive.replace(tzinfo=zone, fold=1).astimezone(UTC).astimezone(zone)
    return aware


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, IsADirectoryError) as exc:
        close = closest_zone(name)
        hint = f"did you mean {close!r}?" if close else "use an IANA name like America/Chicago"
        raise ValueError(f"unknown time zone {name!r} ({hint})") from exc


@lru_cache(maxsize=1)
def _zone_names() -> tuple[str, ...]:
    # Only on the error path: listing the zones reads the whole tz database (~30 ms).
    return tuple(sorted(available_timezones()))


@lru_cache(maxsize=256)
def closest_zone(name: str) -> str | None:
    """The IANA zone a mistyped name most likely meant: the same name in another case
    (`america/chicago`), a city alone (`Chicago`), or a close spelling (`America/Chicgo`)."""
    names = _zone_names()
    wanted = str(name).strip().replace(" ", "_").casefold()
    if not wanted:
        return None
    for candidate in names:
        if candidate.casefold() == wanted:
            return candidate
    cities = [c for c in names if "/" in c and c.rsplit("/", 1)[1].casefold() == wanted.rsplit("/", 1)[-1]]
    if len(cities) == 1:
        return cities[0]
    folded = {candidate.casefold(): candidate for candidate in names}
    close = difflib.get_close_matches(wanted, list(folded), n=1, cutoff=0.75)
    return folded[close[0]] if close else None


def parse_days(text: object) -> frozenset[int]:
    """`mon-fri`, `mon,wed,fri`, `sat-sun`, `mon-sun`, or a list of those."""
    items = text if isinstance(text, list) else str(text).split(",")
    days: set[int] = set()
    for raw in items:
        item = str(raw).strip().lower()
        first, dash, last = (part.strip() for part in item.partition("-"))
        a, b = _day_index(first), (_day_index(last) if dash else _day_index(first))
        if a is None or b is None:
            raise ValueError(f"bad days {text!r}: write them like mon-fri or mon,wed,fri")
        day = a
        while True:
            days.add(day)
            if day == b:
                break
            day = (day + 1) % 7
    return frozenset(days)


def parse_hours(text: object) -> tuple[time, time | None]:
    """`09:00-17:00` -> (09:00, 17:00); an end of 24:00 means midnight (None)."""
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", str(text))
    if not match:
        raise ValueError(f"bad hours {text!r}: write them like 09:00-17:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"bad hours {text!r}: times must lie between 00:00 and 24:00")
    start, end = time(h1, m1), (None if h2 == 24 else time(h2, m2))
    if end is not None and end <= start:
        raise ValueError(f"bad hours {text!r}: the window must end after it starts")
    return start, end


@dataclass(frozen=True)
class Window:
    """When touches may go out, on the lead's local clock."""

    days: frozenset[int] = frozenset(range(7))
    start: time = time(0, 0)
    end: time | None = None  # None = until midnight
    skip_holidays: bool = False

    @property
    def always(self) -> bool:
        return len(self.days) == 7 and self.start == time(0, 0) and self.end is None and not self.skip_holidays

    def _open_day(self, day: date, country: str | None) -> bool:
        return day.weekday() in self.days and not (self.skip_holidays and is_holiday(country, day))

    def next_open(self, instant: datetime, zone_: ZoneInfo, country: str | None = None) -> datetime:
        """The first instant at or after `instant` that lies inside the window."""
        if self.always:
            return instant
        local = instant.astimezone(zone_)
        day = local.date()
        for offset in range(400):
            candidate_day = day + timedelta(days=offset)
            if not self._open_day(candidate_day, country):
                continue
            opens = localize(datetime.combine(candidate_day, self.start), zone_)
            closes = (
                localize(datetime.combine(candidate_day, self.end), zone_)
                if self.end is not None
                else localize(datetime.combine(candidate_day + timedelta(days=1), time(0, 0)), zone_)
            )
            if offset == 0:
                if local < opens:
                    return opens.astimezone(UTC)
                if local < closes:
                    return instant
                continue
            return opens.astimezone(UTC)
        return instant  # a window that never opens is rejected by `check`; be safe anyway


@lru_cache(maxsize=256)
def _country_holidays(country: str, year: int) -> frozenset[date]:
    import holidays  # imported lazily: most runs never ask

    try:
        return frozenset(holidays.country_holidays(country.upper(), years=year).keys())
    except (NotImplementedError, KeyError):
        return frozenset()


def is_holiday(country: str | None, day: date) -> bool:
    if not country or len(country) != 2:
        return False
    return day in _country_holidays(country, day.year)
