"""The one bounce rule: is a refusal hard (the address or its domain is gone: the lead is
suppressed) or soft (anything else: the touch is retried)?

Every path asks it: a delivery report read from the mailbox (dripper.inbound.classify) and
an SMTP server's refusal at send time (the e-mail channel), so that both judge alike.
"""

from __future__ import annotations

import re

from dripper.states import InboundKind

# An enhanced status code (RFC 3463) in text: class, subject, detail.
STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]\d|\d)")


def hard_status(status: str) -> bool:
    """Codes that by themselves say the address or domain is gone: 5.1.1 (no such
    mailbox), 5.1.2 (no such domain), 5.1.3 (bad address syntax), 5.1.6 (moved), 5.1.10
    (null MX), 5.4.4 (no route to the domain). Not 5.2.1: a disabled mailbox exists."""
    klass, subject, detail = status.split(".")
    return klass == "5" and (subject, detail) in {
        ("1", "1"),
        ("1", "2"),
        ("1", "3"),
        ("1", "6"),
        ("1", "10"),
        ("4", "4"),
    }


def _address_status(status: str) -> bool:
    """A code about the recipient's address: the hard ones, and any other 5.1.x but the
    sender's own (5.1.7, 5.1.8)."""
    return hard_status(status) or (status.startswith("5.1.") and status not in ("5.1.7", "5.1.8"))


# The reasons a bounce gives, in words (after sisimai's reason classes). A bounce is hard
# only on evidence that the address or its domain is gone; a refusal of our message (our
# IP on a blocklist, spam filters, the sender's domain) says nothing about the lead.
_DOMAIN_GONE = re.compile(
    r"host (?:not found|unknown)|no such domain|domain (?:not found|does not exist|unknown|is not reachable)|"
    r"host or domain name not found|name service error|null mx|does not accept mail|no mx record|no smtp service|"
    r"unrout(?:e)?able address|has moved|has been replaced by|no longer with|domain name not found|nxdomain|"
    r"unknown host\b|domain must exist",
    re.IGNORECASE,
)
_MAILBOX_GONE = re.compile(
    r"user(?:name)? unknown|"
    r"unknown (?:virtual )?(?:user|recipient|mailbox|e-?mail address|address(?:ee)?|local[- ]part)|"
    r"addressee unknown|"
    r"no such (?:user|mailbox|recipient|address|account|person|local user)|"
    r"(?:user|mailbox|recipient|address|account|e-?mail address) (?:\S+ )?(?:not found|does ?n[o']t exist|not exist|"
    r"unknown|unavailable|closed|is unknown)|"
    r"(?:does|dos|do)(?: no|n'?)t exist|not a valid (?:mailbox|recipient|user|address)|"
    r"invalid (?:recipient|mailbox|user|e-?mail address|address)|(?:address|mailbox|recipient) invalid|"
    r"bad (?:destination )?(?:address|recipient|mailbox)|is not a known user|user not known|"
    r"(?:mailbox|address|recipient|user)\b[^.;]{0,30}?\bnot present|"
    r"(?:e-?mail address|account|mailbox|recipient|user)\b[^.;]{0,40}?\b(?:could ?n[o']t|can ?n[o']t) be found|"
    r"(?:user|recipient|mailbox|address)\b[^.;]{0,60}?\bwas not found|\(address\) not found|"
    r"non-?existent (?:user|mailbox|recipient|address|account)|by that name|no one at this address|"
    r"badrcptto|badrecipientto|validrcptto|envelope recipient has been denied|"
    # in Spanish, Portuguese, French, Italian, Dutch, Polish
    r"no existe|inexistente|desconhecid|inconnu|sconosciut|nessun utente|onbekend|bestaat niet|nie istnieje|"
    r"no mailbox|no longer (?:valid|available|in use|exists|accepts)|not our customer|"
    r"address rejected|recipient rejected|"
    r"account has been (?:terminated|closed)|does not like recipient|unbekannt|existiert nicht|"
    r"not listed in|(?:recipient|user|address)(?: name)? is not recognized|no valid recipients?|"
    r"(?:does not|doesn't) have an? (?:\S+ )?account",
    re.IGNORECASE,
)
# Yahoo checks recipients at the end of DATA (its published SMTP error codes): these
# answers say the address does not exist whenever they come.
_CHECKED_AFTER_DATA = re.compile(
    r"(?:does not|doesn't) have an? \S+ account|requested mail action aborted, mailbox not found", re.IGNORECASE
)
# When the server refused: RCPT (the recipient itself), DATA (the message), ...
# (Postfix "in reply to", Exim "after [pipelined]", sendmail and Courier transcripts ">>>",
# reports that name "the SMTP command")
_PHASE = re.compile(
    r"(?:in reply to|after(?: pipelined)?|following|>>>|smtp command:?)\s*(?:the\s+)?"
    r"(rcpt|end of data|data|mail from)\b|"
    r"\[(rcpt)_to\]",
    re.IGNORECASE,
)
_NOT_THE_ADDRESS = re.compile(
    r"(?:after(?: pipelined)?|in reply to) (?:initial connection|mail from|the mail from)|mail ?from domain|"
    r"(?:helo|ehlo) command rejected|invalid (?:helo|ehlo)|client host rejected|"
    r"cannot find your (?:host ?name|reverse)|"
    r"sender (?:address|domain|verif)|unroutable sender|(?:daily|sending|recipient) limit|"
    r"black ?list|block ?list|\bblock(?:ed)?\b|spam|reputation|\brbl\b|"
    r"dnsbl|spamhaus|spamcop|sorbs|uceprotect|barracudacentral|\bptr\b|reverse dns|"
    r"relay(?:ing)? (?:access )?(?:denied|not permitted)|not permitted to relay|dmarc|"
    r"\bspf\b|\bdkim\b|authenticat|too many|rate limit|virus|message (?:size|too (?:large|big))|content rejected|"
    r"policy|"
    # KDDI (au) answers "550 : User unknown", no address where it names the recipient,
    # when the recipient's own filter refused the sender (its unknown users get
    # "550 <address>: User unknown"); as sisimai's rules for KDDI document
    r"\b[45]\d\d:? : user unknown",
    re.IGNORECASE,
)
# The mailbox is there but cannot take mail now: full, suspended, out of reach.
_SOFT_WORDS = re.compile(
    r"mailbox (?:is )?full|over ?quota|quota exceeded|exceeded (?:the |their |his |her )?(?:storage|quota)|"
    r"disk quota|insufficient (?:system )?storage|exceeds (?:the )?(?:allowed|maximum) size|temporar|try again later|"
    r"greylist|deferred|delayed|postf[aä]ch voll|speicherplatz|retry time|timed? ?out|expired|"
    r"could not be delivered for|socket error|connection (?:refused|reset|timed out)|queue file write error|"
    r"system (?:error|full)|not found, try again|\bx-unix\b|command output|"
    r"(?:mailbox|account|user|recipient)\b[^.;]{0,30}?\b(?:disabled|suspended|inactive|deactivated|frozen|locked)|"
    r"(?:disabled|suspended|inactive|deactivated|frozen) (?:mailbox|account|user)",
    re.IGNORECASE,
)


def status_in(text: str) -> str | None:
    """The first enhanced status code of a failure in `text` (2.x.x ones are successes)."""
    return next((".".join(m.groups()) for m in STATUS.finditer(text) if m.group(1) != "2"), None)


def _prose(text: str) -> str:
    """Text to read for words: addresses masked (a recipient called spam@ or dmarc@ says
    nothing about the refusal) and lines joined (servers wrap their answers anywhere)."""
    return " ".join(_masked(word) for word in text.split())


def _masked(word: str) -> str:
    """A word with the address in it replaced ("FROM:<a@b.example>:" -> "FROM:<(address)")."""
    at = word.find("@")
    if at < 0:
        return word
    return word[: max(word.rfind(mark, 0, at) for mark in ":<([\"'") + 1] + "(address)"


def _refused_not_gone(words: str) -> bool:
    """Words that say the mailbox is there but full or out of reach for now, or that the
    refusal is of our message (content, reputation, policy, the sender)."""
    return bool(_SOFT_WORDS.search(words) or _NOT_THE_ADDRESS.search(words))


# A reply to DATA that no recipient is left: with PIPELINING (RFC 2920) the transcript
# shows DATA before the RCPT refusals' replies, but those were answers to RCPT.
_NO_RECIPIENT_LEFT = re.compile(r"no valid recipients", re.IGNORECASE)


def phase_in(text: str) -> str | None:
    joined = " ".join(text.split())
    if _NO_RECIPIENT_LEFT.search(joined):
        return "RCPT"
    found = _PHASE.search(joined)
    if found is None:
        return None
    word = (found.group(1) or found.group(2)).lower()
    return "RCPT" if word == "rcpt" else "DATA" if word.endswith("data") else "MAIL"


def bounce_kind(answer: str, status: str | None = None, context: str = "", phase: str | None = None) -> InboundKind:
    """`bounce_hard` or `bounce_soft`: the one decision for every path (RFC 3464 reports,
    non-standard bounces, a refusal at SMTP time). Hard only on evidence that the address
    or its domain is gone: a code that says so, or the server's words, except words about
    the mailbox said after DATA (the server had taken the recipient by then; filters use
    the same words; Yahoo, which checks recipients then, excepted) or against a code that
    says the mailbox exists (X.2.x) other than at RCPT. A refusal of our message
    (reputation, policy, content, the sender), a full or suspended mailbox, a delay, say
    nothing about the lead.

    `answer` is the server's own answer about this recipient ("550 5.1.1 <a@b.example>: no
    such user"); `status` its enhanced code when the report gives it apart (else the first
    one in `answer`); `context` the report's prose, read when the answer says nothing;
    `phase` the SMTP command the answer was to (RCPT, DATA, ...) when the caller knows it,
    else what the answer or the context say."""
    status = status or status_in(answer)
    if status and (
        status.startswith("4") or status.split(".")[1:] in (["2", "2"], ["3", "1"], ["2", "3"], ["1", "7"], ["1", "8"])
    ):
        # for later, a full mailbox or system, a message too large; our own (the sender's) address
        return InboundKind.BOUNCE_SOFT
    if status and hard_status(status):
        # A report may list several recipients: read the words on the code's own line
        # (a DSN's diagnostic is one recipient's already).
        line = next((ln for ln in answer.splitlines() if status in ln), answer if len(answer) < 400 else "")
        if not _refused_not_gone(_prose(line)):
            return InboundKind.BOUNCE_HARD
    said = _prose(answer)
    words = (
        said if _refused_not_gone(said) or _DOMAIN_GONE.search(said) or _MAILBOX_GONE.search(said) else _prose(context)
    )
    if _refused_not_gone(words):
        return InboundKind.BOUNCE_SOFT
    if status and _address_status(status):
        return InboundKind.BOUNCE_HARD
    if _DOMAIN_GONE.search(words):
        return InboundKind.BOUNCE_HARD
    # After DATA the server had accepted the recipient: what it refuses then is the
    # message, whatever it calls it (some carriers answer "unknown user" to mail they filter).
    when = phase or phase_in(answer) or phase_in(context)
    # A code about the mailbox (X.2.x: it exists, but is disabled) outweighs the words,
    # but for a refusal of the recipient itself at RCPT
    if status and status.split(".")[1] == "2" and when != "RCPT":
        return InboundKind.BOUNCE_SOFT
    if _MAILBOX_GONE.search(words) and (when != "DATA" or _CHECKED_AFTER_DATA.search(words)):
        return InboundKind.BOUNCE_HARD
    # Mail system, network, protocol, content and security/policy codes say nothing
    # about the address; nor does silence.
    return InboundKind.BOUNCE_SOFT


# A line that starts with an address starts one recipient's answer in a non-standard
# bounce ("<a@b.example>: host mx said: 550 ...", "a@b.example: 550 5.2.2 ...").


__all__ = ["STATUS", "bounce_kind", "hard_status", "phase_in", "status_in"]
