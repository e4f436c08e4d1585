"""Settings from the environment, signed tokens, SMTP URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from dripper.channels.email.transports.smtp import SmtpConfig
from dripper.settings import from_env
from dripper.tokens import Tokens


def test_defaults_need_no_configuration():
    s = from_env({})
    assert s.database_url == "sqlite:///dripper.db"
    assert s.campaigns_path == Path("campaigns.yaml") and s.templates_path == Path("templates")
    assert s.smtp_url is None and s.max_in_flight == 4 and s.tick_interval == 60


def test_environment_and_options():
    s = from_env(
        {
            "DRIPPER_DATABASE_URL": "postgresql+psycopg://x/y",
            "DRIPPER_CAMPAIGNS": "conf/c.yaml",
            "DRIPPER_BASE_URL": "https://drip.example/",
            "DRIPPER_MAX_IN_FLIGHT": "8",
        }
    )
    assert s.templates_path == Path("conf/templates")  # beside campaigns.yaml
    assert s.base_url == "https://drip.example" and s.max_in_flight == 8
    assert s.with_options(max_in_flight=None, tick_interval=5.0).tick_interval == 5.0
    assert from_env({"DRIPPER_TEMPLATES": "/t"}).templates_path == Path("/t")


def test_tokens_carry_lead_and_campaign_and_cannot_be_forged_or_moved():
    tokens = Tokens("secret-1")
    token = tokens.make(42, "literature-follow-up")
    data = tokens.read(token)
    assert data is not None and (data.lead_id, data.campaign) == (42, "literature-follow-up")
    assert Tokens("another-secret").read(token) is None
    _payload, _, signature = token.rpartition(".")
    moved = Tokens("secret-1").make(43, "literature-follow-up").rpartition(".")[0] + "." + signature
    assert tokens.read(moved) is None  # a signature does not move to another lead
    assert tokens.read(token[:-2] + ("AA" if not token.endswith("AA") else "BB")) is None
    for garbage in ("", ".", "x" * 500, "eyJ.abc", "null.null"):
        assert tokens.read(garbage) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://127.0.0.1:2525", ("127.0.0.1", 2525, False, False, None, None)),
        ("smtps://u%40x:p%3Aw@mail.example", ("mail.example", 465, True, False, "u@x", "p:w")),
        ("smtp://u:p@mail.example:587?starttls=true", ("mail.example", 587, False, True, "u", "p")),
        ("smtp://mail.example", ("mail.example", 25, False, False, None, None)),
    ],
)
def test_smtp_urls(url, expected):
    c = SmtpConfig.parse(url)
    assert (c.host, c.port, c.implicit_tls, c.starttls, c.username, c.password) == expected


def test_a_bad_smtp_url_is_a_clear_error():
    with pytest.raises(ValueError, match="smtp:// or smtps://"):
        SmtpConfig.parse("http://mail.example")
