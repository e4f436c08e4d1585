"""Which language a lead is written to, and which translation of a template or subject
that picks.

A lead's language is its own `language` column (BCP 47), else its campaign's `language:`,
else the file's `defaults.language`, else English (`resolve`). A template `thanks.html`
may have translations beside it, `thanks.de.html`, `thanks.de-AT.html`: the most
specific one the language has wins, then its main language, then the file without a
language (`localized_name`). A `subject:` may be a mapping by language, chosen the same
way (`pick`).

Babel (CLDR) knows which tags are languages and how each writes its dates and numbers;
a tag is kept in one form, `de-AT`, whatever way it was written (`de_at`, `DE-at`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import PurePosixPath

FALLBACK = "en"  # the language of a lead, campaign and file that name none


@lru_cache(maxsize=512)
def normalize(value: str) -> str:
    """`value` as dripper keeps a language tag (`de`, `fr-CA`, `zh-Hant-TW`); a ValueError
    when Babel knows no such locale."""
    from babel import Locale, UnknownLocaleError

    text = value.strip()
    try:
        locale = Locale.parse(text.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        raise ValueError(
            f"language {value!r} is not a BCP 47 language tag dripper knows (e.g. de, en-GB, fr-CA)"
        ) from None
    return "-".join(part for part in (locale.language, locale.script, locale.territory, locale.variant) if part)


def resolve(lead: str, campaign: str | None, default: str | None) -> str:
    """The language a lead is written to: its own, its campaign's, the file's, English."""
    return lead or campaign or default or FALLBACK


def candidates(language: str) -> list[str]:
    """The tags to try for `language`, most specific first: `de-Latn-AT` -> de-Latn-AT,
    de-Latn, de."""
    parts = language.split("-")
    return ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]


def pick(choices: Mapping[str, str], language: str, default: str) -> str | None:
    """The entry of `choices` (by language tag) for `language`, else for the campaign's
    `default` language, else the first; None when there is none."""
    for tag in (*candidates(language), *candidates(default)):
        if tag in choices:
            return choices[tag]
    return next(iter(choices.values()), None)


def localized_name(template: str, language: str, available: Iterable[str] | Mapping[str, object]) -> str:
    """The translation of `template` for `language` among the files `available`
    (`email/thanks.html` -> `email/thanks.de.html`), else `template` itself."""
    path = PurePosixPath(template)
    for tag in candidates(language):
        name = str(path.with_name(f"{path.stem}.{tag}{path.suffix}"))
        if name in available:
            return name
    return template


def translations(template: str, available: Iterable[str]) -> list[str]:
    """The languages `template` has a translation file for, e.g. ['de', 'fr-CA']."""
    path = PurePosixPath(template)
    found = []
    for name in available:
        other = PurePosixPath(name)
        if other.parent != path.parent or other.suffix != path.suffix:
            continue
        stem, dot, tag = other.stem.rpartition(".")
        if dot and stem == path.stem and _is_language(tag):
            found.append(tag)
    return sorted(found)


@lru_cache(maxsize=512)
def _is_language(tag: str) -> bool:
    try:
        return normalize(tag) == tag
    except ValueError:
        return False


def locale_of(language: str, country: str) -> str:
    """The Babel locale dates and numbers are written in: the language with the lead's
    country's conventions when it names no country and Babel has that pair (`en` + DE ->
    en_DE), else the language as it is (`de-AT` -> de_AT)."""
    return _locale(language, country.upper() if len(country) == 2 else "")


@lru_cache(maxsize=1024)
def _locale(language: str, country: str) -> str:
    from babel import Locale, UnknownLocaleError

    wanted = language.replace("-", "_")
    tries = [wanted]
    if country and len(candidates(language)) == 1:
        tries.insert(0, f"{wanted}_{country}")
    for candidate in [*tries, "en"]:
        try:
            return str(Locale.parse(candidate))
        except (ValueError, UnknownLocaleError):
            continue
    return "en"


__all__ = ["FALLBACK", "candidates", "locale_of", "localized_name", "normalize", "pick", "resolve", "translations"]
