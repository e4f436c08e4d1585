"""A lead's language (BCP 47), owner and consent: columns of their own (migration 0013),
checked on import, merged like the other columns, shown by `plan --json`, read by
conditions and call tasks."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from conftest import PG_ADMIN

from dripper.campaign.model import CampaignFile
from dripper.config import Loaded
from dripper.leads.records import LeadError, build_lead, normalize_language
from dripper.store import db

T0 = "2026-01-05T08:00:00Z"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("de", "de"),
        ("DE", "de"),
        ("de_DE", "de-DE"),
        ("fr-ca", "fr-CA"),
        (" en-GB ", "en-GB"),
        ("zh-hant-tw", "zh-Hant-TW"),
    ],
)
def test_a_language_is_kept_in_its_bcp47_form(given: str, kept: str) -> None:
    assert normalize_language(given) == kept


@pytest.mark.parametrize("bad", ["klingon", "xx", "de DE", "12"])
def test_a_language_babel_does_not_know_is_refused_with_the_value(bad: str) -> None:
    with pytest.raises(LeadError, match=f"language {bad!r} is not a BCP 47 language tag"):
        normalize_language(bad)


def test_build_lead_takes_the_columns_out_of_the_attributes(loaded: Loaded) -> None:
    config: CampaignFile = loaded.campaigns
    raw = {
        "email": "ada@x.example",
        "language": "de_at",
        "owner": "Ann Owner",
        "consent_source": "trade fair 2025",
        "consent_at": "2025-11-03T10:15:00+01:00",
        "size": "XL",
    }
    lead = build_lead(raw, config)
    assert (lead.language, lead.owner, lead.consent_source) == ("de-AT", "Ann Owner", "trade fair 2025")
    assert lead.consent_at == datetime(2025, 11, 3, 9, 15, tzinfo=UTC)
    assert lead.attrs == {"size": "XL"}
    # a date alone, or a time without offset, is UTC
    assert build_lead({**raw, "consent_at": "2025-11-03"}, config).consent_at == datetime(2025, 11, 3, tzinfo=UTC)
    with pytest.raises(LeadError, match=re.escape("consent_at '03.11.2025' is not an ISO-8601 date")):
        build_lead({**raw, "consent_at": "03.11.2025"}, config)
    empty = build_lead({"email": "ada@x.example", "language": "", "consent_at": ""}, config)
    assert (empty.language, empty.owner, empty.consent_at) == ("", "", None)


def _write(project: Path, text: str) -> str:
    (project / "profile.csv").write_text(text)
    return "profile.csv"


def test_import_stores_checks_and_merges_the_columns(dripper, project: Path) -> None:
    name = _write(
        project,
        "email,stage,language,owner,consent_source,consent_at\n"
        "ada@x.example,supplier_research,de_de,Ann,fair,2025-11-03T10:15:00+01:00\n"
        "bob@x.example,supplier_research,klingon,Ben,,\n"
        "cy@x.example,supplier_research,fr-ca,,,2025-11-04\n"
        "dee@x.example,supplier_research,,Tab\\Back,web\tform,\n",
    )
    result = dripper("leads", "import", name, "--at", T0, ok=2)
    assert f"{name}:3: language 'klingon' is not a BCP 47 language tag" in result.stderr
    ada = dripper.json("plan", "ada@x.example", "--json")["lead"]
    assert (ada["language"], ada["owner"], ada["consent_source"]) == ("de-DE", "Ann", "fair")
    assert ada["consent_at"] == "2025-11-03T09:15:00+00:00" and ada["attrs"] == {}
    cy = dripper.json("plan", "cy@x.example", "--json")["lead"]
    assert (cy["language"], cy["owner"], cy["consent_at"]) == ("fr-CA", "", "2025-11-04T00:00:00+00:00")
    dee = dripper.json("plan", "dee@x.example", "--json")["lead"]
    assert (dee["owner"], dee["consent_source"], dee["consent_at"]) == ("Tab\\Back", "web\tform", None)
    # a changed value is a changed lead; the file says what the lead is, like every column
    _write(
        project,
        "email,stage,language,owner,consent_source,consent_at\n"
        "ada@x.example,supplier_research,it,Ann,fair,2025-11-03T10:15:00+01:00\n",
    )
    assert "1 updated" in dripper("leads", "import", name, "--at", T0).stdout
    assert "1 unchanged" in dripper("leads", "import", name, "--at", T0).stdout
    assert dripper.json("plan", "ada@x.example", "--json")["lead"]["language"] == "it"


def test_leads_add_sets_and_keeps_language_and_owner(dripper) -> None:
    dripper("leads", "add", "zoe@x.example", "--language", "nl_be", "--owner", "Ann", "--at", T0)
    dripper("leads", "add", "zoe@x.example", "--first-name", "Zoe", "--at", T0)
    lead = dripper.json("plan", "zoe@x.example", "--json")["lead"]
    assert (lead["first_name"], lead["language"], lead["owner"]) == ("Zoe", "nl-BE", "Ann")
    bad = dripper("leads", "add", "zoe@x.example", "--language", "elvish", "--at", T0, ok=1)
    assert "language 'elvish'" in bad.stderr


def _alembic(conn: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    config.attributes["connection"] = conn
    return config


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own (the session's PostgreSQL one is at head already)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    base = request.getfixturevalue("pg_database")
    name = f"dripper_migrate_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield base.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_migration_moves_owner_and_language_out_of_the_attributes(fresh_db_url: str) -> None:
    engine = sa.create_engine(fresh_db_url)
    at = datetime(2026, 1, 5, 8, tzinfo=timezone(timedelta(hours=1))).replace(tzinfo=None)
    with engine.connect() as conn:
        command.upgrade(_alembic(conn), "0012")  # the schema before 0013
        conn.commit()
        rows = [
            (1, {"owner": "Ann", "language": "de_DE", "size": "XL"}),
            (2, {"locale": "fr-CA"}),  # kept as an attribute too: old letters read it
            (3, {"language": "klingon"}),  # not a language Babel knows: stays where it was
            (4, {}),
        ]
        for lead_id, attrs in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO leads (id, email, first_name, last_name, company, stage, stage_entered_at, "
                    "campaign, address_line1, address_line2, city, region, postal_code, country, attrs, "
                    "created_at, updated_at) VALUES (:id, :email, '', '', '', 's', :at, 'c', '', '', '', '', '', "
                    "'', :attrs, :at, :at)"
                ).bindparams(sa.bindparam("attrs", type_=sa.JSON)),
                {"id": lead_id, "email": f"l{lead_id}@x.example", "at": at, "attrs": attrs},
            )
        conn.commit()
        command.upgrade(_alembic(conn), "head")
        conn.commit()
        found = conn.execute(sa.text("SELECT id, language, owner, consent_source, attrs FROM leads ORDER BY id"))
        got = [(i, lang, owner, src, a if isinstance(a, dict) else json.loads(a)) for i, lang, owner, src, a in found]
    engine.dispose()
    assert got == [
        (1, "de-DE", "Ann", "", {"size": "XL"}),
        (2, "fr-CA", "", "", {"locale": "fr-CA"}),
        (3, "", "", "", {"language": "klingon"}),
        (4, "", "", "", {}),
    ]
