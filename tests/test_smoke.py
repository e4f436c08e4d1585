def test_import_and_tick(dripper):
    dripper("leads", "import", "leads.csv", "--at", "2026-01-05T08:00:00Z")
    counts = dripper.json("tick", "--at", "2026-01-06T15:00:00Z", "--json")
    assert counts["sent"] == 3


def test_smtp(dripper, smtp_sink):
    dripper("leads", "import", "leads.csv", "--at", "2026-01-05T08:00:00Z")
    counts = dripper.json("tick", "--at", "2026-01-06T15:00:00Z", "--json", DRIPPER_SMTP_URL=smtp_sink.url)
    assert counts["sent"] == 3
    assert len(smtp_sink.messages) == 3
