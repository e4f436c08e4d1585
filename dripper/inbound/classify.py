"""What an inbound message is: a bounce (hard or soft), a complaint, an auto-reply, a
request to be removed, or a reply from a person.

Standards first: RFC 3464 delivery status notifications and RFC 5965 (ARF) feedback
reports are parsed with the stdlib for their recipients and enhanced status codes; the
many non-standard bounce formats go to flufl.bounce (Mailman's detectors); RFC 3834
auto-replies are told by their headers, then by subject lines in several languages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr

KINDS = ("reply", "auto_reply", "bounce_hard", "bounce_soft", "complaint", "unsubscribe", "unknown")

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_BOUNCE_SENDER = re.compile(r"^(?:mailer-daemon|postmaster|mail-?daemon|mail delivery (?:subsystem|system))\b",
                            re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status notification|failure|has failed|problem)|returned mail|"
    r"failure notice|mail delivery failed|delivery failed|unzustellbar|nicht zustellbar|non remis|"
    r"no entregado|no se puede entregar|non recapitabile|onbestelbaar", re.IGNORECASE)
_AUTO_SUBJECT = re.compile(
    r"out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?(?:reply|response)|autoreply|away from (?:the )?office|"
    r"on vacation|on leave|abwesen|automatische antwort|nicht im b[üu]ro|r[ée]ponse automatique|absence|"
    r"absent du bureau|respuesta autom[áa]tica|fuera de la oficina|ausente|risposta automatica|fuori (?:sede|ufficio)|"
    r"automatisch antwoord|afwezig|fr[åa]nvaro|automatiskt svar|poza biurem|odpowied[źz] automatyczna|"
    r"resposta autom[áa]tica|fora do escrit[óo]rio", re.IGNORECASE)
_UNSUBSCRIBE = re.compile(
    r"\bunsubscribe\b|\bremove me\b|\btake me off\b|\bstop (?:e-?mailing|sending|contacting)\b|\bopt[- ]?out\b|"
    r"\bno more (?:e-?mails|emails)\b|\bdo not (?:e-?mail|contact) me\b|\babmelden\b|\babbestellen\b|"
    r"\bkeine (?:weiteren )?e-?mails\b|\bd[ée]sabonner\b|\bd[ée]sinscri|\bne plus recevoir\b|\bdarme de baja\b|"
    r"\bdarse de baja\b|\bcancelar (?:la )?suscripci[óo]n\b|\bno (?:me )?(?:env[íi]en|escriban) m[áa]s\b|"
    r"\bcancellami\b|\bdisiscriv|\bafmelden\b|\buitschrijven\b|\bavregistrera\b|\bwypisz\b", re.IGNORECASE)
_REPLY_SUBJECT = re.compile(r"^\s*(?:re|aw|sv|vs|antw|rif|r|odp|ynt)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)
_QUOTE_START = re.compile(r"^(?:>|on .+ wrote:|am .+ schrieb|le .+ a écrit|el .+ escribió|-----original message|"
                          r"-----ursprüngliche nachricht|from: )", re.IGNORECASE)


@dataclass
class Classification:
    kind: str
    status: str | None = None  # enhanced status code of a bounce, e.g. 5.1.1
    recipients: list[str] = field(default_factory=list)  # who the bounce or complaint is about
    original: Message | None = None  # the message we sent, when the report carries it
    reason: str = ""


def _header(message: Message, name: str) -> str:
    """A header as text (compat32 gives a Header object for undecodable values)."""
    value = message.get(name)
    return str(value) if value is not None else ""


def _report_type(message: Message) -> str | None:
    if message.get_content_type() != "multipart/report":
        return None
    return (message.get_param("report-type") or "").lower() or None


def _parts(message: Message, content_type: str) -> list[Message]:
    return [part for part in message.walk() if part.get_content_type() == content_type]


def _original(message: Message) -> Message | None:
    """The message we sent, as a DSN or ARF report carries it (whole, or its headers)."""
    for part in message.walk():
        if part.get_content_type() == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                return payload[0]
        if part.get_content_type() == "text/rfc822-headers":
            from email import message_from_string

            return message_from_string(part.get_payload(decode=True).decode("utf-8", "replace"))
    return None


def hard_status(status: str) -> bool:
    """Codes that by themselves say the address or domain is gone: 5.1.1 (no such
    mailbox), 5.1.2 (no such domain), 5.1.3 (bad address syntax), 5.1.6 (moved), 5.1.10
    (null MX), 5.2.1 (mailbox disabled), 5.4.4 (no route to the domain)."""
    klass, subject, detail = status.split(".")
    return klass == "5" and (subject, detail) in {("1", "1"), ("1", "2"), ("1", "3"), ("1", "6"), ("1", "10"),
                                                  ("2", "1"), ("4", "4")}


def _address_status(status: str) -> bool:
    """A code about the recipient's address: the hard ones, and any other 5.1.x but the
    sender's own (5.1.7, 5.1.8)."""
    return hard_status(status) or (status.startswith("5.1.") and status not in ("5.1.7", "5.1.8"))


# The reasons a bounce gives, in words (after sisimai's reason classes). A bounce is hard
# only on evidence that the address or its domain is gone; a refusal of our message (our
# IP on a blocklist, spam filters, the sender's domain) says nothing about the lead.
_ADDRESS_GONE = re.compile(
    r"user(?:name)? unknown|unknown (?:user|recipient|mailbox|address(?:ee)?|local[- ]part)|addressee unknown|"
    r"no such (?:user|mailbox|recipient|address|account|person|domain|local user)|"
    r"(?:user|mailbox|recipient|address|account|e-?mail address) (?:\S+ )?(?:not found|does ?n[o']t exist|not exist|"
    r"unknown|unavailable|disabled|inactive|deactivated|closed|is (?:disabled|inactive|not active|unknown))|"
    r"does not exist|doesn't exist|not a valid (?:mailbox|recipient|user|address)|invalid (?:recipient|mailbox|user)|"
    r"no mailbox|unrouteable address|host (?:not found|unknown)|domain (?:not found|does not exist|unknown)|"
    r"host or domain name not found|name service error|null mx|does not accept mail|has moved|"
    r"no longer (?:valid|available|active|in use|exists|with)|not our customer|address rejected|recipient rejected|"
    r"account has been (?:disabled|terminated|closed|suspended)|does not like recipient|unbekannt|existiert nicht",
    re.IGNORECASE)
_NOT_THE_ADDRESS = re.compile(
    r"after (?:initial connection|mail from|end of data|data)|mail ?from domain|sender (?:address|domain)|"
    r"unroutable sender|black ?list|block ?list|\bblock(?:ed)?\b|spam|reputation|\brbl\b|dnsbl|\bptr\b|"
    r"reverse dns|relay(?:ing)? (?:access )?(?:denied|not permitted)|not permitted to relay|dmarc|\bspf\b|\bdkim\b|"
    r"authenticat|too many|rate limit|virus|message (?:size|too (?:large|big))|content rejected|policy",
    re.IGNORECASE)
_SOFT_WORDS = re.compile(
    r"mailbox (?:is )?full|over ?quota|quota exceeded|exceeded (?:the |their |his |her )?(?:storage|quota)|"
    r"disk quota|insufficient (?:system )?storage|exceeds (?:the )?(?:allowed|maximum) size|temporar|try again later|greylist|deferred|delayed|"
    r"postf[aä]ch voll|speicherplatz|retry time|timed? ?out|expired|could not be delivered for|socket error|"
    r"connection (?:refused|reset|timed out)|queue file write error|system (?:error|full)", re.IGNORECASE)


def _bounce_kind(status: str | None, text: str, context: str = "", silent: str = "bounce_soft") -> str:
    """Hard only when the code or the words say the address (or its domain) is gone.
    `text` is the server's own answer; `context` the report's prose, read when the
    answer says nothing; `silent` the verdict when nothing says anything."""
    if status and (status.startswith("4") or status.split(".")[1:] in (["2", "2"], ["3", "1"], ["2", "3"])):
        return "bounce_soft"
    if status and hard_status(status):
        # A report may list several recipients: read the words on the code's own line
        # (a DSN's diagnostic is one recipient's already).
        line = next((ln for ln in text.splitlines() if status in ln), text if len(text) < 400 else "")
        if not (_SOFT_WORDS.search(line) or _NOT_THE_ADDRESS.search(line)):
            return "bounce_hard"
    words = text if any(r.search(text) for r in (_SOFT_WORDS, _NOT_THE_ADDRESS, _ADDRESS_GONE)) else context
    if _SOFT_WORDS.search(words) or _NOT_THE_ADDRESS.search(words):
        return "bounce_soft"
    if status and _address_status(status):
        return "bounce_hard"
    if _ADDRESS_GONE.search(words):
        return "bounce_hard"
    # Mail system, network, protocol, content and security/policy codes say nothing
    # about the address.
    if status and status.split(".")[1] in ("3", "4", "5", "6", "7"):
        return "bounce_soft"
    return silent


def _dsn(message: Message, text_part: str) -> Classification:
    """RFC 3464: per-recipient Action, Status and Final-Recipient; `text_part` is the
    report's prose."""
    worst: tuple[int, str, str, str] | None = None  # (rank, kind, status, recipient)
    recipients = []
    prose = text_part[:4000]
    for part in _parts(message, "message/delivery-status"):
        blocks = part.get_payload() if isinstance(part.get_payload(), list) else []
        for block in blocks[1:]:  # the first block is per-message
            action = (block.get("Action") or "").strip().lower()
            status_match = _STATUS.search(block.get("Status") or "")
            named = [parseaddr(str(block.get(h) or "").split(";", 1)[-1])[1].lower()
                     for h in ("Original-Recipient", "Final-Recipient")]
            recipient = next((a for a in named if a), "")
            if action in ("delivered", "relayed", "expanded"):
                continue
            recipients += [a for a in dict.fromkeys(named) if a and a not in recipients]
            status = ".".join(status_match.groups()) if status_match else None
            if action == "delayed" and status and status.startswith("5"):
                status = "4" + status[1:]
            text = str(block.get("Diagnostic-Code") or "")
            kind = "bounce_soft" if action == "delayed" else _bounce_kind(status, text, prose)
            rank = 2 if kind == "bounce_hard" else 1
            if worst is None or rank > worst[0]:
                worst = (rank, kind, status or "", recipient)
    if worst is None:
        return Classification("unknown", reason="a delivery report with nothing undelivered")
    return Classification(worst[1], worst[2] or None, recipients, _original(message), "RFC 3464 delivery status")


def _arf(message: Message) -> Classification:
    """RFC 5965: a mailbox provider's feedback loop reporting a spam complaint."""
    recipients: list[str] = []
    for part in _parts(message, "message/feedback-report"):
        blocks = part.get_payload() if isinstance(part.get_payload(), list) else [part]
        for block in blocks:
            for header in ("Original-Rcpt-To", "Removal-Recipient"):
                recipients += [parseaddr(v)[1].lower() for v in block.get_all(header) or [] if parseaddr(v)[1]]
    original = _original(message)
    if original is not None and not recipients:
        recipients = [parseaddr(v)[1].lower() for v in original.get_all("X-HmXmrOriginalRecipient") or []
                      if parseaddr(v)[1]]
    if original is not None and not recipients:
        recipients = [a.lower() for _, a in getaddresses(original.get_all("To") or []) if a]
    return Classification("complaint", None, recipients, original, "RFC 5965 feedback report")


def text_of(message: Message) -> str:
    """The readable text of a message (its first text/plain part, else text/html as text)."""
    part = next((p for p in message.walk()
                 if p.get_content_type() == "text/plain" and (p.get_payload(decode=True) or b"").strip()), None)
    if part is None:  # (never `or`: a part without headers is a falsy Message)
        part = next((p for p in message.walk() if p.get_content_type() == "text/html"), None)
    if part is None:
        return ""
    raw = part.get_payload(decode=True) or b""
    try:
        text = raw.decode(part.get_content_charset() or "utf-8", "replace")
    except LookupError:  # a charset Python does not know (real bounces have them): read what we can
        text = raw.decode("latin-1")
    if part.get_content_type() == "text/html":
        from dripper.text import html_to_text

        text = html_to_text(text)
    return text


def own_words(text: str) -> str:
    """What the person wrote above the quoted message."""
    lines = []
    for line in text.splitlines():
        if _QUOTE_START.match(line.strip()):
            break
        lines.append(line)
    return "\n".join(lines)


def _flufl(message: Message) -> tuple[frozenset[bytes], frozenset[bytes]]:
    try:
        from flufl.bounce import all_failures

        return all_failures(message)
    except Exception:  # noqa: BLE001 - a detector choking on odd input is not a bounce
        return frozenset(), frozenset()


def _flufl_recipients(message: Message) -> list[str]:
    temporary, permanent = _flufl(message)
    return sorted({a.decode("utf-8", "replace").lower() for a in permanent | temporary})


def _nonstandard_bounce(message: Message, text: str) -> Classification | None:
    sender = parseaddr(_header(message, "From"))
    looks_like_bounce = bool(_BOUNCE_SENDER.match(sender[1]) or _BOUNCE_SENDER.match(sender[0])
                             or _BOUNCE_SUBJECT.search(_header(message, "Subject")))
    temporary, permanent = _flufl(message)
    if not (looks_like_bounce or temporary or permanent):
        return None
    if not looks_like_bounce and (message.get("In-Reply-To") or _REPLY_SUBJECT.match(_header(message, "Subject"))):
        return None  # a person's reply that quotes addresses the detectors took for failures
    recipients = sorted({a.decode("utf-8", "replace").lower() for a in permanent | temporary})
    status_match = _STATUS.search(text)
    status = ".".join(status_match.groups()) if status_match and status_match.group(1) != "2" else None
    if status is None and not recipients and not looks_like_bounce:
        return None
    # Mailman's detectors know each format's permanent failures: with no reason given,
    # theirs is the verdict.
    kind = "bounce_soft" if temporary and not permanent else _bounce_kind(
        status, text, silent="bounce_hard" if permanent else "bounce_soft")
    return Classification(kind, status, recipients, _original(message), "non-standard bounce (flufl.bounce)")


def _auto_reply(message: Message) -> bool:
    auto_submitted = (_header(message, "Auto-Submitted") or "no").strip().lower()
    if auto_submitted != "no":
        return True
    if any(message.get(h) for h in ("X-Autoreply", "X-Autorespond", "X-Autoresponse", "X-Auto-Reply")):
        return True
    if _header(message, "Precedence").strip().lower() in ("auto_reply", "bulk", "junk"):
        return True
    return bool(_AUTO_SUBJECT.search(_header(message, "Subject")))


def classify(message: Message | EmailMessage) -> Classification:
    """Never raises: a message that cannot be read is `unknown`, with the reason."""
    try:
        return _classify(message)
    except Exception as exc:  # noqa: BLE001 - real mail is endlessly malformed; nothing may be lost
        return Classification("unknown", reason=f"could not read the message: {type(exc).__name__}: {exc}")


_JMRP_SUBJECT = re.compile(r"^\s*complaint about message from\b", re.IGNORECASE)


def _is_complaint(message: Message, report: str | None) -> bool:
    """RFC 5965 reports, wherever the feedback part sits, and Microsoft's JMRP reports
    (a forwarded message/rfc822 with X-HmXmrOriginalRecipient)."""
    if report == "feedback-report" or _parts(message, "message/feedback-report"):
        return True
    if _JMRP_SUBJECT.match(_header(message, "Subject")):
        return True
    original = _original(message)
    return original is not None and original.get("X-HmXmrOriginalRecipient") is not None


def _classify(message: Message | EmailMessage) -> Classification:
    report = _report_type(message)
    if _is_complaint(message, report):
        return _arf(message)
    if _header(message, "X-Apple-Unsubscribe").strip().lower() == "true":
        return Classification("unsubscribe", reason="a mail client's unsubscribe request (List-Unsubscribe mailto)")
    text = text_of(message)
    if report == "delivery-status":
        found = _dsn(message, text)
        if found.kind != "unknown":
            # MTAs put odd things in Final-Recipient: add what Mailman's detectors find
            found.recipients += [a for a in _flufl_recipients(message) if a not in found.recipients]
            return found  # a report that names nothing undelivered may still be a bounce in its text
    bounce = _nonstandard_bounce(message, text)
    if bounce is not None:
        return bounce
    if _auto_reply(message):
        return Classification("auto_reply", reason="auto-reply (RFC 3834 headers or subject)")
    subject = _header(message, "Subject")
    if _UNSUBSCRIBE.search(subject) or _UNSUBSCRIBE.search(own_words(text)[:2000]):
        return Classification("unsubscribe", reason="asks to be removed")
    return Classification("reply", reason="written by a person")
