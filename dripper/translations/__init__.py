"""dripper's own words in the lead's language: the e-mail footer and the unsubscribe and
preference pages (the campaign's texts are the marketer's: campaign/languages.py).

The catalogues are gettext `.po` files beside this module, one a language (`de.po`, …),
read with Babel (`babel.messages.pofile`) the first time a language is asked for: no
compile step, the package ships the sources. English is the source language: its
messages are the `msgid`s themselves. A language without a catalogue falls back to its
main language (`de-AT` -> `de.po`), then to English.

Templates use `{% trans %}…{% endtrans %}` and `_()` (jinja2.ext.i18n, installed by
`install`), translated into the `language` of the template's context; Python code asks
`translations(language)` for a `gettext`/`ngettext` pair.

Every catalogue is kept complete (tests/test_translations.py): a new message in a source
listed in SOURCES needs its translation in each `.po` before the tests pass.
"""

from __future__ import annotations

import gettext as _gettext
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import pass_context
from jinja2.runtime import Context

from dripper.campaign import languages

HERE = Path(__file__).parent
# The languages dripper speaks besides English; the inbound parsers (return dates,
# removal requests) read the same ones.
SHIPPED = ("de", "fr", "es", "it", "nl")
# Where dripper's translatable messages are (relative to the package's root).
SOURCES = (
    "translations/__init__.py",  # salutation()
    "translations/footer.html",  # the e-mail footer (campaign/templates.py)
    "campaign/templates.py",
    "web/public.py",
    "web/templates/public/page.html",
    "web/templates/public/preferences.html",
    "web/templates/public/unsubscribe.html",
    "web/templates/public/unsubscribed.html",
)


def catalogue_path(language: str) -> Path:
    return HERE / f"{language}.po"


@lru_cache(maxsize=32)
def translations(language: str) -> _gettext.NullTranslations:
    """The messages in `language` (a BCP 47 tag), its main language's when it has no
    catalogue of its own, else English (the messages as written)."""
    for tag in languages.candidates(language or languages.FALLBACK):
        path = catalogue_path(tag)
        if path.is_file():
            return _load(path)
    return _gettext.NullTranslations()


def _load(path: Path) -> _gettext.NullTranslations:
    from io import BytesIO

    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with path.open("rb") as source:
        catalog = read_po(source)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)  # a fuzzy entry is a guess: English instead
    compiled.seek(0)
    return _gettext.GNUTranslations(compiled)


def extract() -> Any:
    """Every message of SOURCES, as a Babel catalogue (what each `.po` must translate).
    `python -m dripper.translations` writes the new ones into each `.po`, untranslated."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_file

    catalog = Catalog(project="dripper")
    root = HERE.parent
    for source in SOURCES:
        method = "python" if source.endswith(".py") else "jinja2.ext:babel_extract"
        options = {} if method == "python" else {"extensions": "jinja2.ext.i18n", "trimmed": "false"}
        for line, message, comments, context in extract_from_file(method, str(root / source), options=options):
            catalog.add(message, locations=[(source, line)], auto_comments=comments, context=context)
    return catalog


def _language(context: Context) -> str:
    value = context.get("language")
    return value if isinstance(value, str) else languages.FALLBACK


@pass_context
def _template_gettext(context: Context, message: str) -> str:
    return translations(_language(context)).gettext(message)


@pass_context
def _template_ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return translations(_language(context)).ngettext(singular, plural, n)


# What a salutation may name; a translation picks (German greets by the full name).
NAME_FIELDS = ("first_name", "last_name", "full_name")


@pass_context
def salutation(context: Context, formal: bool = False) -> str:
    """`{{ salutation() }}` "Hello Ada," / "Guten Tag Ada Lovelace,"; `salutation(formal=True)`,
    for letters, "Dear Ada," / "Dear Sir or Madam,": in the language of the context, the
    lead's name as its language writes a greeting, or a greeting without one."""
    lead = context.get("lead")
    names = {name: str(getattr(lead, name, "") or "") for name in NAME_FIELDS}
    gettext = translations(_language(context)).gettext
    if formal:
        # Translators: a letter's greeting; {first_name}, {last_name} or {full_name}.
        text = gettext("Dear {first_name},") if names["first_name"] else gettext("Dear Sir or Madam,")
    else:
        # Translators: an e-mail's greeting; {first_name}, {last_name} or {full_name}.
        text = gettext("Hello {first_name},") if names["first_name"] else gettext("Hello,")
    return text.format(**names)


def install(env: jinja2.Environment) -> jinja2.Environment:
    """Give `env` the i18n extension, translating into each render's `language`: one
    environment serves every language (the callables read it from the context)."""
    env.add_extension("jinja2.ext.i18n")
    gettext: Any = _template_gettext
    ngettext: Any = _template_ngettext
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    return env


def update() -> None:
    """Each shipped `.po` brought in step with the sources: new messages added (empty,
    for a translator), gone ones dropped."""
    from babel.messages.pofile import read_po, write_po

    template = extract()
    for language in SHIPPED:
        path = catalogue_path(language)
        with path.open("rb") as source:
            catalog = read_po(source, locale=language)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        with path.open("wb") as target:
            write_po(target, catalog, omit_header=False, sort_output=True, width=0)


__all__ = [
    "NAME_FIELDS",
    "SHIPPED",
    "SOURCES",
    "catalogue_path",
    "extract",
    "install",
    "salutation",
    "translations",
    "update",
]
