"""Classification accuracy on real messages from public sources (tests/corpus/public) and
our own. On the splits never used to tune the classifier (held_out, fresh, fresh2) the
target is 95% right overall and 90% in every kind (not met yet: see below). On the tuning
split: 90% in every kind.
`python -m bench.inbound_accuracy` prints the same figures with every miss and every
hard/soft confusion."""

from __future__ import annotations

from collections import Counter
from email import message_from_bytes, policy

import pytest
from corpus_labels import FRESH2_SOURCE, FRESH_SOURCES, Outcome, Split, classified, held_out, samples

from dripper.inbound.classify import classify


def per_kind(outcomes: list[Outcome]) -> dict[str, tuple[int, int]]:
    total = Counter(o.sample.kind for o in outcomes)
    right = Counter(o.sample.kind for o in outcomes if o.right)
    return {kind: (right[kind], total[kind]) for kind in total}


def misses(outcomes: list[Outcome]) -> list[str]:
    return [o.describe() for o in outcomes if not o.right]


def meets_the_target(outcomes: list[Outcome]) -> None:
    for kind, (right, total) in per_kind(outcomes).items():
        assert right / total >= 0.90, (kind, right, total, misses(outcomes))
    assert sum(o.right for o in outcomes) / len(outcomes) >= 0.95, misses(outcomes)


# Held out: the target is not met (docs/performance.md, "Inbound classification accuracy",
# has the figures). Its misses have been read: it is no longer a clean test of unseen mail
# (the fresh split is).
@pytest.mark.xfail(strict=True, reason="held-out accuracy is below the target (docs/performance.md)")
def test_the_held_out_split_is_at_least_95_percent_right_and_90_in_every_kind() -> None:
    meets_the_target(classified(Split.HELD_OUT))


def stays_where_it_was_measured(split: Split, *, hard: int, soft: int, right: int) -> dict[str, tuple[int, int]]:
    """At least `hard` hard and `soft` soft bounces and `right` messages in all are read
    right, as when the split was measured; the counts per kind, for the caller's checks."""
    outcomes = classified(split)
    kinds = per_kind(outcomes)
    assert kinds["bounce_hard"][0] >= hard and kinds["bounce_soft"][0] >= soft, kinds
    assert sum(o.right for o in outcomes) >= right, misses(outcomes)
    return kinds


def test_the_held_out_split_stays_where_it_was_measured() -> None:
    kinds = stays_where_it_was_measured(Split.HELD_OUT, hard=77, soft=163, right=243)
    assert kinds["complaint"][0] == 3, kinds


# Fresh: sources set aside before their messages were read, measured once after the last
# rule change. The target is not met; docs/performance.md ("Inbound classification
# accuracy") has the figures and says where.
# Tuning the rules on its misses would make it a tuning split: a new target needs new mail.
@pytest.mark.xfail(strict=True, reason="fresh accuracy is below the target (docs/performance.md)")
def test_the_fresh_split_is_at_least_95_percent_right_and_90_in_every_kind() -> None:
    meets_the_target(classified(Split.FRESH))


def test_the_fresh_split_stays_where_it_was_measured() -> None:
    kinds = stays_where_it_was_measured(Split.FRESH, hard=58, soft=28, right=97)
    assert kinds["complaint"][0] >= 11, kinds


# Fresh2: sisimai's newer samples, set aside before any was classified and measured once,
# after the rules of issue 15's third pass. The target is not met (docs/performance.md).
@pytest.mark.xfail(strict=True, reason="fresh2 accuracy is below the target (docs/performance.md)")
def test_the_fresh2_split_is_at_least_95_percent_right_and_90_in_every_kind() -> None:
    meets_the_target(classified(Split.FRESH2))


def test_the_fresh2_split_stays_where_it_was_measured() -> None:
    stays_where_it_was_measured(Split.FRESH2, hard=10, soft=16, right=26)


def test_the_tuning_split_is_at_least_90_percent_right_in_every_kind() -> None:
    outcomes = classified(Split.TUNING)
    kinds = per_kind(outcomes)
    assert set(kinds) == {"reply", "auto_reply", "bounce_hard", "bounce_soft", "complaint", "unsubscribe"}
    for kind, (right, total) in kinds.items():
        assert right / total >= 0.90, (kind, right, total, misses(outcomes))


def test_the_held_out_split_is_the_documented_one() -> None:
    # Fixed by a hash of the file name, among the public samples new in issue 15; a change
    # to the corpus that moves samples between the splits shows here.
    split = Counter((s.source, s.split) for s in samples())
    assert split[("sisimai", Split.HELD_OUT)] == 234 and split[("crisp", Split.HELD_OUT)] == 44
    assert split[("sisimai", Split.TUNING)] == 356 and split[("crisp", Split.TUNING)] == 39
    for sample in samples():
        if sample.split is Split.HELD_OUT:
            assert sample.source in ("sisimai", "crisp") and held_out(sample.source, sample.path.name)
    # The fresh split is its four sources, whole; their samples are in no other split.
    fresh = Counter(s.source for s in samples() if s.split is Split.FRESH)
    assert fresh == {"cws-mail-bounce-handler": 100, "flanker": 8, "mail-bounce-detector": 5, "bounce-email": 2}
    assert all(s.split is Split.FRESH for s in samples() if s.source in FRESH_SOURCES)
    # The fresh2 split is sisimai's newer samples, whole.
    fresh2 = Counter(s.source for s in samples() if s.split is Split.FRESH2)
    assert fresh2 == {FRESH2_SOURCE: 29}
    assert all(s.split is Split.FRESH2 for s in samples() if s.source == FRESH2_SOURCE)


def test_mailman_bounces_are_bounces_with_their_recipients() -> None:
    # Mailman labels mailbox-full as permanent; dripper, by design, calls it soft. What
    # both agree on: each is a bounce, and these are the addresses that failed.
    checked = 0
    for sample in samples():
        if sample.source != "flufl-bounce":
            continue
        found = classify(message_from_bytes(sample.raw(), policy=policy.compat32))
        assert found.kind.startswith("bounce"), (sample.path.name, found)
        assert set(sample.recipients) <= set(found.recipients), (sample.path.name, found.recipients)
        if sample.kind == "bounce_soft":  # temporary for Mailman is soft for dripper too
            assert found.kind == "bounce_soft", sample.path.name
        checked += 1
    assert checked == 111
