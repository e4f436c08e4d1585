"""The one lead record: built once from a stored row, read by attribute everywhere."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from dripper.config import Loaded
from dripper.leads.adding import add_lead
from dripper.leads.records import Lead, LeadError
from dripper.store import Store, leads
from dripper.store.queries import leadrows

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _row(**values: object) -> dict[str, object]:
    return {
        "id": 7,
        "email": "ada@x.example",
        "first_name": "Ada\r\nBcc: e@x.example",
        "last_name": "Lovelace",
        "company": "",
        "stage": "customer",
        "stage_entered_at": AT,
        "campaign": "c",
        "timezone": None,
        "country": "GB",
        "attrs": {"product": "valves\nand pumps"},
        "created_at": AT - timedelta(days=3),
        "updated_at": AT,
        "converted_at": None,
        "replied_at": None,
        "unsubscribed_at": None,
        "bounced_at": None,
        "complained_at": None,
        "opted_out": ["other"],
        "paused_until": None,
        **values,
    }


def test_a_stored_row_keeps_its_values_as_stored() -> None:
    lead = Lead.stored(_row())
    assert (lead.id, lead.email, lead.stage, lead.campaign) == (7, "ada@x.example", "customer", "c")
    assert lead.first_name == "Ada\r\nBcc: e@x.example"  # as stored: templates get the one-line copy
    assert lead.timezone is None and lead.entered_at == AT and lead.created_at == AT - timedelta(days=3)
    assert lead.opted_out == ("other",) and lead.attrs == {"product": "valves\nand pumps"}
    assert lead.status == "active"


def test_the_copy_for_templates_is_one_line_in_a_resolved_zone_and_the_record_is_untouched() -> None:
    lead = Lead.stored(_row())
    view = lead.for_templates("Europe/Berlin")
    assert view.first_name == "Ada Bcc: e@x.example" and view.attrs["product"] == "valves and pumps"
    assert view.timezone == "Europe/Berlin"
    assert Lead.stored(_row(timezone="Asia/Tokyo")).for_templates("Europe/Berlin").timezone == "Asia/Tokyo"
    assert (view.id, view.stage_entered_at, view.opted_out) == (lead.id, lead.stage_entered_at, lead.opted_out)
    assert lead.first_name == "Ada\r\nBcc: e@x.example" and lead.timezone is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        lead.stage = "other"  # type: ignore[misc]


def test_status_is_the_most_telling_stop() -> None:
    assert Lead.stored(_row(replied_at=AT)).status == "replied"
    assert Lead.stored(_row(replied_at=AT, converted_at=AT)).status == "converted"
    assert Lead.stored(_row(bounced_at=AT, unsubscribed_at=AT)).status == "unsubscribed"
    assert Lead.stored(_row(unsubscribed_at=AT, complained_at=AT)).status == "complained"
    assert Lead.stored(_row(bounced_at=AT)).stopped_at("bounced") == AT


def test_a_lead_not_stored_has_entered_no_stage() -> None:
    with pytest.raises(LeadError, match="not stored"):
        _ = Lead(email="new@x.example", stage="s", campaign="c").entered_at


def test_the_store_hands_out_records_with_every_column(store: Store, loaded: Loaded) -> None:
    raw = {"email": "new@lead.example", "first_name": "New", "stage": "supplier_research", "size": "XL"}
    with store.begin() as conn:
        add_lead(conn, loaded, raw, AT)
        lead = leadrows.by_email(conn, "new@lead.example")
        assert isinstance(lead, Lead)
        leadrows.set_flag(conn, lead.id, "unsubscribed", AT + timedelta(hours=1))
        leadrows.set_fields(conn, lead.id, AT, opted_out=["literature-follow-up"], paused_until=AT + timedelta(days=30))
        again = leadrows.by_id(conn, lead.id)
        assert leadrows.by_ids(conn, [lead.id]) == {lead.id: again}
        assert [found for chunk in leadrows.matching(conn, leads.c.id == lead.id) for found in chunk] == [again]
    assert (lead.first_name, lead.stage, lead.attrs, lead.entered_at, lead.created_at) == (
        "New",
        "supplier_research",
        {"size": "XL"},
        AT,
        AT,
    )
    assert lead.status == "active" and lead.opted_out == () and lead.paused_until is None
    assert again is not None and again.status == "unsubscribed"
    assert again.unsubscribed_at == AT + timedelta(hours=1)
    assert again.opted_out == ("literature-follow-up",) and again.paused_until == AT + timedelta(days=30)
