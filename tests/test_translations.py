"""dripper's own words in the lead's language (dripper/translations): every shipped
catalogue complete, the footer and the public pages translated, and the inbound parsers
reading the languages dripper writes in."""

from __future__ import annotations

import re
from datetime import date
from email.message import EmailMessage

import jinja2
import pytest
from babel.messages.pofile import read_po

from dripper import translations
from dripper.inbound.classify import classify
from dripper.inbound.dates import return_date
from dripper.states import InboundKind

_PLACEHOLDERS = re.compile(r"%\((\w+)\)s|\{(\w+)\}|<[^>]+>")


def _placeholders(text: str) -> list[str]:
    return sorted(m.group(0) for m in _PLACEHOLDERS.finditer(text))


def test_the_shipped_languages_are_the_six_the_issue_asks_for() -> None:
    assert set(translations.SHIPPED) | {"en"} == {"en", "de", "fr", "es", "it", "nl"}


@pytest.mark.parametrize("language", translations.SHIPPED)
def test_every_catalogue_is_complete_and_keeps_the_placeholders(language: str) -> None:
    """A message added to a source (SOURCES) fails this until each `.po` translates it:
    `python -m dripper.translations` adds it, untranslated, for the translator."""
    wanted = {m.id: m for m in translations.extract() if m.id}
    with translations.catalogue_path(language).open("rb") as source:
        catalog = read_po(source, locale=language)
    found = {m.id: m for m in catalog if m.id}
    assert set(found) == set(wanted), "missing or stale messages: run python -m dripper.translations"
    for key, message in found.items():
        ids = key if isinstance(key, tuple) else (key,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert not message.fuzzy, f"{language}: fuzzy {key!r}"
        assert len(strings) == catalog.num_plurals if isinstance(key, tuple) else len(strings) == 1
        for text in strings:
            assert text.strip(), f"{language}: {key!r} is not translated"
            if "{first_name}" in ids[-1]:  # a salutation: the name as the language greets
                names = {f"{{{name}}}" for name in translations.NAME_FIELDS}
                assert len(_placeholders(text)) == 1 and set(_placeholders(text)) <= names, (language, key)
            else:
                assert _placeholders(text) == _placeholders(ids[-1]), f"{language}: {key!r} changes its placeholders"
    assert all(not errors for _, errors in catalog.check())  # Babel's own checks: python-format, plurals


def test_a_language_without_a_catalogue_falls_back_to_its_main_language_then_english() -> None:
    assert translations.translations("de-AT").gettext("Unsubscribe") == "Abmelden"
    assert translations.translations("fr-CA").gettext("Unsubscribe") == "Se désabonner"
    assert translations.translations("ja").gettext("Unsubscribe") == "Unsubscribe"
    assert translations.translations("").gettext("Unsubscribe") == "Unsubscribe"


def test_templates_translate_into_the_language_of_their_context_and_escape_values() -> None:
    env = translations.install(jinja2.Environment(autoescape=True))
    page = env.from_string("{% trans %}Stop all e-mails from {{ sender }}{% endtrans %}")
    assert page.render(sender="<Acme>", language="de") == "Alle E-Mails von &lt;Acme&gt; beenden"
    assert page.render(sender="Acme", language="nl") == "Stop alle e-mails van Acme"
    assert page.render(sender="Acme") == "Stop all e-mails from Acme"
    months = env.from_string("{% trans count=n %}{{ count }} month{% pluralize %}{{ count }} months{% endtrans %}")
    assert [months.render(n=n, language="de") for n in (1, 3)] == ["1 Monat", "3 Monate"]


# What a lead writes back, in each language dripper writes in: an out-of-office naming
# its return, and a request to be removed.
_INBOUND = {
    "en": ("I am out of the office, back on 3 December.", "Please unsubscribe me."),
    "de": ("Ich bin ab dem 3. Dezember wieder im Büro.", "Bitte abmelden."),
    "fr": ("Je suis absent, de retour le 3 décembre.", "Merci de me désinscrire."),
    "es": ("Estoy fuera de la oficina hasta el 3 de diciembre.", "Quiero darme de baja."),
    "it": ("Sono fuori ufficio, rientrerò il 3 dicembre.", "Cancellami dalla lista, grazie."),
    "nl": ("Ik ben afwezig, terug op 3 december.", "Graag uitschrijven."),
}


@pytest.mark.parametrize("language", ["en", *translations.SHIPPED])
def test_the_inbound_parsers_read_every_language_dripper_writes(language: str) -> None:
    away, removal = _INBOUND[language]
    assert return_date(away, date(2026, 11, 20)) == date(2026, 12, 3)
    message = EmailMessage()
    message["From"] = "lead@x.example"
    message["To"] = "reply@acme.example"
    message["Subject"] = "Re: your information pack"
    message.set_content(removal)
    assert classify(message).kind == InboundKind.UNSUBSCRIBE


@pytest.mark.parametrize(
    ("language", "email", "letter", "nameless"),
    [
        ("en", "Hello Ada,", "Dear Ada,", "Dear Sir or Madam,"),
        ("de-AT", "Guten Tag Ada Lovelace,", "Guten Tag Ada Lovelace,", "Sehr geehrte Damen und Herren,"),
        ("fr", "Bonjour Ada,", "Bonjour Ada Lovelace,", "Madame, Monsieur,"),
        ("nl", "Beste Ada,", "Beste Ada Lovelace,", "Geachte heer, mevrouw,"),
    ],
)
def test_salutation_greets_in_the_language_of_the_context(
    language: str, email: str, letter: str, nameless: str
) -> None:
    from dripper.leads.records import Lead

    env = translations.install(jinja2.Environment(autoescape=True))
    env.globals["salutation"] = translations.salutation
    ada = Lead(email="a@x.example", stage="s", campaign="c", first_name="Ada", last_name="Lovelace")
    template = env.from_string("{{ salutation() }}|{{ salutation(formal=True) }}")
    assert template.render(lead=ada, language=language) == f"{email}|{letter}"
    nobody = Lead(email="a@x.example", stage="s", campaign="c")
    assert template.render(lead=nobody, language=language).split("|")[1] == nameless
    # a name is text: escaped in HTML
    evil = Lead(email="a@x.example", stage="s", campaign="c", first_name="<b>")
    assert "&lt;b&gt;" in template.render(lead=evil, language=language)
