"""How well dripper reads inbound mail, per corpus and kind.

- tests/corpus/own: labelled by hand (the expected kind of each message)
- tests/corpus/public/flufl-bounce: 118 real-world bounces from GNU Mailman (Apache-2.0),
  labelled by that project's own test expectations (the failed recipients); a message is
  right when it is classified as a bounce (hard or soft) and every labelled recipient is
  found (addresses compared case-insensitively)

    python bench/inbound_accuracy.py
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from email import message_from_bytes, policy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from dripper.inbound.classify import classify  # noqa: E402


def public_bounces() -> tuple[int, int, list[str]]:
    folder = ROOT / "tests" / "corpus" / "public" / "flufl-bounce"
    labels = json.loads((folder / "labels.json").read_text())
    total = right = 0
    wrong = []
    for name, label in labels.items():
        if not label["recipients"]:  # nothing detectable, by the source's own judgement
            continue
        total += 1
        found = classify(message_from_bytes((folder / name).read_bytes(), policy=policy.compat32))
        expected = {a.lower() for a in label["recipients"]}
        if found.kind.startswith("bounce") and expected <= set(found.recipients):
            right += 1
        else:
            wrong.append(f"{name}: {found.kind} {found.recipients[:3]} (expected {sorted(expected)[:3]})")
    return total, right, wrong


def own_corpus() -> Counter[tuple[str, bool]]:
    from test_inbound import CORPUS, EXPECTED

    counts: Counter[tuple[str, bool]] = Counter()
    for name, (kind, _status, _recipients) in EXPECTED.items():
        found = classify(message_from_bytes((CORPUS / name).read_bytes(), policy=policy.compat32))
        counts[(kind, found.kind == kind)] += 1
    return counts


def main() -> None:
    total, right, wrong = public_bounces()
    print(f"public bounces (GNU Mailman corpus): {right}/{total} = {right / total:.1%} "
          "classified as a bounce with the labelled recipients")
    for line in wrong:
        print(f"  miss: {line}")
    counts = own_corpus()
    for kind in sorted({k for k, _ in counts}):
        ok, all_ = counts[(kind, True)], counts[(kind, True)] + counts[(kind, False)]
        print(f"own corpus, {kind:12s}: {ok}/{all_}")


if __name__ == "__main__":
    main()
