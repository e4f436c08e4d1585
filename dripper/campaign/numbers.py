"""Numbers and amounts for templates, written in the lead's locale:

    {{ price | currency('EUR') }}        €1,250.00 / 1.250,00 € / 1 250,00 €
    {{ quantity | number }}              12,500 / 12.500
    {{ share | percent }}                25% / 25 %

The locale is the one dates are written in (the template's `locale`, campaign/languages.py);
a `locale=` argument overrides it. The value may be a number or text (a CSV column, a
campaign variable): `1250.5`, `1250,50` is not a number (the column is read, not guessed).
Babel (CLDR) knows every locale's separators, symbols and where they go, which a format
string written by hand gets wrong for most of them.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from babel.numbers import format_currency, format_decimal, format_percent, is_currency
from jinja2 import TemplateRuntimeError, pass_context
from jinja2.runtime import Context


def _number(value: Any, name: str) -> Decimal:
    if isinstance(value, bool):
        raise TemplateRuntimeError(f"{name}: {value!r} is not a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise TemplateRuntimeError(f"{name}: {value!r} is not a number (write it like 1250.50)") from None
    if not number.is_finite():
        raise TemplateRuntimeError(f"{name}: {value!r} is not a number")
    return number


def _locale(context: Context, locale: str | None) -> str:
    return str(locale or context.get("locale") or "en_US")


@pass_context
def currency_filter(
    context: Context, value: Any, code: str, format: str | None = None, locale: str | None = None
) -> str:
    """`{{ price | currency('EUR') }}`: the amount with the currency's symbol, in the lead's locale."""
    if not isinstance(code, str) or not is_currency(code.upper()):
        raise TemplateRuntimeError(f"currency: {code!r} is not an ISO 4217 currency code (EUR, USD, …)")
    amount = _number(value, "currency")
    try:
        return str(format_currency(amount, code.upper(), format=format, locale=_locale(context, locale)))
    except ValueError as exc:
        raise TemplateRuntimeError(f"currency: {exc}") from None


@pass_context
def number_filter(context: Context, value: Any, format: str | None = None, locale: str | None = None) -> str:
    """`{{ n | number }}`, `{{ n | number('#,##0.0') }}`: in the lead's locale."""
    try:
        return str(format_decimal(_number(value, "number"), format=format, locale=_locale(context, locale)))
    except ValueError as exc:
        raise TemplateRuntimeError(f"number: {exc}") from None


@pass_context
def percent_filter(context: Context, value: Any, format: str | None = None, locale: str | None = None) -> str:
    """`{{ 0.25 | percent }}`: 25 %, in the lead's locale (the value is a fraction)."""
    try:
        return str(format_percent(_number(value, "percent"), format=format, locale=_locale(context, locale)))
    except ValueError as exc:
        raise TemplateRuntimeError(f"percent: {exc}") from None


FILTERS = {"currency": currency_filter, "number": number_filter, "percent": percent_filter}

__all__ = ["FILTERS", "currency_filter", "number_filter", "percent_filter"]
