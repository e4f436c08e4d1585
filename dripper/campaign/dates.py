"""Dates for templates, relative to the touch's send instant, written in the lead's language.

`send_date` is the instant the touch is sent, on the lead's own clock; `offer_until(days=21)`
is the day an offer made in that touch ends (never "the end of this month", which gives a
lead whose touch goes out on the 28th two days). Both print as a long date in the lead's
locale ("March 20, 2026", "20. März 2026"), and the `date` filter writes any date in
another Babel format: `{{ send_date | date('short') }}`, `{{ offer_until(weeks=3) | date('d MMMM') }}`.

The locale is the one letters already use for their date (`postal.locale_for`): the lead's
`locale` or `language` attribute, else the main language of its country, else en_US.
Babel (CLDR data) writes the dates: month names and orders for every language, which
hand-written strftime formats would get wrong.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import Any

from babel.dates import format_date, format_datetime
from jinja2 import TemplateRuntimeError, pass_context
from jinja2.runtime import Context

from dripper.campaign import timing

# The widths Babel names; anything else is a CLDR pattern such as "d MMMM y".
_WIDTHS = ("short", "medium", "long", "full")


class LocalDate(date):
    """A day that prints as a long date in the lead's locale (`{{ offer_until(days=21) }}`).
    Made with `of`: date arithmetic builds instances the usual way (en_US then)."""

    locale: str = "en_US"

    @classmethod
    def of(cls, day: date, locale: str) -> LocalDate:
        made = cls(day.year, day.month, day.day)
        made.locale = locale
        return made

    def __str__(self) -> str:
        return written(self, "long", self.locale)


class LocalDateTime(datetime):
    """The send instant on the lead's clock; prints as a long date in the lead's locale."""

    locale: str = "en_US"

    @classmethod
    def of(cls, instant: datetime, locale: str) -> LocalDateTime:
        made = cls(
            instant.year,
            instant.month,
            instant.day,
            instant.hour,
            instant.minute,
            instant.second,
            instant.microsecond,
            instant.tzinfo,
            fold=instant.fold,
        )
        made.locale = locale
        return made

    def __str__(self) -> str:
        return written(self.date(), "long", self.locale)


def written(day: date, form: str, locale: str) -> str:
    """`day` in `form` (a width or a CLDR pattern) in `locale`; a TemplateRuntimeError
    (the touch fails with render_error) for a pattern Babel cannot read. A date-time
    with a pattern may show its time too (`HH:mm`); a width writes the date alone."""
    try:
        if isinstance(day, datetime):
            if form not in _WIDTHS:
                return str(format_datetime(day, format=form, tzinfo=day.tzinfo, locale=locale))
            day = day.date()
        return str(format_date(day, format=form, locale=locale))
    except (ValueError, KeyError, AttributeError, TypeError) as exc:
        raise TemplateRuntimeError(f"date: cannot write a date as {form!r}: {exc}") from None


def lead_zone(name: str | None) -> tzinfo:
    try:
        return timing.zone(name or "UTC")
    except ValueError:  # a zone the tz database dropped since the lead was stored
        return timing.zone("UTC")


def send_date(now: datetime, zone: tzinfo, locale: str) -> LocalDateTime:
    return LocalDateTime.of(now.astimezone(zone), locale)


class OfferUntil:
    """`offer_until(days=21)`, `offer_until(weeks=3)`, `offer_until(months=1)` or
    `offer_until('3w')`: the day that long after the send day, on the lead's clock.
    Months are calendar months, as in campaigns.yaml (31 Jan + 1 month = 28 Feb)."""

    __slots__ = ("_sent",)

    def __init__(self, sent: LocalDateTime):
        self._sent = sent

    def __call__(self, duration: str | None = None, *, days: Any = 0, weeks: Any = 0, months: Any = 0) -> LocalDate:
        try:
            spans = [_count(days, "days"), _count(weeks, "weeks"), _count(months, "months")]
            extra = timing.Duration.parse(duration) if duration is not None else timing.Duration()
        except ValueError as exc:
            raise TemplateRuntimeError(f"offer_until: {exc}") from None
        span = timing.Duration(months=spans[2] + extra.months, days=spans[0] + 7 * spans[1] + extra.days)
        if span == timing.Duration():
            raise TemplateRuntimeError("offer_until: say how long the offer runs, e.g. offer_until(days=21)")
        sent = self._sent
        assert sent.tzinfo is not None  # made by send_date, from an aware instant
        return LocalDate.of(span.add_to(sent, sent.tzinfo).astimezone(sent.tzinfo).date(), sent.locale)


def _count(value: Any, unit: str) -> int:
    """A whole, non-negative number of `unit` (a campaign variable may hold it as text)."""
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise ValueError(f"{unit}={value!r} is not a whole number") from None
    if number < 0 or number > 3660:
        raise ValueError(f"{unit}={number} is out of range (0 to 3660)")
    return number


@pass_context
def date_filter(context: Context, value: Any, form: str = "long", locale: str | None = None) -> str:
    """`{{ x | date }}`, `{{ x | date('short') }}`, `{{ x | date('d MMMM y') }}`: a date,
    a date-time (written on the lead's clock) or an ISO-8601 text (a `date` field) in the
    lead's locale, or in `locale` when given."""
    wanted = locale or getattr(value, "locale", None) or context.get("locale") or "en_US"
    return written(_day(value, context), form, str(wanted))


def _day(value: object, context: Context) -> date:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip()) if "T" in value else date.fromisoformat(value.strip())
        except ValueError:
            raise TemplateRuntimeError(f"date: {value!r} is not a date (YYYY-MM-DD)") from None
    if isinstance(value, datetime):
        sent = context.get("send_date")
        if value.tzinfo is not None and isinstance(sent, datetime) and sent.tzinfo is not None:
            value = value.astimezone(sent.tzinfo)  # on the lead's clock
        return value
    if isinstance(value, date):
        return value
    raise TemplateRuntimeError(f"date: {value!r} is not a date")


__all__ = ["LocalDate", "LocalDateTime", "OfferUntil", "date_filter", "lead_zone", "send_date"]
