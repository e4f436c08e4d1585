"""Every labelled inbound message in tests/corpus, with the kind dripper should find.

- own/: written or captured by us, labelled by hand (EXPECTED_OWN)
- public/sisimai/: real bounces, auto-replies and feedback reports from sisimai's corpus
  (BSD-2-Clause), labelled by sisimai's own test expectations; its reasons map to ours:
  feedback -> complaint (opt-out feedback -> unsubscribe), vacation -> auto_reply, hardbounce true -> bounce_hard (the
  address or domain does not exist or moved), every other bounce -> bounce_soft (mailbox
  full, expired, network, and refusals of the message rather than the address: blocked,
  rejected, spam, policy, a suspended mailbox)
- public/talon/: real human replies from mailgun/talon's fixtures (Apache-2.0) -> reply
- public/flufl-bounce/: real bounces from GNU Mailman (Apache-2.0) with their failed
  recipients and whether the failure is temporary -> bounce_soft, else bounce_hard

Used by tests/test_inbound_corpus.py and bench/inbound_accuracy.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"

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


@dataclass(frozen=True)
class Sample:
    source: str  # own | sisimai | talon | flufl-bounce
    path: Path
    kind: str  # what dripper should call it
    recipients: tuple[str, ...] = ()  # failed recipients the label names (bounces)
    label: str = ""  # the source's own label, for reports


# Where dripper's kind differs from what sisimai's reason maps to, and why.
SISIMAI_OVERRIDES = {
    # A Portuguese out-of-office ("Estarei ausente do dia 08/02 até o dia 12/03") with
    # Auto-Submitted: auto-replied (zimbra; vacation); sisimai reports it as `suspend`.
    "rfc3834-06.eml": "auto_reply",
    # The server answered "550 Unknown user kijitora@example.jp"; sisimai says `filtered`
    # from Courier's context. By dripper's definition the address is gone.
    "courier-02.eml": "bounce_hard",
}


def _sisimai_kind(name: str, label: dict) -> str:
    if name in SISIMAI_OVERRIDES:
        return SISIMAI_OVERRIDES[name]
    if label["reason"] == "feedback":
        # RFC 5965 feedback type opt-out: an unsubscribe request (Apple Mail's
        # List-Unsubscribe mailto), which is what dripper calls it
        return "unsubscribe" if label.get("feedback_type") == "opt-out" else "complaint"
    if label["reason"] == "vacation":
        return "auto_reply"
    return "bounce_hard" if label["hardbounce"] else "bounce_soft"


def samples() -> list[Sample]:
    out = [Sample("own", CORPUS / "own" / name, kind, tuple(recipients), kind)
           for name, (kind, _status, recipients) in EXPECTED_OWN.items()]
    folder = CORPUS / "public" / "sisimai"
    for name, label in json.loads((folder / "labels.json").read_text()).items():
        out.append(Sample("sisimai", folder / name, _sisimai_kind(name, label), (), label["reason"]))
    folder = CORPUS / "public" / "talon"
    out += [Sample("talon", path, "reply", (), "reply") for path in sorted(folder.glob("*.eml"))]
    folder = CORPUS / "public" / "flufl-bounce"
    for name, label in json.loads((folder / "labels.json").read_text()).items():
        if label["recipients"]:  # none: nothing detectable, by that project's own judgement
            kind = "bounce_soft" if label["temporary"] else "bounce_hard"
            out.append(Sample("flufl-bounce", folder / name, kind, tuple(a.lower() for a in label["recipients"]),
                              "temporary" if label["temporary"] else "permanent"))
    return out
