"""Every labelled inbound message in tests/corpus, with the kind dripper should find, and
the split it belongs to.

Labels come from each source's own annotations, mapped to dripper's kinds by the rules
below; never from dripper's classifier.

- own/: written by us, labelled by hand (EXPECTED_OWN)
- public/sisimai/: real bounces, auto-replies and feedback reports from sisimai's corpus
  (BSD-2-Clause), labelled by sisimai's own per-sample test expectations (go-sisimai's
  fact/*_test.go; for a few older files rb-sisimai's). Each sample lists one result per
  failed recipient: a reason and whether sisimai calls it a hard bounce. They map to ours:
  feedback -> complaint (all opt-out -> unsubscribe); vacation -> auto_reply; any result
  with hardbounce true -> bounce_hard (the address or its domain is gone or moved: a
  report is as bad as its worst recipient, which is what dripper reports); every other
  bounce -> bounce_soft (mailbox full, expired, network, and refusals of the message
  rather than the address: blocked, rejected, spam, policy, a suspended mailbox).
  Results with no failure verdict (delivered, onhold, undefined) are not labels; a
  sample with nothing else was not taken.
- public/crisp/: real bounce texts from crisp-oss/email-bounce-parser's fixtures (MIT),
  labelled by that project's expected results: temporary -> bounce_soft; permanent with
  the reason no_such_recipient or server_unknown -> bounce_hard; permanent with any other
  reason (mailbox_full, spam_content, reputation, ...) -> bounce_soft. Fixtures that the
  source calls neither temporary nor permanent, or permanent without a reason, were not
  taken. Each fixture is the text body of a bounce; it is read as the body of a minimal
  message from the mail system (`CRISP_WRAPPER`).
- public/talon/: real human replies from mailgun/talon's fixtures (Apache-2.0) -> reply
- public/flufl-bounce/: real bounces from GNU Mailman (Apache-2.0) with their failed
  recipients and whether the failure is temporary -> bounce_soft, else bounce_hard
  (Mailman's permanent is not dripper's hard: only the recipients are checked)

- public/cws-mail-bounce-handler/, public/flanker/, public/mail-bounce-detector/,
  public/bounce-email/: real bounces and feedback reports from four more bounce parsers'
  test suites (MIT, Apache-2.0, MIT, MIT), added after the held-out split had been
  measured and read; they are the FRESH split. Each labels.json keeps the source's own
  expectation: an enhanced status code (CwsMailBounceHandler's file names,
  "bounce_511_001" = 5.1.1; flanker's and bounce_email's test assertions), a condition
  the source names (flanker's fixture names, MailBounceDetector's test names:
  "non-existing mailbox", "no host found", "mailbox full", "delayed"), or a feedback
  report. Codes map by their RFC 3463 meaning (FRESH_STATUS_KIND): the address or its
  domain is gone (x.1.1 bad mailbox, x.1.2 bad system, x.1.3 bad syntax, x.1.6 moved,
  x.1.10 null MX, 5.4.4 no route to the domain) -> bounce_hard; 4.x.x, and 5.2.x (the
  mailbox exists), 5.3.x (the receiving system), 5.7.x (security or policy) ->
  bounce_soft. The undefined 5.0.0 and 5.5.0 say neither: those files were not taken.
  Conditions map as FRESH_CONDITION_KIND; feedback reports -> complaint. Files that are
  byte for byte another corpus file were not taken (listed in each labels.json).

- public/sisimai-fresh2/: sisimai's samples that public/sisimai/ does not hold (newer
  files of sisimai/set-of-emails, and older ones whose expectation was missing then),
  labelled by sisimai's own expectations as public/sisimai/ is (go-sisimai's tests, else
  p5-sisimai's for the same file), never overridden; added after the fresh split had
  been measured and read: they are the FRESH2 split, whole, fixed before any of them was
  classified.

The held-out split (fixed; never used to tune the classifier): a public sample from
sisimai or crisp that was not in tests/corpus before issue 15 is held out when the first
byte of sha256("<source>/<file name>") is below 128 (half of them). Everything else is the
tuning split. `in_corpus_before` in sisimai's labels.json names the samples the project
already had (they were tuned on, so they never count as held out).

Used by tests/test_inbound_corpus.py and bench/inbound_accuracy.py.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"


class Split(Enum):
    TUNING = "tuning"
    HELD_OUT = "held_out"  # measured after the rules of issue 15's first pass; its misses were read
    FRESH = "fresh"  # added in issue 15's second pass, measured once after its last rule change
    FRESH2 = "fresh2"  # sisimai's newer samples, added in issue 15's third pass, measured once after its rules


# own/: (kind, status, recipients)
EXPECTED_OWN: dict[str, tuple[str, str | None, list[str]]] = {
    "dsn-hard-511.eml": ("bounce_hard", "5.1.1", ["ada@lovelace.example"]),
    "dsn-mailbox-full-522.eml": ("bounce_soft", "5.2.2", ["zoe@mueller.example"]),
    "dsn-delayed.eml": ("bounce_soft", "4.4.1", ["grace@hopper.example"]),
    "bounce-nonstandard-qmail.eml": ("bounce_hard", "5.1.1", ["grace@hopper.example"]),
    "arf-complaint.eml": ("complaint", None, ["zoe@mueller.example"]),
    "ooo-en.eml": ("auto_reply", None, []),
    "ooo-de-subject-only.eml": ("auto_reply", None, []),
    "reply.eml": ("reply", None, []),
    "unsubscribe-de.eml": ("unsubscribe", None, []),
}

# A crisp fixture is a bounce's text body: this is the message it arrives in.
CRISP_WRAPPER = (
    b"From: Mail Delivery System <MAILER-DAEMON@mail.example>\n"
    b"To: sender@example.com\n"
    b"Subject: Undelivered Mail Returned to Sender\n"
    b"MIME-Version: 1.0\n"
    b"Content-Type: text/plain; charset=utf-8\n"
    b"Content-Transfer-Encoding: 8bit\n\n"
)


@dataclass(frozen=True)
class Sample:
    source: str  # own | sisimai | crisp | talon | flufl-bounce | one of FRESH_SOURCES | FRESH2_SOURCE
    path: Path
    kind: str  # what dripper should call it
    recipients: tuple[str, ...] = ()  # failed recipients the label names (bounces)
    label: str = ""  # the source's own label, for reports
    split: Split = Split.TUNING

    def raw(self) -> bytes:
        """The message as dripper receives it."""
        data = self.path.read_bytes()
        return CRISP_WRAPPER + data if self.source == "crisp" else data


# Where dripper's kind differs from what sisimai's reason maps to, and why (tuning
# samples only: a held-out sample's label is never changed).
SISIMAI_OVERRIDES = {
    # A Portuguese out-of-office ("Estarei ausente do dia 08/02 até o dia 12/03") with
    # Auto-Submitted: auto-replied (zimbra; vacation); sisimai reports it as `suspend`.
    "rfc3834-06.eml": "auto_reply",
}

_CRISP_HARD_REASONS = ("no_such_recipient", "server_unknown")


def held_out(source: str, name: str) -> bool:
    """The fixed rule that picks the held-out half (see the module's docstring)."""
    return hashlib.sha256(f"{source}/{name}".encode()).digest()[0] < 128


def _sisimai_kind(name: str, results: list[dict]) -> str:
    if name in SISIMAI_OVERRIDES:
        return SISIMAI_OVERRIDES[name]
    reasons = {r["reason"] for r in results}
    if reasons == {"feedback"}:
        # RFC 5965 feedback type opt-out: an unsubscribe request (Apple Mail's
        # List-Unsubscribe mailto), which is what dripper calls it
        return "unsubscribe" if all(r.get("another") == "opt-out" for r in results) else "complaint"
    if reasons == {"vacation"}:
        return "auto_reply"
    if reasons & {"feedback", "vacation"}:
        raise ValueError(f"{name}: a bounce mixed with a feedback report or auto-reply has no single kind")
    return "bounce_hard" if any(r["hardbounce"] for r in results) else "bounce_soft"


def _sisimai_fresh2() -> list[Sample]:
    """The second fresh split: sisimai's newer samples, whole, with sisimai's own labels
    (never overridden)."""
    folder = CORPUS / "public" / FRESH2_SOURCE
    out = []
    for name, entry in sorted(json.loads((folder / "labels.json").read_text()).items()):
        results = entry["results"]
        label = "+".join(dict.fromkeys(r["reason"] for r in results))
        kind = _sisimai_kind("", results)  # "": no override applies
        out.append(Sample(FRESH2_SOURCE, folder / name, kind, (), label, Split.FRESH2))
    return out


def _sisimai() -> list[Sample]:
    folder = CORPUS / "public" / "sisimai"
    out = []
    for name, entry in json.loads((folder / "labels.json").read_text()).items():
        results = entry["results"]
        split = Split.HELD_OUT if "in_corpus_before" not in entry and held_out("sisimai", name) else Split.TUNING
        if split is Split.HELD_OUT and name in SISIMAI_OVERRIDES:
            raise ValueError(f"{name}: a held-out label must be the source's")
        label = "+".join(dict.fromkeys(r["reason"] for r in results))
        out.append(Sample("sisimai", folder / name, _sisimai_kind(name, results), (), label, split))
    return out


def _crisp() -> list[Sample]:
    folder = CORPUS / "public" / "crisp"
    out = []
    for name, label in json.loads((folder / "labels.json").read_text())["labels"].items():
        hard = label["permanent"] and not label["temporary"] and label["reason"] in _CRISP_HARD_REASONS
        source_label = f"{'temporary' if label['temporary'] else 'permanent'} {label['reason']}"
        recipients = (label["recipient"].lower(),) if label["recipient"] else ()
        split = Split.HELD_OUT if held_out("crisp", name) else Split.TUNING
        out.append(
            Sample("crisp", folder / name, "bounce_hard" if hard else "bounce_soft", recipients, source_label, split)
        )
    return out


# RFC 3463 codes, as the fresh sources expect them, to dripper's kinds (see the docstring)
FRESH_STATUS_KIND = {
    **dict.fromkeys(("5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.4.4"), "bounce_hard"),
    **dict.fromkeys(("5.2.0", "5.2.2", "5.2.3", "5.3.2", "5.3.4", "5.7.0", "5.7.1"), "bounce_soft"),
}
FRESH_CONDITION_KIND = {
    "non-existing mailbox": "bounce_hard",
    "no host found": "bounce_hard",
    "invalid address": "bounce_hard",
    "mailbox full": "bounce_soft",
    "delayed": "bounce_soft",
}
FRESH_SOURCES = ("cws-mail-bounce-handler", "flanker", "mail-bounce-detector", "bounce-email")
FRESH2_SOURCE = "sisimai-fresh2"


def _fresh_kind(label: dict) -> str:
    if label.get("feedback"):
        return "complaint"
    if "condition" in label:
        return FRESH_CONDITION_KIND[label["condition"]]
    status = label["status"]
    return "bounce_soft" if status.startswith("4.") else FRESH_STATUS_KIND[status]


def _fresh() -> list[Sample]:
    out = []
    for source in FRESH_SOURCES:
        folder = CORPUS / "public" / source
        for name, label in sorted(json.loads((folder / "labels.json").read_text())["labels"].items()):
            source_label = "feedback" if label.get("feedback") else label.get("status") or label["condition"]
            out.append(Sample(source, folder / name, _fresh_kind(label), (), source_label, Split.FRESH))
    return out


def samples() -> list[Sample]:
    out = [
        Sample("own", CORPUS / "own" / name, kind, tuple(recipients), kind)
        for name, (kind, _status, recipients) in EXPECTED_OWN.items()
    ]
    out += _sisimai()
    out += _crisp()
    out += _fresh()
    out += _sisimai_fresh2()
    folder = CORPUS / "public" / "talon"
    out += [Sample("talon", path, "reply", (), "reply") for path in sorted(folder.glob("*.eml"))]
    folder = CORPUS / "public" / "flufl-bounce"
    for name, label in json.loads((folder / "labels.json").read_text()).items():
        if label["recipients"]:  # none: nothing detectable, by that project's own judgement
            kind = "bounce_soft" if label["temporary"] else "bounce_hard"
            out.append(
                Sample(
                    "flufl-bounce",
                    folder / name,
                    kind,
                    tuple(a.lower() for a in label["recipients"]),
                    "temporary" if label["temporary"] else "permanent",
                )
            )
    return out


@dataclass(frozen=True)
class Outcome:
    sample: Sample
    found: str  # the kind dripper found
    status: str | None

    @property
    def right(self) -> bool:
        return self.found == self.sample.kind

    def describe(self) -> str:
        return (
            f"{self.sample.source}/{self.sample.path.name}: {self.found} (status {self.status}), "
            f"expected {self.sample.kind} (source's label: {self.sample.label})"
        )


def classified(split: Split | None = None) -> list[Outcome]:
    """dripper's verdict on every labelled sample of `split` (all when None), Mailman's
    bounces left out: their permanent/temporary is not dripper's hard/soft."""
    from email import message_from_bytes, policy

    from dripper.inbound.classify import classify

    out = []
    for sample in samples():
        if sample.source == "flufl-bounce" or (split is not None and sample.split is not split):
            continue
        found = classify(message_from_bytes(sample.raw(), policy=policy.compat32))
        out.append(Outcome(sample, found.kind, found.status))
    return out
