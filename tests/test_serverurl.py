"""dripper.serverurl: the URLs of mail servers (DRIPPER_IMAP_URL, DRIPPER_SMTP_URL)."""

from __future__ import annotations

import ssl

import pytest

from dripper import serverurl
from dripper.inbound.imap import ImapConfig

SCHEMES = {"imaps": (True, 993), "imap": (False, 143)}


def test_defaults_follow_the_scheme() -> None:
    secure = serverurl.parse("imaps://mail.example", "X", SCHEMES)
    plain = serverurl.parse("imap://", "X", SCHEMES)
    assert (secure.host, secure.port, secure.implicit_tls) == ("mail.example", 993, True)
    assert (plain.host, plain.port, plain.implicit_tls) == ("localhost", 143, False)
    assert (plain.username, plain.password, plain.path, dict(plain.options)) == ("", "", "", {})


def test_credentials_and_path_are_unquoted_and_the_last_option_wins() -> None:
    url = serverurl.parse("imap://us%40er:p%3Ass@h:1430/My%20Box?batch=5&batch=7&Folder=Done", "X", SCHEMES)
    assert (url.username, url.password, url.port, url.path) == ("us@er", "p:ss", 1430, "My Box")
    assert url.option("batch", "200") == "7"
    assert url.option("Folder", "") == "Done"  # values keep their case
    assert url.option("missing", "fallback") == "fallback"


@pytest.mark.parametrize(("query", "expected"), [("", True), ("?f=off", False), ("?f=YES", True), ("?f=0", False)])
def test_flag(query: str, expected: bool) -> None:
    assert serverurl.parse(f"imap://h{query}", "X", SCHEMES).flag("f", True) is expected


def test_an_unknown_scheme_names_the_setting_and_the_schemes_in_order() -> None:
    with pytest.raises(ValueError, match=r"^DRIPPER_X must start with imaps:// or imap:// \(got http://\)$"):
        serverurl.parse("http://h", "DRIPPER_X", SCHEMES)
    with pytest.raises(ValueError, match=r"\(got nothing://\)$"):
        serverurl.parse("h", "DRIPPER_X", SCHEMES)


def test_tls_context_verifies_unless_told_not_to() -> None:
    assert serverurl.tls_context(True).verify_mode == ssl.CERT_REQUIRED
    lax = serverurl.tls_context(False)
    assert (lax.verify_mode, lax.check_hostname) == (ssl.CERT_NONE, False)


def test_imap_config_reads_its_url() -> None:
    config = ImapConfig.parse("imap://u:p@mail.example/INBOX.Leads?starttls=no&verify=false&batch=0&processed=Done")
    assert (config.host, config.port, config.tls, config.starttls) == ("mail.example", 143, False, False)
    assert (config.mailbox, config.processed, config.quarantine, config.batch) == (
        "INBOX.Leads",
        "Done",
        "Quarantine",
        1,
    )
    assert config.verify is False and config.context().verify_mode == ssl.CERT_NONE
    assert ImapConfig.parse("imap://h").starttls is True
    assert ImapConfig.parse("imaps://h/").mailbox == "INBOX"
    with pytest.raises(ValueError, match="DRIPPER_IMAP_URL must start with imaps:// or imap://"):
        ImapConfig.parse("smtp://h")
