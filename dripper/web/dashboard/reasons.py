"""What a touch's reason means on the dashboard's pages. The meanings are written once, in
`dripper.states.Reason` (the docs' table of reasons is generated from the same place)."""

from __future__ import annotations

from dripper.states import Reason


def meaning(reason: str | None) -> str:
    """What a stored reason (alone or with its detail) means, or "" for one nobody wrote down."""
    return Reason.meaning_of(reason) or ""


__all__ = ["meaning"]
