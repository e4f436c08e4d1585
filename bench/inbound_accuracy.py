"""How well dripper reads inbound mail: accuracy per kind on real messages.

Corpora (tests/corpus; sources and licenses recorded in each folder, labels explained in
tests/corpus_labels.py):
- public/sisimai: real bounces, auto-replies and feedback-loop reports (BSD-2-Clause),
  labelled by sisimai's own test expectations
- public/talon: real human replies (Apache-2.0)
- own: written by us, one per kind and language case
- public/flufl-bounce: 111 real bounces from GNU Mailman (Apache-2.0): counted as right
  when classified as a bounce with every labelled recipient found (Mailman's
  permanent/temporary is not dripper's hard/soft: it calls mailbox-full permanent)

    python bench/inbound_accuracy.py
"""

from __future__ import annotations

import sys
from collections import Counter
from email import message_from_bytes, policy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from corpus_labels import samples  # noqa: E402
from dripper.inbound.classify import classify  # noqa: E402


def main() -> None:
    total: Counter[str] = Counter()
    right: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    misses = []
    bounces = found_bounces = 0
    for sample in samples():
        found = classify(message_from_bytes(sample.path.read_bytes(), policy=policy.compat32))
        if sample.source == "flufl-bounce":
            bounces += 1
            if found.kind.startswith("bounce") and set(sample.recipients) <= set(found.recipients):
                found_bounces += 1
            else:
                misses.append(f"{sample.source}/{sample.path.name}: {found.kind} {found.recipients[:2]}")
            continue
        total[sample.kind] += 1
        sources[sample.source] += 1
        if found.kind == sample.kind:
            right[sample.kind] += 1
        else:
            misses.append(f"{sample.source}/{sample.path.name}: {found.kind} (status {found.status}), "
                          f"expected {sample.kind} (source's label: {sample.label})")
    print(f"labelled messages: {sum(total.values())} ({', '.join(f'{n} {s}' for s, n in sources.items())})")
    print(f"{'kind':12s} {'right':>6s} {'of':>4s} {'accuracy':>9s}")
    for kind in ("reply", "auto_reply", "bounce_hard", "bounce_soft", "complaint", "unsubscribe"):
        print(f"{kind:12s} {right[kind]:6d} {total[kind]:4d} {right[kind] / max(total[kind], 1):9.1%}")
    overall = sum(right.values()) / sum(total.values())
    print(f"{'overall':12s} {sum(right.values()):6d} {sum(total.values()):4d} {overall:9.1%}")
    print(f"GNU Mailman bounces recognized as bounces with their recipients: {found_bounces}/{bounces} "
          f"= {found_bounces / bounces:.1%}")
    for line in misses:
        print(f"  miss: {line}")


if __name__ == "__main__":
    main()
