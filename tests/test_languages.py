"""Languages (issue 19): which language a lead is written to (its own, its campaign's,
the file's, English), the translation of a template (`thanks.de.html`) and of a subject
(`subject:` by language) it gets, dates in its locale, and what `check` says."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dripper.campaign import languages
from dripper.config import Loaded, load
from dripper.errors import ConfigError
from dripper.leads.records import Lead
from dripper.settings import Settings

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
THANKS_DE = """{% extends "mail/base.html" %}
{% block content %}<p>Danke für Ihr Interesse an {{ lead.attrs.product | default('unseren Produkten') }},
gesendet am {{ send_date }}.</p>{% endblock %}
"""


def _project(project: Path, *, defaults: str = "", campaign: str = "", subject: str = "") -> Loaded:
    config = project / "campaigns.yaml"
    text = config.read_text()
    if defaults:
        text = text.replace("  timezone: America/Chicago\n", f"  timezone: America/Chicago\n  language: {defaults}\n")
    if campaign:
        text = text.replace("  literature-follow-up:\n", f"  literature-follow-up:\n    language: {campaign}\n", 1)
    if subject:
        text = text.replace(
            "subject: \"Your {{ lead.attrs.product | default('product') }} information pack\"", subject, 1
        )
    config.write_text(text)
    (project / "templates/mail/thanks.de.html").write_text(THANKS_DE)
    return load(Settings(campaigns_path=config))


def _render(loaded: Loaded, lead: Lead, step_id: str = "thanks") -> tuple[str, str, str]:
    campaign = loaded.campaigns.campaigns["literature-follow-up"]
    found = campaign.step(step_id)
    assert found is not None
    ctx = loaded.renderer.context(lead, campaign, found[1], "https://x.example/u/t", NOW)
    mail = loaded.renderer.email(campaign, found[1], ctx)
    return mail.subject, mail.html, mail.text


def _lead(**values: str) -> Lead:
    return Lead(email="a@x.example", stage="supplier_research", campaign="literature-follow-up", **values)


def test_the_language_is_the_leads_then_the_campaigns_then_the_files_then_english() -> None:
    assert languages.resolve("de-AT", "fr", "it") == "de-AT"
    assert languages.resolve("", "fr", "it") == "fr"
    assert languages.resolve("", None, "it") == "it"
    assert languages.resolve("", None, None) == "en"


def test_the_most_specific_translation_wins_then_its_main_language_then_none() -> None:
    files = {"mail/thanks.html", "mail/thanks.de.html", "mail/thanks.de-AT.html", "mail/thanks.fr.txt"}
    assert languages.localized_name("mail/thanks.html", "de-AT", files) == "mail/thanks.de-AT.html"
    assert languages.localized_name("mail/thanks.html", "de-CH", files) == "mail/thanks.de.html"
    assert languages.localized_name("mail/thanks.html", "fr", files) == "mail/thanks.html"  # only a .txt
    assert languages.translations("mail/thanks.html", [*files, "mail/thanks.xx.html", "other/thanks.it.html"]) == [
        "de",
        "de-AT",
    ]
    assert languages.pick({"en": "Hi", "de": "Hallo"}, "de-CH", "en") == "Hallo"
    assert languages.pick({"en": "Hi", "de": "Hallo"}, "fr", "de") == "Hallo"
    assert languages.pick({"it": "Ciao", "en": "Hi"}, "fr", "es") == "Ciao"


def test_a_german_lead_gets_the_german_template_and_subject_others_the_default(project: Path) -> None:
    loaded = _project(project, subject='subject: {en: "Your information pack", de: "Ihr Informationspaket"}')
    subject, html, text = _render(loaded, _lead(language="de-DE"))
    assert subject == "Ihr Informationspaket"
    assert "Danke für Ihr Interesse an unseren Produkten" in html and "Danke für Ihr Interesse" in text
    assert "2. März 2026" in html  # the date in the lead's locale
    subject, html, _ = _render(loaded, _lead(language="fr"))
    assert subject == "Your information pack" and "Thank you for asking" in html
    subject, html, _ = _render(loaded, _lead())
    assert subject == "Your information pack" and "Thank you for asking" in html


def test_the_campaigns_language_applies_to_leads_without_one(project: Path) -> None:
    loaded = _project(project, campaign="de", subject='subject: {en: "Your pack", de: "Ihr Paket"}')
    subject, html, _ = _render(loaded, _lead())
    assert subject == "Ihr Paket" and "Danke" in html
    subject, html, _ = _render(loaded, _lead(language="en-GB"))
    assert subject == "Your pack" and "Thank you" in html
    # a lead whose language no entry has gets the campaign's language's entry
    assert _render(loaded, _lead(language="it"))[0] == "Ihr Paket"


def test_the_files_default_language_applies_when_the_campaign_names_none(project: Path) -> None:
    loaded = _project(project, defaults="de_de")
    assert loaded.campaigns.defaults.language == "de-DE"
    assert "Danke" in _render(loaded, _lead())[1]


def test_dates_follow_the_language_with_the_leads_country() -> None:
    assert languages.locale_of("en", "DE") == "en_DE"
    assert languages.locale_of("de", "AT") == "de_AT"
    assert languages.locale_of("de-CH", "DE") == "de_CH"
    assert languages.locale_of("fr", "") == "fr"


def test_a_bad_language_in_the_file_is_a_located_error(project: Path) -> None:
    config = project / "campaigns.yaml"
    config.write_text(
        config.read_text().replace(
            "  timezone: America/Chicago\n", "  timezone: America/Chicago\n  language: klingon\n"
        )
    )
    with pytest.raises(ConfigError) as caught:
        load(Settings(campaigns_path=config))
    assert "campaigns.yaml:8" in str(caught.value) and "language 'klingon'" in str(caught.value)


def test_check_renders_translations_and_locates_their_errors(project: Path) -> None:
    (project / "templates/mail/thanks.de.html").write_text(
        '{% extends "mail/base.html" %}\n{% block content %}\n{{ lead.nmae }}{% endblock %}\n'
    )
    with pytest.raises(ConfigError) as caught:
        load(Settings(campaigns_path=project / "campaigns.yaml"))
    assert "thanks.de.html:3" in str(caught.value)


def test_check_lists_each_steps_languages_and_warns_about_gaps(project: Path, dripper_sqlite) -> None:
    _project(project, subject='subject: {en: "Your pack", de: "Ihr Paket"}')
    (project / "templates/mail/reminder.fr.html").write_text(THANKS_DE)
    result = dripper_sqlite("check")
    assert "languages: literature-follow-up: en (default), de: thanks\n" in result.stdout
    # the reminder's French template alone is not French: its subject is not translated
    assert "languages: literature-follow-up: en (default) only: 8 other step(s)" in result.stdout
    assert "translation" not in result.stderr  # which languages leads have, only the database knows
    # the languages leads in the database name (--against-db)
    for email, language in (("it@x.example", "it"), ("de@x.example", "de-AT"), ("fr@x.example", "fr")):
        dripper_sqlite("leads", "add", email, "--language", language, "--at", "2026-01-05T08:00:00Z")
    result = dripper_sqlite("check", "--against-db")
    assert (
        "step 'thanks' has no it translation of its template and subject: leads in it get the en text" in result.stderr
    )
    assert "step 'thanks' has no de-AT translation" not in result.stderr  # de serves de-AT
    assert "step 'reminder-1' has no de-AT translation of its template and subject" in result.stderr
    assert "step 'reminder-1' has no fr translation of its subject:" in result.stderr
    assert "campaigns.yaml:24:21: warning: step 'reminder-1'" in result.stderr  # where its template is named


def test_a_lead_with_a_language_changes_nothing_without_translations(loaded: Loaded) -> None:
    lead = _lead(language="de")
    subject, html, _ = _render(loaded, lead)
    assert subject == "Your product information pack" and "Thank you for asking" in html
    assert _render(loaded, replace(lead, language=""))[0] == subject


def test_the_footer_speaks_the_leads_language(loaded: Loaded) -> None:
    _, html, text = _render(loaded, _lead(language="fr-CA"))
    assert "Vous recevez ces e-mails parce que vous nous avez demandé des informations." in html
    assert ">Se désabonner</a>" in html and "\nSe désabonner : https://x.example/u/t\n" in text
    _, html, text = _render(loaded, _lead())
    assert ">Unsubscribe</a>" in html and "\nUnsubscribe: https://x.example/u/t\n" in text


@pytest.mark.parametrize(
    ("language", "country", "expected"),
    [
        ("", "US", "$1,250.50 · 12,500 · 25%"),
        ("de", "DE", "1.250,50 $ · 12.500 · 25 %"),
        ("fr", "FR", "1 250,50 $US · 12 500 · 25 %"),
        ("de-CH", "", "$ 1'250.50 · 12'500 · 25%"),
    ],
)
def test_amounts_and_numbers_are_written_in_the_leads_locale(
    project: Path, language: str, country: str, expected: str
) -> None:
    (project / "templates/mail/thanks.html").write_text(
        "<p>{{ vars.price | currency('usd') }} · {{ lead.attrs.units | number }} · {{ 0.25 | percent }}</p>\n"
    )
    config = project / "campaigns.yaml"
    # a column the filter reads is declared a number, so `check`'s sample lead has one
    declared = "vars:\n  price: '1250.5'\nfields:\n  units: {type: number}\ncampaigns:\n"
    config.write_text(config.read_text().replace("campaigns:\n", declared, 1))
    loaded = load(Settings(campaigns_path=config))
    lead = replace(_lead(language=language), country=country, attrs={"units": "12500"})
    assert expected in _render(loaded, lead)[2]  # the text part, its no-break spaces made plain


def test_a_value_that_is_not_a_number_fails_the_touch_with_a_message(project: Path) -> None:
    from jinja2 import TemplateRuntimeError

    (project / "templates/mail/thanks.html").write_text("<p>{{ lead.attrs.units | number }}</p>\n")
    config = project / "campaigns.yaml"
    config.write_text(config.read_text().replace("campaigns:\n", "fields:\n  units: {type: number}\ncampaigns:\n", 1))
    loaded = load(Settings(campaigns_path=config))
    with pytest.raises(TemplateRuntimeError, match="number: '12 units' is not a number"):
        _render(loaded, replace(_lead(), attrs={"units": "12 units"}))
    (project / "templates/mail/thanks.html").write_text("<p>{{ 5 | currency('XXY') }}</p>\n")
    with pytest.raises(ConfigError, match="'XXY' is not an ISO 4217 currency code"):  # `check` says so
        load(Settings(campaigns_path=config))


def test_today_is_written_in_the_leads_language_once_one_is_named(project: Path) -> None:
    (project / "templates/mail/thanks.html").write_text("<p>{{ today }}</p>\n")
    loaded = load(Settings(campaigns_path=project / "campaigns.yaml"))
    assert "<p>2 March 2026</p>" in _render(loaded, replace(_lead(), country="DE"))[1]  # as before languages
    assert "<p>2 März 2026</p>" in _render(loaded, _lead(language="de"))[1]
    assert "<p>2 mars 2026</p>" in _render(loaded, _lead(language="fr-CA"))[1]


def test_the_shipped_campaign_writes_to_its_german_example_leads_in_german(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    from email import message_from_bytes, policy

    from conftest import Dripper

    root = Path(__file__).resolve().parents[1]
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    shutil.copy(root / "campaigns.yaml", shipped)
    shutil.copytree(root / "templates", shipped / "templates")
    shutil.copy(root / "examples" / "leads.csv", shipped)
    run = Dripper(shipped, sqlite_url)
    monkeypatch.chdir(shipped)
    listed = run("check").stdout
    assert "languages: literature-follow-up: en (default), de: research-thanks, research-supplier-questions" in listed
    run("leads", "import", "leads.csv", "--at", "2026-01-05T15:00:00Z")
    run("tick", "--at", "2026-01-06T10:00:00Z")
    mails = {p.name.rsplit("_", 1)[1].removesuffix(".eml"): p for p in (shipped / "outbox").glob("*.eml")}

    def read(email: str) -> tuple[str, str]:
        message = message_from_bytes(mails[email].read_bytes(), policy=policy.default)
        return str(message["Subject"]), message.get_body(("plain",)).get_content()

    subject, text = read("zoe.mueller@mueller-anlagenbau.example")
    assert subject == "Ihr Informationspaket zu stainless valves"
    assert "Guten Tag Zoë Müller," in text and "Mit freundlichen Grüßen" in text and "\nAbmelden: http" in text
    assert read("marie.keller@keller-chemie.example")[0] == "Die nächsten Schritte mit Acme für Keller Chemie GmbH"
    assert read("otto.weber@brauerei-weber.example")[0] == "Vielen Dank für Ihre erneute Bestellung"
    subject, text = read("ada@lovelace-engineering.example")
    assert subject == "Your flow meters information pack" and "Hello Ada," in text and "\nUnsubscribe: http" in text


def test_a_subject_in_a_language_babel_does_not_know_is_located_at_its_step(project: Path) -> None:
    config = project / "campaigns.yaml"
    config.write_text(config.read_text().replace('subject: "New application notes"', 'subject: {en: "New", xx: "x"}'))
    with pytest.raises(ConfigError) as caught:
        load(Settings(campaigns_path=config))
    assert "campaigns.yaml:30:11:" in str(caught.value) and "language 'xx' is not a BCP 47 language tag" in str(
        caught.value
    )


def test_a_german_letter_is_dated_in_german_and_an_english_one_in_english() -> None:
    from dripper.channels.compose import Composer

    root = Path(__file__).resolve().parents[1]
    loaded = load(Settings(campaigns_path=root / "campaigns.yaml"))
    campaign = loaded.campaigns.campaigns["literature-follow-up"]
    found = campaign.step("research-intro-letter")
    assert found is not None
    zoe = Lead(
        email="zoe@x.example",
        stage="supplier_research",
        campaign=campaign.name,
        first_name="Zoë",
        last_name="Müller",
        timezone="Europe/Berlin",
        address_line1="Industriestraße 14",
        city="Stuttgart",
        postal_code="70565",
        country="DE",
        language="de",
    )
    composer = Composer(loaded, "http://127.0.0.1:8000", "secret")
    german = composer.letter(zoe, campaign, found[1], NOW).html
    assert "2. März 2026" in german and "Guten Tag Zoë Müller," in german and "Mit freundlichen Grüßen" in german
    english = composer.letter(replace(zoe, language=""), campaign, found[1], NOW).html
    assert "2 March 2026" in english and "Dear Zoë," in english


def test_simulate_takes_a_language_as_an_import_keeps_it(project: Path, dripper_sqlite) -> None:
    config = project / "campaigns.yaml"
    config.write_text(
        config.read_text().replace(
            "          template: mail/news.html\n",
            "          template: mail/news.html\n          when: \"lead.language == 'de-AT'\"\n",
            1,
        )
    )
    rows = dripper_sqlite.json("simulate", "--stage", "supplier_research", "--attr", "language=de_at", "--json")
    assert {r["step"]: r.get("applies") for r in rows}["news-1"] is True
    bad = dripper_sqlite("simulate", "--stage", "supplier_research", "--attr", "language=elvish", ok=1)
    assert "--attr: language 'elvish' is not a BCP 47 language tag" in bad.stderr


def test_preview_shows_the_translation_a_language_gets(project: Path, dripper_sqlite) -> None:
    _project(project, subject='subject: {en: "Your pack", de: "Ihr Paket"}')
    shown = dripper_sqlite("preview", "literature-follow-up", "thanks", "--language", "de_DE").stdout
    assert "Danke für Ihr Interesse" in shown and "Abmelden:" in shown
    assert "Thank you for asking" in dripper_sqlite("preview", "literature-follow-up", "thanks").stdout
    bad = dripper_sqlite("preview", "literature-follow-up", "thanks", "--language", "elvish", ok=1)
    assert "--language: language 'elvish' is not a BCP 47 language tag" in bad.stderr
