"""How well dripper reads inbound mail: accuracy per kind on real messages, on the tuning
split, the held-out split (issue 15's first pass: never tuned on, but its misses have been
printed), the fresh split (four more sources, added in issue 15's second pass and
measured once after its last rule change) and the fresh2 split (sisimai's newer samples,
added in issue 15's third pass and measured once after its rules), with every hard/soft
confusion listed.

Corpora (tests/corpus; sources and licenses recorded in each folder, labels, their
mapping and the split explained in tests/corpus_labels.py):
- public/sisimai: real bounces, auto-replies and feedback-loop reports (BSD-2-Clause),
  labelled by sisimai's own test expectations
- public/crisp: real bounce texts from crisp-oss/email-bounce-parser (MIT), labelled by
  that project's expected results
- public/talon: real human replies (Apache-2.0)
- own: written by us, one per kind and language case
- fresh: public/cws-mail-bounce-handler (MIT), public/flanker (Apache-2.0),
  public/mail-bounce-detector (MIT), public/bounce-email (MIT): real bounces and
  feedback reports from four more bounce parsers' test suites, labelled by their own
  expectations (expected status codes and conditions, mapped by RFC 3463)
- fresh2: public/sisimai-fresh2 (BSD-2-Clause): sisimai's samples that public/sisimai
  does not hold, labelled by sisimai's own test expectations
- public/flufl-bounce: 111 real bounces from GNU Mailman (Apache-2.0): counted as right
  when classified as a bounce with every labelled recipient found (Mailman's
  permanent/temporary is not dripper's hard/soft: it calls mailbox-full permanent)

    python -m bench.inbound_accuracy [--split tuning|held_out|fresh|fresh2]
"""

from __future__ import annotations

import argparse
from collections import Counter
from email import message_from_bytes, policy

from dripper.inbound.classify import KINDS, classify
from tests.corpus_labels import Outcome, Split, classified, samples

BOUNCES = ("bounce_hard", "bounce_soft")


def table(title: str, outcomes: list[Outcome]) -> None:
    total = Counter(o.sample.kind for o in outcomes)
    right = Counter(o.sample.kind for o in outcomes if o.right)
    sources = Counter(o.sample.source for o in outcomes)
    print(f"\n{title}: {len(outcomes)} labelled messages ({', '.join(f'{n} {s}' for s, n in sources.items())})")
    print(f"{'kind':12s} {'right':>6s} {'of':>4s} {'accuracy':>9s}")
    for kind in KINDS:
        if total[kind]:
            print(f"{kind:12s} {right[kind]:6d} {total[kind]:4d} {right[kind] / total[kind]:9.1%}")
    overall = sum(right.values()) / max(sum(total.values()), 1)
    print(f"{'overall':12s} {sum(right.values()):6d} {sum(total.values()):4d} {overall:9.1%}")
    by_source = Counter(o.sample.source for o in outcomes if o.right)
    print("by source: " + ", ".join(f"{s} {by_source[s]}/{n}" for s, n in sources.items()))
    # rows: the label; columns: what dripper found
    found_kinds = [k for k in KINDS if any(o.found == k for o in outcomes)]
    print("confusion (rows: label, columns: found): " + " ".join(f"{k:>11s}" for k in found_kinds))
    for kind in KINDS:
        if total[kind]:
            counts = Counter(o.found for o in outcomes if o.sample.kind == kind)
            print(f"  {kind:39s} " + " ".join(f"{counts[k]:11d}" for k in found_kinds))
    confusions = [o for o in outcomes if o.sample.kind in BOUNCES and o.found in BOUNCES and not o.right]
    print(f"hard/soft confusions: {len(confusions)}")
    for outcome in confusions:
        print(f"  {outcome.describe()}")
    for outcome in outcomes:
        if not outcome.right and outcome not in confusions:
            print(f"  miss: {outcome.describe()}")


def mailman() -> None:
    bounces = found_bounces = 0
    misses = []
    for sample in samples():
        if sample.source != "flufl-bounce":
            continue
        found = classify(message_from_bytes(sample.raw(), policy=policy.compat32))
        bounces += 1
        if found.kind.startswith("bounce") and set(sample.recipients) <= set(found.recipients):
            found_bounces += 1
        else:
            misses.append(f"{sample.path.name}: {found.kind} {found.recipients[:2]}")
    print(
        f"\nGNU Mailman bounces recognized as bounces with their recipients: {found_bounces}/{bounces} "
        f"= {found_bounces / bounces:.1%}"
    )
    for line in misses:
        print(f"  miss: {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=[s.value for s in Split], help="only this split (default: all)")
    args = parser.parse_args()
    for split in Split:
        if args.split in (None, split.value):
            table(f"{split.value} split", classified(split))
    if args.split in (None, Split.TUNING.value):
        mailman()


if __name__ == "__main__":
    main()
