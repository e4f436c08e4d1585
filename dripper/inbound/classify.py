"""What an inbound message is: a bounce (hard or soft), a complaint, an auto-reply, a
request to be removed, or a reply from a person.

Standards first: RFC 3464 delivery status notifications and RFC 5965 (ARF) feedback
reports are parsed with the stdlib for their recipients and enhanced status codes; the
many non-standard bounce formats go to flufl.bounce (Mailman's detectors); RFC 3834
auto-replies are told by their headers, then by subject lines in several languages.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.header import decode_header
from email.message import EmailMessage, Message
from email.utils import collapse_rfc2231_value, getaddresses, parseaddr
from typing import Any

from dripper.bounces import STATUS, bounce_kind, phase_in, status_in
from dripper.states import InboundKind

KINDS: tuple[InboundKind, ...] = tuple(InboundKind)

# An enhanced status code (RFC 3463), never part of a dotted number such as an IP address.
_BOUNCE_SENDER = re.compile(
    r"^(?:mailer[-_]?daemon|post[_-]?master|mail-?daemon|mail delivery (?:subsystem|system|service))\b", re.IGNORECASE
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status notification|failure|has failed|problem)|returned mail|"
    r"failure notice|mail delivery failed|delivery failed|unzustellbar|nicht zustellbar|non remis|"
    r"(?:message|mail) not delivered|could not be delivered|could not send message|delayed mail|"
    r"no entregado|no se puede entregar|n[ãa]o entregue|non recapitabile|onbestelbaar|olevererbar|niedostarcz|"
    r"エラー通知|配信エラー|配送エラー|配信不能|不達",
    re.IGNORECASE,
)
_AUTO_SUBJECT = re.compile(
    r"out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?(?:reply|response)|autoreply|away from (?:the )?office|"
    r"on vacation|on leave|abwesen|automatische antwort|nicht im b[üu]ro|r[ée]ponse automatique|absence|"
    r"absent du bureau|respuesta autom[áa]tica|fuera de la oficina|ausente|risposta automatica|fuori (?:sede|ufficio)|"
    r"automatisch antwoord|afwezig|fr[åa]nvaro|automatiskt svar|poza biurem|odpowied[źz] automatyczna|"
    r"resposta autom[áa]tica|fora do escrit[óo]rio",
    re.IGNORECASE,
)
_UNSUBSCRIBE = re.compile(
    r"\bunsubscribe\b|\bremove me\b|\btake me off\b|\bstop (?:e-?mailing|sending|contacting)\b|\bopt[- ]?out\b|"
    r"\bno more (?:e-?mails|emails)\b|\bdo not (?:e-?mail|contact) me\b|\babmelden\b|\babbestellen\b|"
    r"\bkeine (?:weiteren )?e-?mails\b|\bd[ée]sabonner\b|\bd[ée]sinscri|\bne plus recevoir\b|\bdarme de baja\b|"
    r"\bdarse de baja\b|\bcancelar (?:la )?suscripci[óo]n\b|\bno (?:me )?(?:env[íi]en|escriban) m[áa]s\b|"
    r"\bcancellami\b|\bdisiscriv|\bafmelden\b|\buitschrijven\b|\bavregistrera\b|\bwypisz\b",
    re.IGNORECASE,
)
_REPLY_SUBJECT = re.compile(r"^\s*(?:re|aw|sv|vs|antw|rif|r|odp|ynt)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)
_QUOTE_START = re.compile(
    r"^(?:>|on .+ wrote:|am .+ schrieb|le .+ a écrit|el .+ escribió|-----original message|"
    r"-----ursprüngliche nachricht|from: )",
    re.IGNORECASE,
)


@dataclass
class Classification:
    kind: InboundKind
    status: str | None = None  # enhanced status code of a bounce, e.g. 5.1.1
    recipients: list[str] = field(default_factory=list)  # who the bounce or complaint is about
    original: Message | None = None  # the message we sent, when the report carries it
    reason: str = ""


def _header(message: Message, name: str) -> str:
    """A header as text (compat32 gives a Header object for undecodable values)."""
    value = message.get(name)
    return str(value) if value is not None else ""


def _subject(message: Message) -> str:
    """The Subject as text: RFC 2047 encoded words decoded ("=?ISO-2022-JP?B?...?="), and
    raw 8-bit bytes read as UTF-8 (RFC 6532), which compat32 leaves undecoded."""
    value = message.get("Subject")
    if value is None:
        return ""
    try:
        chunks = decode_header(value)
    except HeaderParseError:  # a broken encoded word: the raw text
        return str(value)
    text = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            text.append(chunk)
            continue
        try:
            text.append(chunk.decode(charset if charset not in (None, "unknown-8bit") else "utf-8", "replace"))
        except LookupError:  # a charset Python does not know
            text.append(chunk.decode("latin-1"))
    return "".join(text)


def _report_type(message: Message) -> str | None:
    if message.get_content_type() != "multipart/report":
        return None
    return collapse_rfc2231_value(message.get_param("report-type") or "").lower() or None


def _parts(message: Message, content_type: str) -> list[Message]:
    return [part for part in message.walk() if part.get_content_type() == content_type]


def _decoded(part: Message) -> bytes:
    """A leaf part's body, transfer encoding undone (a multipart has none)."""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _inner(part: Message) -> list[Message]:
    """The messages or header blocks a message/* part holds."""
    payload = part.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _original(message: Message) -> Message | None:
    """The message we sent, as a DSN or ARF report carries it (whole, or its headers)."""
    for part in message.walk():
        if part.get_content_type() == "message/rfc822":
            inner = _inner(part)
            if inner:
                return inner[0]
        if part.get_content_type() == "text/rfc822-headers":
            from email import message_from_string

            return message_from_string(_decoded(part).decode("utf-8", "replace"))
    return None


_RECIPIENT_LINE = re.compile(r"^\s*(?:>>>\s*)?<?[^\s<>@]+@[^\s<>@:]+>?(?::|\s|$)")
# sendmail writes one line per recipient or host, its reply code first:
# "550 <a@b.example>... User unknown", "554 b.example (smtp)... 550 Host unknown".
_SENDMAIL_LINE = re.compile(r"^\s*[245]\d\d[ -](?:[245]\.\d{1,3}\.\d{1,3} )?[^\s.]\S*(?: \(\w+\))?\.\.\. ")


_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r]*\n")
# An SMTP reply code (RFC 5321) or enhanced status code (RFC 3463) of a failure, as a
# server's answer starts: "550 5.1.1 ...", "said: 550 ...", "550-5.1.1", "<<< 554 ...".
_REPLY = re.compile(
    r"(?:^|[\s:;'\"(<\[])(?:[45][0-5]\d(?=[\s:;,)-]|$)|[45]\.\d{1,3}\.\d{1,3}(?![\d.]\d))", re.MULTILINE
)


def _per_recipient(report: str) -> list[str]:
    """A non-standard bounce's answers, one per recipient it lists: each recipient's
    paragraph, as a DSN's Diagnostic-Code is one recipient's answer. A bounce that lists
    one recipient: the paragraph that carries the server's reply, else all of it."""
    lines = report.splitlines()
    starts = [index for index, line in enumerate(lines) if _RECIPIENT_LINE.match(line) or _SENDMAIL_LINE.match(line)]
    if len(starts) < 2:
        return [next((p for p in _PARAGRAPH_BREAK.split(report) if _REPLY.search(p)), report)]
    chunks = ["\n".join(lines[a:b]) for a, b in zip(starts, [*starts[1:], len(lines)], strict=False)]
    return [_first_paragraph(chunk) for chunk in chunks]


def _first_paragraph(chunk: str) -> str:
    """A recipient's paragraph: its address line and what follows up to a blank line (the
    next paragraph too when the address stands alone)."""
    paragraphs = _PARAGRAPH_BREAK.split(chunk.strip("\r\n"), maxsplit=2)
    return "\n".join(paragraphs[:2]) if "\n" not in paragraphs[0].strip() else paragraphs[0]


# Where a bounce's own words end and the returned message begins: a separator line
# ("------ This is a copy of the message, including all the headers. ------").
_RETURNED_WORDS = ("copy of", "original", "returned", "unsent", "undelivered", "header")
_RETURNED_LINES = ("original message follows", "returned message", "unsent message below", "undelivered message")


def _starts_returned(line: str) -> bool:
    line = line.strip().lower()
    if len(line) > 200:
        return False
    if line[:2] in ("--", "==", "**", "__") and any(word in line for word in _RETURNED_WORDS):
        return True
    return line.rstrip(" .:-") in _RETURNED_LINES


# Headers that only a message has (a bounce's prose may well say "Subject:" or "Date:").
_HEADER_LINE = re.compile(
    r"^(?:return-path|received|message-id|dkim-signature|domainkey-signature|mime-version|authentication-results|"
    r"arc-[\w-]+|x-[\w-]+):[ \t]",
    re.IGNORECASE,
)


def _own_report(text: str) -> str:
    """The bounce's own words, without the copy of our message that many bounces append
    (its headers and body can say anything: "DKIM", "spam", "policy", ...)."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if _starts_returned(line):
            return "\n".join(lines[:index])
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if _HEADER_LINE.match(line) and (_HEADER_LINE.match(following) or following[:1] in (" ", "\t")):
            return "\n".join(lines[:index])
    return text


def _phase(prose: str, address: str) -> str:
    """When the server refused `address`, as the report's prose says (Postfix writes it
    after each recipient's answer: "(in reply to RCPT TO command)")."""
    for paragraph in re.split(r"\n\s*\n", prose):
        if address and address in paragraph.lower():
            when = phase_in(paragraph)
            if when:
                return f"(after {'MAIL FROM' if when == 'MAIL' else when})"
    return ""


_RECIPIENT_FIELDS = ("original-recipient", "final-recipient")


def _recipient_blocks(part: Message) -> list[Message]:
    """A delivery-status part's per-recipient field groups. RFC 3464 separates them with
    blank lines; some MTAs (AOL) run them together: a recipient field seen again starts
    the next recipient."""
    groups: list[Message] = []
    for block in _inner(part):
        current: Message | None = None
        for name, value in block.items():
            if name.lower() in _RECIPIENT_FIELDS and (current is None or name in current):
                current = Message()
                groups.append(current)
            if current is not None:  # fields before the first recipient are per-message
                current[name] = value
    return groups


def _dsn(message: Message, text_part: str) -> Classification:
    """RFC 3464: per-recipient Action, Status and Final-Recipient; `text_part` is the
    report's prose."""
    worst: tuple[int, InboundKind, str, str] | None = None  # (rank, kind, status, recipient)
    recipients = []
    prose = _own_report(text_part)[:4000]
    for part in _parts(message, "message/delivery-status"):
        for block in _recipient_blocks(part):
            action = (block.get("Action") or "").strip().lower()
            status_match = STATUS.search(block.get("Status") or "")
            named = [
                parseaddr(str(block.get(h) or "").split(";", 1)[-1])[1].lower()
                for h in ("Original-Recipient", "Final-Recipient")
            ]
            recipient = next((a for a in named if a), "")
            if action in ("delivered", "relayed", "expanded"):
                continue
            recipients += [a for a in dict.fromkeys(named) if a and a not in recipients]
            # The server's answer, and when it came, if the prose says so of this recipient
            # (Postfix: "(in reply to end of DATA command)")
            text = " ".join([str(block.get("Diagnostic-Code") or ""), _phase(prose, recipient)]).strip()
            # The server's own code over the reporting MTA's summary of it (sendmail calls
            # any refusal at RCPT "5.1.1 User unknown", a blocklist's included)
            status = status_in(text) or (".".join(status_match.groups()) if status_match else None)
            if action == "delayed" and status and status.startswith("5"):
                status = "4" + status[1:]
            kind = InboundKind.BOUNCE_SOFT if action == "delayed" else bounce_kind(text, status, prose)
            rank = 2 if kind == InboundKind.BOUNCE_HARD else 1
            if worst is None or rank > worst[0]:
                worst = (rank, kind, status or "", recipient)
    if worst is None:
        return Classification(InboundKind.UNKNOWN, reason="a delivery report with nothing undelivered")
    return Classification(worst[1], worst[2] or None, recipients, _original(message), "RFC 3464 delivery status")


def _arf(message: Message) -> Classification:
    """RFC 5965: a mailbox provider's feedback loop reporting a spam complaint, or (every
    Feedback-Type opt-out) passing on the recipient's request to be removed."""
    recipients: list[str] = []
    types: set[str] = set()
    for part in _parts(message, "message/feedback-report"):
        blocks = _inner(part) if isinstance(part.get_payload(), list) else [part]
        for block in blocks:
            types.update(str(v).strip().lower() for v in block.get_all("Feedback-Type") or [])
            for header in ("Original-Rcpt-To", "Removal-Recipient"):
                recipients += [parseaddr(v)[1].lower() for v in block.get_all(header) or [] if parseaddr(v)[1]]
    original = _original(message)
    if original is not None and not recipients:
        recipients = [
            parseaddr(v)[1].lower() for v in original.get_all("X-HmXmrOriginalRecipient") or [] if parseaddr(v)[1]
        ]
    if original is not None and not recipients:
        recipients = [a.lower() for _, a in getaddresses(original.get_all("To") or []) if a]
    if types == {"opt-out"}:
        return Classification(InboundKind.UNSUBSCRIBE, None, recipients, original, "RFC 5965 opt-out report")
    return Classification(InboundKind.COMPLAINT, None, recipients, original, "RFC 5965 feedback report")


def text_of(message: Message) -> str:
    """The readable text of a message (its first text/plain part, else text/html as text)."""
    part = next(
        (p for p in message.walk() if p.get_content_type() == "text/plain" and _decoded(p).strip()),
        None,
    )
    if part is None:  # (never `or`: a part without headers is a falsy Message)
        part = next((p for p in message.walk() if p.get_content_type() == "text/html"), None)
    if part is None:  # a multipart without its boundary (or with it on a line of its own): its body is the text
        part = next((p for p in message.walk() if p.get_content_maintype() == "multipart" and _unparsed(p)), None)
    if part is None:
        return ""
    raw = _decoded(part)
    try:
        text = raw.decode(part.get_content_charset() or "utf-8", "replace")
    except LookupError:  # a charset Python does not know (real bounces have them): read what we can
        text = raw.decode("latin-1")
    if part.get_content_type() == "text/html":
        from dripper.channels.email.text import html_to_text

        text = html_to_text(text)
    return text


def _unparsed(part: Message) -> bool:
    """A multipart part whose body the parser left as text (it found no boundary)."""
    payload = part.get_payload()
    return isinstance(payload, str) and bool(payload.strip())


def own_words(text: str) -> str:
    """What the person wrote above the quoted message."""
    lines = []
    for line in text.splitlines():
        if _QUOTE_START.match(line.strip()):
            break
        lines.append(line)
    return "\n".join(lines)


def _readable(message: Message) -> Message:
    """`message` with every header a str. compat32 gives a Header object for a header with
    raw 8-bit bytes, and Mailman's detectors call str methods on headers (one logged an
    error with a traceback for each such message and found nothing)."""
    odd = list(dict.fromkeys(name.lower() for name, value in message.items() if not isinstance(value, str)))
    if not odd:
        return message
    view = copy.copy(message)  # deleting a header gives the copy its own header list
    for name in odd:
        values = [str(value) for value in message.get_all(name) or []]
        del view[name]
        for value in values:
            view[name] = value
    return view


def _flufl(message: Message) -> tuple[frozenset[bytes], frozenset[bytes]]:
    try:
        from flufl.bounce import all_failures

        return all_failures(_readable(message))
    except Exception:
        return frozenset(), frozenset()


def _flufl_recipients(message: Message) -> list[str]:
    temporary, permanent = _flufl(message)
    return sorted({a.decode("utf-8", "replace").lower() for a in permanent | temporary})


def _nonstandard_bounce(message: Message, text: str) -> Classification | None:
    sender = parseaddr(_header(message, "From"))
    looks_like_bounce = bool(
        _BOUNCE_SENDER.match(sender[1]) or _BOUNCE_SENDER.match(sender[0]) or _BOUNCE_SUBJECT.search(_subject(message))
    )
    temporary, permanent = _flufl(message)
    if not (looks_like_bounce or temporary or permanent):
        return None
    if not looks_like_bounce and (message.get("In-Reply-To") or _REPLY_SUBJECT.match(_subject(message))):
        return None  # a person's reply that quotes addresses the detectors took for failures
    recipients = sorted({a.decode("utf-8", "replace").lower() for a in permanent | temporary})
    report = _own_report(text)[:20000]  # a bounce's own words are short; a hostile one is not read on
    status = status_in(report)
    if status is None and not recipients and not looks_like_bounce:
        return None
    # Mailman's detectors tell temporary from permanent failures; permanent is not hard
    # (a full mailbox, a spam filter): that takes the words.
    # A bounce about several recipients is as bad as its worst, as an RFC 3464 report is.
    kind = InboundKind.BOUNCE_SOFT
    if permanent or not temporary:
        answers = _per_recipient(report)
        kinds = {bounce_kind(answer, None, report) for answer in answers}
        kind = InboundKind.BOUNCE_HARD if InboundKind.BOUNCE_HARD in kinds else InboundKind.BOUNCE_SOFT
    return Classification(kind, status, recipients, _original(message), "non-standard bounce (flufl.bounce)")


# Amazon SES notifications (JSON, by e-mail through SNS; documented by AWS as "Amazon SES
# notification contents" and "event publishing"): its verdict per recipient.
_SES_SOFT_SUBTYPES = (
    "MailboxFull",
    "MessageTooLarge",
    "ContentRejected",
    "AttachmentRejected",
    "OnAccountSuppressionList",
)  # the account's own list: complaints are on it too
_SES_GONE_SUBTYPES = ("NoEmail", "Suppressed")  # no such address; SES's list of addresses that hard-bounced


def _ses_notification(text: str) -> dict[str, Any] | None:
    """The notification an SES message carries, or None. Mail systems wrap its one long
    line (a newline and a space inserted), so the JSON is tried as it is and unwrapped."""
    if "notificationType" not in text and "eventType" not in text:
        return None
    start, end = text.find("{"), text.rfind("}")
    blob = text[start : end + 1] if 0 <= start < end and end - start < 200_000 else ""
    for candidate in (blob, blob.replace("\n ", ""), "".join(blob.splitlines())):
        try:
            data = json.loads(candidate)
            if isinstance(data, dict) and isinstance(data.get("Message"), str):  # the SNS envelope
                data = json.loads(data["Message"])
        except ValueError:
            continue
        if isinstance(data, dict) and (data.get("notificationType") or data.get("eventType")):
            return data
    return None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _ses_original(data: dict[str, Any]) -> Message | None:
    """The message we sent, as far as the notification gives its headers."""
    mail = _dict(data.get("mail"))
    headers = [h for h in mail.get("headers") or [] if isinstance(h, dict)]
    if not headers:
        return None
    original = Message()
    for header in headers:
        if isinstance(header.get("name"), str) and isinstance(header.get("value"), str):
            original[header["name"]] = header["value"]
    return original


def _addresses(entries: object) -> list[str]:
    return (
        [str(e["emailAddress"]).lower() for e in entries if isinstance(e, dict) and e.get("emailAddress")]
        if isinstance(entries, list)
        else []
    )


def _ses(data: dict[str, Any]) -> Classification:
    what = str(data.get("notificationType") or data.get("eventType"))
    original = _ses_original(data)
    if what == "Complaint":
        complaint = _dict(data.get("complaint"))
        return Classification(
            InboundKind.COMPLAINT,
            None,
            _addresses(complaint.get("complainedRecipients")),
            original,
            "Amazon SES complaint notification",
        )
    bounce = _dict(data.get("bounce"))
    if what != "Bounce":
        return Classification(InboundKind.UNKNOWN, reason=f"an Amazon SES {what} notification")
    kind, status = InboundKind.BOUNCE_SOFT, None
    for entry in bounce.get("bouncedRecipients") or []:
        if not isinstance(entry, dict):
            continue
        code = STATUS.fullmatch(str(entry.get("status") or ""))
        this_status = ".".join(code.groups()) if code else None
        if bounce.get("bounceType") != "Permanent" or bounce.get("bounceSubType") in _SES_SOFT_SUBTYPES:
            this = InboundKind.BOUNCE_SOFT  # Transient, Undetermined, or the mailbox or message
        elif bounce.get("bounceSubType") in _SES_GONE_SUBTYPES:
            this = InboundKind.BOUNCE_HARD
        else:  # General: the receiving server's answer decides, as on every path
            this = bounce_kind(str(entry.get("diagnosticCode") or ""), this_status)
        if status is None or (this == InboundKind.BOUNCE_HARD and kind != InboundKind.BOUNCE_HARD):
            status = this_status
        kind = InboundKind.BOUNCE_HARD if InboundKind.BOUNCE_HARD in (kind, this) else InboundKind.BOUNCE_SOFT
    return Classification(
        kind, status, _addresses(bounce.get("bouncedRecipients")), original, "Amazon SES bounce notification"
    )


def _auto_reply(message: Message) -> bool:
    auto_submitted = (_header(message, "Auto-Submitted") or "no").strip().lower()
    if auto_submitted != "no":
        return True
    if any(message.get(h) for h in ("X-Autoreply", "X-Autorespond", "X-Autoresponse", "X-Auto-Reply")):
        return True
    if _header(message, "Precedence").strip().lower() in ("auto_reply", "bulk", "junk"):
        return True
    return bool(_AUTO_SUBJECT.search(_subject(message)))


def classify(message: Message | EmailMessage) -> Classification:
    """Never raises: a message that cannot be read is `unknown`, with the reason."""
    try:
        return _classify(message)
    except Exception as exc:
        return Classification(InboundKind.UNKNOWN, reason=f"could not read the message: {type(exc).__name__}: {exc}")


_JMRP_SUBJECT = re.compile(r"^\s*complaint about message from\b", re.IGNORECASE)


def _is_complaint(message: Message, report: str | None) -> bool:
    """RFC 5965 reports, wherever the feedback part sits, and Microsoft's JMRP reports
    (a forwarded message/rfc822 with X-HmXmrOriginalRecipient)."""
    if report == "feedback-report" or _parts(message, "message/feedback-report"):
        return True
    if _JMRP_SUBJECT.match(_subject(message)):
        return True
    original = _original(message)
    return original is not None and original.get("X-HmXmrOriginalRecipient") is not None


def _classify(message: Message | EmailMessage) -> Classification:
    report = _report_type(message)
    if _is_complaint(message, report):
        return _arf(message)
    if _header(message, "X-Apple-Unsubscribe").strip().lower() == "true":
        return Classification(
            InboundKind.UNSUBSCRIBE, reason="a mail client's unsubscribe request (List-Unsubscribe mailto)"
        )
    text = text_of(message)
    ses = _ses_notification(text)
    if ses is not None:
        return _ses(ses)
    if report == "delivery-status" or _parts(message, "message/delivery-status"):
        found = _dsn(message, text)
        if found.kind != InboundKind.UNKNOWN:
            # MTAs put odd things in Final-Recipient: add what Mailman's detectors find
            found.recipients += [a for a in _flufl_recipients(message) if a not in found.recipients]
            return found  # a report that names nothing undelivered may still be a bounce in its text
    bounce = _nonstandard_bounce(message, text)
    if bounce is not None:
        return bounce
    if _auto_reply(message):
        return Classification(InboundKind.AUTO_REPLY, reason="auto-reply (RFC 3834 headers or subject)")
    subject = _subject(message)
    if _UNSUBSCRIBE.search(subject) or _UNSUBSCRIBE.search(own_words(text)[:2000]):
        return Classification(InboundKind.UNSUBSCRIBE, reason="asks to be removed")
    return Classification(InboundKind.REPLY, reason="written by a person")
